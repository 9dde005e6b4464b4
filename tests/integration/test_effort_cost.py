"""On the emulated server, a higher reasoning effort costs what it costs on vLLM serving gpt-oss:
more reasoning tokens and more time, and nothing else (the answers stay the same).

Time is checked without a clock: the emulator's waits are recorded instead of slept.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from vibe_jet_tagging.emulator import LATENCY_PRESETS, EmulatedServer
from vibe_jet_tagging.emulator import server as emulator_server
from vibe_jet_tagging.jets.dataset import load_sample
from vibe_jet_tagging.tagging.tagger import JetTagger

JETS = list(load_sample().balanced(6, seed=2))


class RecordedSleeps:
    """Stands for ``asyncio`` in the emulator's server module: waits are recorded, not slept."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, delay: float, *args: Any, **kwargs: Any) -> None:
        self.waits.append(delay)
        await asyncio.sleep(0)


def test_an_answer_takes_longer_and_reasons_longer_at_a_higher_effort(monkeypatch) -> None:
    sleeps = RecordedSleeps()
    monkeypatch.setattr(emulator_server, "asyncio", sleeps)
    preset = LATENCY_PRESETS["demo"]
    seen: dict[str, tuple[list[float], list[int], list[float | None]]] = {}
    with EmulatedServer(**preset) as server:
        for effort in ("low", "medium", "high"):
            tagger = JetTagger(base_url=server.base_url, reasoning_effort=effort, cache=False,
                               max_concurrency=1)  # fmt: skip
            sleeps.waits.clear()
            results = tagger.batch(JETS)
            tokens = [r.usage.output_tokens for r in results]
            seen[effort] = (list(sleeps.waits), tokens, [r.quark_probability for r in results])
    for effort, (waits, tokens, _) in seen.items():
        # One wait per answer: the time to the first token plus a time per generated token.
        expected = [preset["ttft"] + preset["itl"] * t for t in tokens]
        assert sorted(waits) == pytest.approx(sorted(expected)), effort
    mean = {e: sum(w) / len(w) for e, (w, _, _) in seen.items()}
    assert mean["low"] < mean["medium"] < mean["high"]
    # ~120, ~370, ~2,000 reasoning tokens (STACK_NOTES' gpt-oss-120b): high ~ 5x medium.
    assert 4 < mean["high"] / mean["medium"] < 7
    probabilities = {e: tuple(p) for e, (_, _, p) in seen.items()}
    assert len(set(probabilities.values())) == 1  # and nothing else changes


def test_vjt_emulate_starts_the_emulator_with_the_demo_latency(monkeypatch) -> None:
    from vibe_jet_tagging import emulator
    from vibe_jet_tagging.cli.run import server
    from vibe_jet_tagging.config import load_settings

    started: list[dict[str, Any]] = []

    @contextlib.contextmanager
    def recorded(**options: Any):
        started.append(options)
        yield type("S", (), {"base_url": "http://127.0.0.1:1/v1"})()

    monkeypatch.setattr(emulator, "EmulatedServer", recorded)
    with server(True, load_settings()) as backend:
        assert backend.emulated
    assert started[0]["itl"] == LATENCY_PRESETS["demo"]["itl"] > 0  # not the instant default
    with server(True, load_settings(), itl=0.5):  # a command's own settings win
        pass
    assert started[1]["itl"] == 0.5
