"""The GPU's cost of a jet: prompt tokens prefilled, prompt tokens from the prefix cache, output.

For a vLLM user a jet costs the prompt tokens the GPU must prefill plus the tokens it
generates; the prompt head every jet shares (the system message and, for a balanced few-shot
draw, the examples) comes from vLLM's prefix cache after the first jet. For each template and
jet format, a batch of real jets from the bundled sample goes through ``JetTagger`` against
the emulated server (its prefix cache emptied before each batch, blocks of 16 tokens as vLLM
on a GPU; the emulator's tokens, not gpt-oss's), and the tokens per jet are read from the
results' usage (``cached_input_tokens``: ``usage.prompt_tokens_details.cached_tokens``).

With ``--base-url`` (and ``--model``), the same for ``few_shot`` against that server, one
jet at a time (the first warms the cache; a real server's cache is not emptied, so the jets
are drawn at random), written to ``gpu_cost_real.json``. The server must run with
``--enable-prompt-tokens-details``; on the CPU build (``scripts/real_vllm.py``) keep it to a
few jets (~50 s cold, 5-18 s warm each).

    python benchmarks/gpu_cost.py [--quick] [--jets N]
    python benchmarks/gpu_cost.py --base-url http://127.0.0.1:8000/v1 --model smollm2 --jets 4
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
from typing import Any

import httpx
from _common import parser, save, table
from langchain_core.messages import convert_to_openai_messages

from vibe_jet_tagging import JetTagger, load_sample
from vibe_jet_tagging.emulator import EmulatedServer
from vibe_jet_tagging.emulator.tokens import prompt_pieces
from vibe_jet_tagging.jets.formats import FORMAT_NAMES, JetFormat
from vibe_jet_tagging.tagging.templates import list_templates

TARGET = 0.80
"""Share of a few-shot batch's prompt tokens served from the prefix cache (issue 15)."""


def summary(results: list[Any], **fields: Any) -> dict[str, Any]:
    """Tokens per jet of one batch: prefilled, from the cache, output; the cached share."""
    usages = [getattr(r, "result", r).usage for r in results]
    if any(u.cached_input_tokens is None for u in usages):
        raise SystemExit(
            "the server reports no cached tokens (vLLM: --enable-prompt-tokens-details)"
        )
    warm = usages[1:] or usages
    prompt = sum(u.input_tokens for u in usages)
    cached = sum(u.cached_input_tokens for u in usages)
    return {
        **fields,
        "jets": len(usages),
        "input_tokens": prompt / len(usages),
        "uncached_input_tokens": (prompt - cached) / len(usages),
        "cached_input_tokens": cached / len(usages),
        "output_tokens": statistics.mean(u.output_tokens for u in usages),
        "cached_share": cached / prompt,
        "cached_share_after_first": sum(u.cached_input_tokens for u in warm)
        / sum(u.input_tokens for u in warm),
        "uncached_input_tokens_after_first": statistics.mean(
            u.input_tokens - u.cached_input_tokens for u in warm
        ),
        "errors": sum(not getattr(r, "result", r).ok for r in results),
    }


def head_share(tagger: JetTagger, jets: list[Any], results: list[Any]) -> float:
    """Share of the prompt tokens in the messages every jet shares (the emulator's tokens):
    the system message, and the examples of a balanced draw (``few_shot_nearest`` picks them
    per jet). What the cache can serve at best, before whole blocks are counted."""
    prompt = tagger.prompt
    shared = 1 if prompt.selector is None or prompt.template.selector == "nearest" else None
    shared = shared or 1 + 2 * prompt.shots
    head = sum(
        len(prompt_pieces(convert_to_openai_messages(prompt.messages(jet)[:shared])))
        for jet in jets
    )
    return head / sum(getattr(r, "result", r).usage.input_tokens for r in results)


async def emulated(n: int, effort: str) -> list[dict[str, Any]]:
    jets = list(load_sample().balanced(n, seed=1))
    rows = []
    with EmulatedServer(process=True) as server:
        for template in sorted(t.name for t in list_templates()):
            for fmt in FORMAT_NAMES:
                tagger = JetTagger(
                    server.model,
                    base_url=server.base_url,
                    template=template,
                    format=JetFormat(name=fmt),
                    effort=effort,
                    cache=None,
                )
                async with httpx.AsyncClient() as client:
                    (await client.post(f"{server.url}/reset_prefix_cache")).raise_for_status()
                results = await tagger.abatch(jets, {"max_concurrency": 1}, return_exceptions=True)
                row = summary(results, template=template, format=fmt)
                row["shared_head_share"] = head_share(tagger, jets, results)
                row["template_format"] = fmt == tagger.prompt.template.format.name
                rows.append(row)
                print(f"{template} / {fmt}: {rows[-1]['cached_share']:.1%} cached", flush=True)
    return rows


async def real(base_url: str, model: str, n: int, api_key: str) -> dict[str, Any]:
    seed = secrets.randbelow(2**31)
    jets = list(load_sample().balanced(n if n % 2 == 0 else n + 1, seed=seed))[:n]
    tagger = JetTagger(
        model, base_url=base_url, api_key=api_key, template="few_shot", reask=False, cache=None
    )
    results = await tagger.abatch(jets, {"max_concurrency": 1}, return_exceptions=True)
    usages = [getattr(r, "result", r).usage for r in results]
    row = summary(results, template="few_shot", format=tagger.prompt.format.name, seed=seed)
    row["per_jet"] = [[u.cached_input_tokens, u.input_tokens] for u in usages]
    # The shared head by the server's own tokenizer (vLLM's POST /tokenize), when it has one.
    head = convert_to_openai_messages(
        tagger.prompt.messages(jets[0])[: 1 + 2 * tagger.prompt.shots]
    )
    body = {"model": model, "messages": head, "add_generation_prompt": False}
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.post(base_url.removesuffix("/v1") + "/tokenize", json=body)
    if response.status_code == 200:
        row["shared_head_tokens"] = response.json()["count"]
        row["shared_head_share"] = row["shared_head_tokens"] / row["input_tokens"]
    return row


HEADERS = ["template", "format", "jets", "prompt", "prefilled", "cached", "output"]
HEADERS += ["cached %", "after 1st", "shared %"]


def table_rows(rows: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [
            r["template"],
            r["format"],
            r["jets"],
            round(r["input_tokens"]),
            round(r["uncached_input_tokens"]),
            round(r["cached_input_tokens"]),
            round(r["output_tokens"]),
            f"{r['cached_share']:.1%}",
            f"{r['cached_share_after_first']:.1%}",
            f"{r['shared_head_share']:.1%}" if "shared_head_share" in r else "-",
        ]
        for r in rows
    ]


def verdict(row: dict[str, Any]) -> str:
    """The target, on the few-shot jets after the first (those a long batch is made of)."""
    met = "met" if row["cached_share_after_first"] >= TARGET else "NOT met"
    return (
        f"few_shot ({row['format']}), jets after the first: "
        f"{row['cached_share_after_first']:.1%} of the prompt from the cache; "
        f"target >= {TARGET:.0%}: {met}"
    )


if __name__ == "__main__":
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--jets", type=int, default=None, help="jets per batch (20; real server: 4)")
    p.add_argument("--effort", default="medium", help="reasoning effort (emulated output tokens)")
    p.add_argument("--base-url", default=None, help="a real vLLM server: measure it instead")
    p.add_argument("--model", default="smollm2", help="the real server's model")
    p.add_argument("--api-key", default="EMPTY")
    args = p.parse_args()
    if args.base_url:
        n = args.jets or 4
        row = asyncio.run(real(args.base_url, args.model, n, args.api_key))
        print(table(HEADERS, table_rows([row])))
        print(verdict(row))
        params = {"base_url": args.base_url, "model": args.model, "jets": n}
        print(f"results: {save('gpu_cost_real', params, [row], target=TARGET)}")
    else:
        n = args.jets or (6 if args.quick else 20)
        rows = asyncio.run(emulated(n, args.effort))
        print(table(HEADERS, table_rows(rows)))
        own = [r for r in rows if r["template_format"]]  # each template in its own format
        print(verdict(next(r for r in own if r["template"] == "few_shot")))
        for r in own:  # the GPU's cost a jet
            print(
                f"{r['template']} ({r['format']}): "
                f"{r['uncached_input_tokens_after_first']:,.0f} prompt tokens prefilled a jet "
                f"after the first, of {r['input_tokens']:,.0f}"
            )
        params = {"jets": n, "effort": args.effort, "block_size": 16, "server": "emulated"}
        print(f"results: {save('gpu_cost', params, rows, target=TARGET)}")
