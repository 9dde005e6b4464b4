"""Client CPU per jet: the whole chain against a bare ``openai.AsyncOpenAI`` loop.

Both send the same requests (the chain's own payloads: same messages, ``response_format``,
``reasoning_effort``, ``max_completion_tokens``) to an instant emulated server in a child
process, at the same concurrency. Measured: this process's CPU time (``time.process_time``,
all threads) per jet. The chain's share covers prompt rendering, example selection, the model
call through LangChain, parsing and validation, and the result cache (lookup and store, in a
fresh folder so every jet is a miss and a store). For comparison, LangChain's own route:
``ChatOpenAI.with_structured_output(JetLabel, method="json_schema")`` sent the same prompts
(no cache). Rounds alternate the four on new jets; the median round counts. Target (issue
15): the chain at most 0.5 ms more per jet than bare.

    python benchmarks/client_cpu.py [--quick]
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from typing import Any

import openai
from _common import PerturbedJets, parser, save, sdk_payload, table

from vibe_jet_tagging import JetTagger
from vibe_jet_tagging.emulator import EmulatedServer
from vibe_jet_tagging.jets import Jet
from vibe_jet_tagging.store.cache import ResultCache

TARGET_MS = 0.5


async def bare(client: openai.AsyncOpenAI, payloads: list[dict[str, Any]], limit: int) -> int:
    """Send every payload with ``create`` (at most ``limit`` at once); count the answers."""
    gate = asyncio.Semaphore(limit)

    async def one(payload: dict[str, Any]) -> bool:
        async with gate:
            completion = await client.chat.completions.create(**payload)
            return bool(completion.choices[0].message.content)

    return sum(await asyncio.gather(*(one(p) for p in payloads)))


def payloads_for(tagger: JetTagger, jets: list[Jet]) -> list[dict[str, Any]]:
    """The request bodies the chain sends for ``jets`` (built outside the timing)."""
    return [sdk_payload(tagger, jet) for jet in jets]


def langchain_route(server: EmulatedServer, limit: int) -> Any:
    """LangChain's own route: ``ChatOpenAI.with_structured_output`` (JSON schema) at ``limit``."""
    from langchain_openai import ChatOpenAI

    from vibe_jet_tagging.tagging.parsing.schema import JetLabel

    model = ChatOpenAI(
        model=server.model,
        base_url=server.base_url,
        api_key="EMPTY",
        max_retries=0,
        reasoning_effort="medium",
    )
    return model.with_structured_output(JetLabel, method="json_schema").with_config(
        max_concurrency=limit
    )


async def ask_langchain(route: Any, tagger: JetTagger, jets: list[Jet]) -> int:
    """The tagger's prompts sent through ``route``; how many came back as a label."""
    answers = await route.abatch(
        [tagger.prompt.messages(jet) for jet in jets], return_exceptions=True
    )
    return sum(getattr(a, "label", None) is not None for a in answers)


async def compare(
    server: EmulatedServer, template: str, n: int, rounds: int, limit: int, folder: str
) -> dict[str, Any]:
    """Median CPU ms/jet of bare, chain without cache and chain with cache."""
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="EMPTY", max_retries=0)
    common = {"base_url": server.base_url, "template": template, "max_concurrency": limit}
    taggers = {
        "chain": JetTagger(
            server.model, cache=ResultCache(f"{folder}/{template}-{limit}"), **common
        ),
        "chain_nocache": JetTagger(server.model, cache=None, **common),
    }
    reference = taggers["chain_nocache"]
    route = langchain_route(server, limit)
    warm = list(PerturbedJets(limit, offset=90_000))
    await bare(client, payloads_for(reference, warm), limit)
    await ask_langchain(route, reference, warm)
    for tagger in taggers.values():
        await tagger.abatch(warm)
    names = ("bare", "chain", "chain_nocache", "langchain")
    per_jet: dict[str, list[float]] = {name: [] for name in names}
    offset = 0
    for _ in range(rounds):
        for name in names:
            jets = list(PerturbedJets(n, offset=offset))
            offset += n
            if name == "bare":
                payloads = payloads_for(reference, jets)
                start = time.process_time()
                answered = await bare(client, payloads, limit)
            elif name == "langchain":
                start = time.process_time()
                answered = await ask_langchain(route, reference, jets)
            else:
                start = time.process_time()
                results = await taggers[name].abatch(jets)
                answered = sum(r.ok for r in results)
            seconds = time.process_time() - start
            assert answered == n, f"{name}: {answered} of {n} answered"
            per_jet[name].append(1e3 * seconds / n)
    await client.close()
    medians = {name: statistics.median(values) for name, values in per_jet.items()}
    extra = medians["chain"] - medians["bare"]
    return {
        "template": template,
        "concurrency": limit,
        "n_per_round": n,
        "rounds": rounds,
        "bare_ms_per_jet": medians["bare"],
        "chain_ms_per_jet": medians["chain"],
        "chain_nocache_ms_per_jet": medians["chain_nocache"],
        "langchain_ms_per_jet": medians["langchain"],
        "extra_ms_per_jet": extra,
        "ratio": medians["chain"] / medians["bare"],
        "all_rounds_ms": per_jet,
        "met": extra <= TARGET_MS,
    }


async def main(quick: bool) -> list[dict[str, Any]]:
    n, rounds = (200, 2) if quick else (600, 3)
    rows = []
    with EmulatedServer(process=True) as server, tempfile.TemporaryDirectory() as folder:
        for template in ("zero_shot", "few_shot"):
            for limit in (64, 256):
                row = await compare(server, template, n, rounds, limit, folder)
                rows.append(row)
                print(
                    f"{template:9s} at {limit}: bare {row['bare_ms_per_jet']:.2f} ms/jet, "
                    f"chain {row['chain_ms_per_jet']:.2f} ms/jet",
                    flush=True,
                )
    return rows


if __name__ == "__main__":
    args = parser(__doc__.splitlines()[0]).parse_args()
    rows = asyncio.run(main(args.quick))
    print(
        table(
            [
                "template",
                "concurrency",
                "bare ms/jet",
                "chain ms/jet",
                "chain (no cache)",
                "LangChain route",
                "chain - bare",
                "chain / bare",
                f"target <= +{TARGET_MS} ms",
            ],
            [
                [
                    r["template"],
                    r["concurrency"],
                    r["bare_ms_per_jet"],
                    r["chain_ms_per_jet"],
                    r["chain_nocache_ms_per_jet"],
                    r["langchain_ms_per_jet"],
                    r["extra_ms_per_jet"],
                    r["ratio"],
                    "met" if r["met"] else "missed",
                ]
                for r in rows
            ],
        )
    )
    print(f"results: {save('client_cpu', {'target_ms': TARGET_MS}, rows)}")
