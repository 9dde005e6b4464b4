"""Client CPU per jet: the whole chain against a bare ``openai.AsyncOpenAI`` loop and the wire.

All send the same requests (the chain's own payloads: same messages, constraint,
``reasoning_effort``) to an instant emulated server in a child process, at the same
concurrency. Measured: this process's CPU time (``time.process_time``, all threads) per jet.
The chain's share covers prompt rendering, example selection, the model call, parsing and
validation, signing, and the result cache (lookup and store, in a fresh folder so every jet
is a miss and a store). The floor: a raw aiohttp loop that POSTs the same body bytes and reads
the JSON answer (``json.loads``), nothing else; every figure is also given as a ratio to it.
For comparison, LangChain's own route: ``ChatOpenAI.with_structured_output(JetLabel,
method="json_schema")`` sent the same prompts (no cache). Rounds alternate the five on new
jets; the median round counts. Targets: issue 23, the chain without its cache at most 1.0 ms
per jet; issue 15, the chain at most 0.5 ms more per jet than bare.

    python benchmarks/client_cpu.py [--quick]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from typing import Any

import aiohttp
import openai
from _common import PerturbedJets, parser, save, sdk_payload, table

from vibe_jet_tagging import JetTagger
from vibe_jet_tagging._compat.openai import chat_body
from vibe_jet_tagging.emulator import EmulatedServer
from vibe_jet_tagging.jets import Jet
from vibe_jet_tagging.store.cache import ResultCache

TARGET_MS = 0.5
TARGET_NOCACHE_MS = 1.0


async def bare(client: openai.AsyncOpenAI, payloads: list[dict[str, Any]], limit: int) -> int:
    """Send every payload with ``create`` (at most ``limit`` at once); count the answers."""
    gate = asyncio.Semaphore(limit)

    async def one(payload: dict[str, Any]) -> bool:
        async with gate:
            completion = await client.chat.completions.create(**payload)
            return bool(completion.choices[0].message.content)

    return sum(await asyncio.gather(*(one(p) for p in payloads)))


async def raw(session: aiohttp.ClientSession, url: str, bodies: list[bytes], limit: int) -> int:
    """POST every body (at most ``limit`` at once), read each JSON answer; count them."""
    gate = asyncio.Semaphore(limit)
    headers = {"Content-Type": "application/json", "Authorization": "Bearer EMPTY"}

    async def one(body: bytes) -> bool:
        async with gate, session.post(url, data=body, headers=headers) as response:
            answer = json.loads(await response.read())
            return bool(answer["choices"][0]["message"]["content"])

    return sum(await asyncio.gather(*(one(b) for b in bodies)))


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
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000))
    url = f"{server.base_url}/chat/completions"
    await raw(session, url, [chat_body(p) for p in payloads_for(reference, warm)], limit)
    await bare(client, payloads_for(reference, warm), limit)
    await ask_langchain(route, reference, warm)
    for tagger in taggers.values():
        await tagger.abatch(warm)
    names = ("raw", "bare", "chain", "chain_nocache", "langchain")
    per_jet: dict[str, list[float]] = {name: [] for name in names}
    offset = 0
    for _ in range(rounds):
        for name in names:
            jets = list(PerturbedJets(n, offset=offset))
            offset += n
            if name == "raw":
                bodies = [chat_body(p) for p in payloads_for(reference, jets)]
                start = time.process_time()
                answered = await raw(session, url, bodies, limit)
            elif name == "bare":
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
    await session.close()
    medians = {name: statistics.median(values) for name, values in per_jet.items()}
    extra = medians["chain"] - medians["bare"]
    floor = medians["raw"]
    return {
        "raw_ms_per_jet": floor,
        "over_floor": {name: medians[name] / floor for name in names},
        "nocache_target_ms": TARGET_NOCACHE_MS,
        "nocache_met": medians["chain_nocache"] <= TARGET_NOCACHE_MS,
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
                    f"{template:9s} at {limit}: raw {row['raw_ms_per_jet']:.2f}, "
                    f"bare {row['bare_ms_per_jet']:.2f}, chain {row['chain_ms_per_jet']:.2f}, "
                    f"no cache {row['chain_nocache_ms_per_jet']:.2f} ms/jet",
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
                "k",
                "raw aiohttp (floor)",
                "bare SDK",
                "chain",
                "chain (no cache)",
                "LangChain route",
                "bare/floor",
                "no cache/floor",
                f"no cache <= {TARGET_NOCACHE_MS} ms",
                f"chain <= bare + {TARGET_MS}",
            ],
            [
                [
                    r["template"],
                    r["concurrency"],
                    r["raw_ms_per_jet"],
                    r["bare_ms_per_jet"],
                    r["chain_ms_per_jet"],
                    r["chain_nocache_ms_per_jet"],
                    r["langchain_ms_per_jet"],
                    r["over_floor"]["bare"],
                    r["over_floor"]["chain_nocache"],
                    "met" if r["nocache_met"] else "missed",
                    "met" if r["met"] else "missed",
                ]
                for r in rows
            ],
        )
    )
    params = {"target_ms": TARGET_MS, "nocache_target_ms": TARGET_NOCACHE_MS}
    print(f"results: {save('client_cpu', params, rows)}")
