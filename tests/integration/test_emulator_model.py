"""The emulated model: jet recovery from every prompt format, the heuristic, refusals."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import aiohttp
import httpx
import numpy as np
import pytest

from vibe_jet_tagging.emulator.reading import read_jet
from vibe_jet_tagging.jets import Jet
from vibe_jet_tagging.jets.formats import FORMAT_NAMES, JetFormat, render_jet

OPTIONS = list(itertools.product(FORMAT_NAMES, [True, False], [False, True], [None, 12], [3, 5]))


def _real_or_synthetic(make_jet, n: int) -> tuple[list[Jet], np.ndarray]:
    """``n`` quark + ``n`` gluon jets: from the bundled sample if there is one."""
    try:
        from vibe_jet_tagging.jets.dataset import load_sample

        sample = load_sample()
        labels = np.asarray(sample.labels)
        jets = sample.jets()
        pick = [*np.flatnonzero(labels == 1)[:n], *np.flatnonzero(labels == 0)[:n]]
        return [jets[i] for i in pick], labels[pick]
    except (ImportError, OSError, AttributeError):
        jets = [make_jet("quark", i) for i in range(n)] + [make_jet("gluon", i) for i in range(n)]
        return jets, np.array([1] * n + [0] * n)


@pytest.fixture(scope="module")
def jets(make_jet) -> list[Jet]:
    sample, _ = _real_or_synthetic(make_jet, 6)
    # Jets near phi = +-pi test the azimuth wrapping of absolute coordinates.
    wrapped = Jet.from_array(sample[0].constituents * [1, 1, 0, 1] + [0, 0, np.pi - 0.01, 0])
    return [*sample, wrapped]


@pytest.mark.parametrize(("name", "relative", "pdgid", "cap", "decimals"), OPTIONS)
def test_jet_recovery_every_format(jets, name, relative, pdgid, cap, decimals) -> None:
    fmt = JetFormat(name=name, relative=relative, pdgid=pdgid, max_particles=cap, decimals=decimals)
    for jet in jets:
        text = f"Classify this jet.\n\n{render_jet(jet, fmt)}\n\nAnswer quark or gluon."
        reading = read_jet(text)
        assert reading is not None
        assert reading.multiplicity == len(jet)
        assert reading.girth is not None
        if cap is None or "observables" in name:
            tolerance = 0.6 * 10.0**-decimals + 0.03 * jet.girth
            assert reading.girth == pytest.approx(jet.girth, abs=tolerance)
        if name != "observables":
            assert reading.shown == min(len(jet), cap or len(jet))


def test_last_jet_of_the_last_user_message(emulator, make_jet) -> None:
    quark = Jet.from_array([[200.0, 0.0, 1.0, 211], [150.0, 0.01, 1.01, 22], [100, 0, 1.02, 22]])
    gluons = [make_jet("gluon", i) for i in range(2)]
    fmt = JetFormat(name="table")
    messages = [
        {"role": "system", "content": "Tag jets."},
        {"role": "user", "content": render_jet(gluons[0], fmt)},
        {"role": "assistant", "content": "gluon"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": f"Example:\n{render_jet(gluons[1])}\nLabel: gluon"},
                {"type": "text", "text": f"Now this one:\n{render_jet(quark)}"},
            ],
        },
    ]
    body = {"messages": messages, "response_format": {"type": "json_object"}}
    reply = httpx.post(f"{emulator.base_url}/chat/completions", json=body).json()
    message = reply["choices"][0]["message"]
    assert "The jet has 3 constituents." in message["reasoning"]
    assert json.loads(message["content"])["label"] == "quark"


@pytest.mark.parametrize("response_format", [None, {"type": "json_object"}])
def test_no_jet_no_label(emulator, response_format) -> None:
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": "Is this jet a quark or a gluon?"}],
        "logprobs": True,
    }
    if response_format:
        body["response_format"] = response_format
    reply = httpx.post(f"{emulator.base_url}/chat/completions", json=body).json()
    content = reply["choices"][0]["message"]["content"]
    assert reply["choices"][0]["finish_reason"] == "stop"
    assert "jet" in content
    for word in ("quark", "gluon", "0", "1"):
        assert word not in content.lower()
    if response_format is None:
        with pytest.raises(json.JSONDecodeError):
            json.loads(content)
    else:  # the grammar forces a JSON object, as in vLLM; it holds no label
        assert "label" not in json.loads(content)


def test_no_jet_under_a_schema_still_follows_the_schema(emulator) -> None:
    """vLLM's grammar leaves no way out of a schema; the emulator's answer is a coin flip."""
    from vibe_jet_tagging.tagging.parsing import JetLabel, label_response_format

    body = {
        "messages": [{"role": "user", "content": "Is this jet a quark or a gluon?"}],
        "response_format": label_response_format(),
    }
    reply = httpx.post(f"{emulator.base_url}/chat/completions", json=body).json()
    answer = JetLabel.model_validate_json(reply["choices"][0]["message"]["content"])
    assert answer.quark_probability in (0.45, 0.55)


def _hand_made(n: int, width: float, seed: int) -> Jet:
    rng = np.random.default_rng(seed)
    pt = np.sort(rng.exponential(1.0, n))[::-1] ** 2 + 0.5
    pt *= 520 / pt.sum()
    return Jet.from_array(
        np.stack(
            [pt, 0.5 + rng.normal(0, width, n), 2.0 + rng.normal(0, width, n), np.full(n, 211)],
            axis=1,
        )
    )


async def test_heuristic_separates_quark_like_from_gluon_like(emulator) -> None:
    """Few, hard, narrow jets come out quark; many, soft, wide ones gluon."""
    async with httpx.AsyncClient(base_url=emulator.base_url) as client:

        async def p_quark(jet: Jet) -> float:
            body = {
                "messages": [{"role": "user", "content": render_jet(jet)}],
                "response_format": {"type": "json_object"},
                "reasoning_effort": "low",
            }
            reply = (await client.post("/chat/completions", json=body)).json()
            return json.loads(reply["choices"][0]["message"]["content"])["quark_probability"]

        quark_like = [await p_quark(_hand_made(18, 0.02, i)) for i in range(25)]
        gluon_like = [await p_quark(_hand_made(70, 0.08, i)) for i in range(25)]
    assert np.mean(quark_like) > 0.75
    assert np.mean(gluon_like) < 0.25
    assert sum(p >= 0.5 for p in quark_like) + sum(p < 0.5 for p in gluon_like) >= 45


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Probability that a random quark scores above a random gluon (ties count half)."""
    q, g = scores[labels == 1], scores[labels == 0]
    return float(
        ((q[:, None] > g[None]).sum() + 0.5 * (q[:, None] == g[None]).sum()) / q.size / g.size
    )


@pytest.mark.slow
async def test_emulated_auc(emulator, make_jet) -> None:
    """The heuristic's AUC through the server: below the multiplicity's, well above chance."""
    jets, labels = _real_or_synthetic(make_jet, 500)
    url = f"{emulator.base_url}/chat/completions"
    gate = asyncio.Semaphore(100)
    async with aiohttp.ClientSession() as session:

        async def p_quark(jet: Jet) -> float:
            body = {
                "messages": [{"role": "user", "content": render_jet(jet)}],
                "response_format": {"type": "json_object"},
                "reasoning_effort": "low",
            }
            async with gate, session.post(url, json=body) as response:
                reply = await response.json()
            return json.loads(reply["choices"][0]["message"]["content"])["quark_probability"]

        scores = np.array(await asyncio.gather(*(p_quark(j) for j in jets)))
    auc = _auc(scores, labels)
    multiplicity_auc = _auc(-np.array([len(j) for j in jets], float), labels)
    print(f"\nemulated AUC {auc:.3f} vs multiplicity {multiplicity_auc:.3f} on {len(jets)} jets")
    assert 0.7 < auc < multiplicity_auc + 0.01
