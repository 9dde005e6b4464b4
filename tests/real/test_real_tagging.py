"""Tagging through a real vLLM server (``pytest -m real_vllm``; see ``real_vllm`` in conftest).

What any model must do (labels or counted errors, usage, the default settings accepted by the
server) is checked on the real tier's SmolLM2-135M; what only a reasoning model does (the
reasoning text) is skipped, saying so, for a model that sends none. Point
``VJT_REAL_BASE_URL``/``VJT_REAL_MODEL`` at a gpt-oss server to run that too. SmolLM2 is a
135M-parameter chat model: its labels are poor, so these tests check the plumbing, never the
physics. A few-shot prompt costs it ~5-6k tokens of CPU prefill: a handful of jets only.
"""

from __future__ import annotations

import json

import pytest

from vibe_jet_tagging import ChatVLLM, JetTagger, TaggingError, load_sample
from vibe_jet_tagging.cli import main
from vibe_jet_tagging.tagging.model import REASONING_KEY

pytestmark = pytest.mark.real_vllm

SAMPLE = load_sample()


def tagger(server, **options) -> JetTagger:
    options.setdefault("template", "zero_shot")
    options.setdefault("cache", None)
    return JetTagger(server.model, base_url=server.base_url, api_key=server.api_key, **options)


async def test_default_settings_tag_jets(real_vllm) -> None:
    """No option set beyond the server: every jet gets a label or a counted error, never a 400."""
    jets = list(SAMPLE.balanced(4, seed=3))
    results = await tagger(real_vllm, effort="low").abatch(jets, return_exceptions=True)
    real_vllm.record(results)
    outcomes = [getattr(r, "result", r) for r in results]
    # SmolLM2 often contradicts itself (a gluon label with p = 0.9): counted, never a label.
    for r in outcomes:
        assert r.ok or r.error.kind in ("parse", "contradiction", "truncated"), r.error
        assert r.usage.input_tokens > 200 and r.usage.output_tokens > 0
        if r.ok:
            assert (r.label == "quark") == (r.quark_probability >= 0.5)
            assert r.label in ("quark", "gluon")
            assert r.parsed_by in ("schema", "reask", "regex")


async def test_answers_are_compact_json(real_vllm) -> None:
    """The structured_outputs regex reaches vLLM: the answer is compact and cannot run away."""
    import re

    from vibe_jet_tagging.tagging.parsing import COMPACT_LABEL_REGEX

    t = tagger(real_vllm, effort="low", reask=False)
    try:
        result = await t.ainvoke(SAMPLE[5])
    except TaggingError as exc:  # a contradiction is an error, but the answer is still shown
        result = exc.result
    real_vllm.record([result])
    assert result.finish_reason == "stop"
    assert re.fullmatch(COMPACT_LABEL_REGEX, result.answer), result.answer


async def test_a_few_shot_jet(real_vllm) -> None:
    """The default template: ~5-6k prompt tokens for this model, inside its 8192 context."""
    t = tagger(real_vllm, effort="low", template="few_shot", examples=SAMPLE[2000:2400])
    try:
        result = await t.ainvoke(SAMPLE[7])
    except TaggingError as exc:
        result = exc.result
    real_vllm.record([result])
    assert result.error is None or result.error.kind not in ("bad_request", "truncated")
    # A contradicted answer is asked again once (reask): usage sums both requests.
    usage = result.usage
    assert usage.requests in (1, 2), usage
    assert 3000 < usage.input_tokens / usage.requests < 8192, usage


def test_vjt_tag_with_default_settings(real_vllm, tmp_path, capsys) -> None:
    """The issue's command: 6 rows, none a bad_request, from a real server and its model."""
    out = tmp_path / "r.jsonl"
    code = main(
        ["tag", "sample", "-o", str(out), "--base-url", real_vllm.base_url,
         "--model", real_vllm.model, "--limit", "6", "--balanced", "--effort", "low",
         "--template", "zero_shot"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 6
    assert {r["backend"] for r in rows} == {"server"}
    assert all(r["error_kind"] != "bad_request" for r in rows), rows
    real_vllm.tagged.update("labelled" if r["label"] else r["error_kind"] for r in rows)


def test_usage_metadata_through_chatvllm(real_vllm) -> None:
    model = ChatVLLM(
        base_url=real_vllm.base_url, model=real_vllm.model, api_key=real_vllm.api_key,
        reasoning_effort="low", max_tokens=16,
    )  # fmt: skip
    message = model.invoke("Is a jet with 60 soft constituents more quark- or gluon-like?")
    usage = message.usage_metadata
    assert usage["input_tokens"] > 10
    assert 0 < usage["output_tokens"] <= 16
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


def test_reasoning_text_comes_back(real_vllm) -> None:
    """Only a reasoning model (gpt-oss) sends reasoning; SmolLM2 does not."""
    model = ChatVLLM(
        base_url=real_vllm.base_url, model=real_vllm.model, api_key=real_vllm.api_key,
        reasoning_effort="low", max_tokens=512,
    )  # fmt: skip
    message = model.invoke("Is a jet with 60 soft constituents more quark- or gluon-like?")
    if not message.additional_kwargs.get(REASONING_KEY):
        pytest.skip(
            f"needs a reasoning model: {real_vllm.model!r} sent no reasoning field "
            "(set VJT_REAL_BASE_URL/VJT_REAL_MODEL to a gpt-oss server)"
        )
    assert len(message.additional_kwargs[REASONING_KEY]) > 20
