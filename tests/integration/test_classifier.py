"""``LocalLLMClassifier`` against the emulated vLLM server (a physics heuristic, not an LLM)."""

from __future__ import annotations

import ast
import asyncio
import io
import sys
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from vibe_jet_tagging.estimator import verbose as _verbose
from vibe_jet_tagging.estimator.classifier import LocalLLMClassifier, UnlabelledJetsWarning
from vibe_jet_tagging.jets.dataset import load_sample

SAMPLE = load_sample()
TRAIN = SAMPLE[np.arange(0, 4000, 50)]  # 80 labelled jets, quark and gluon
TEST = SAMPLE.balanced(40, seed=11)


def classifier(server, **options) -> LocalLLMClassifier:
    options.setdefault("cache", False)
    return LocalLLMClassifier(base_url=server.base_url, reasoning_effort="low", **options)


def test_fit_predict_proba_score(emulator):
    clf = classifier(emulator).fit(TRAIN, TRAIN.labels)
    # fit keeps the labelled jets as the few-shot pool.
    selector = clf.tagger_.prompt.selector
    assert {e.jet.key for e in selector.examples} == {j.key for j in TRAIN}
    assert [e.label for e in selector.examples] == TRAIN.labels.tolist()

    predictions = clf.predict(TEST)
    assert predictions.shape == (40,)
    assert set(predictions.tolist()) == {0, 1}
    assert predictions.tolist() == [int(r.label == "quark") for r in clf.results_]
    assert [r.index for r in clf.results_] == TEST.indices.tolist()
    assert not clf.failures_
    assert clf.totals_.jets == 40 and clf.totals_.usage.output_tokens > 0

    proba = clf.predict_proba(TEST)
    assert proba.shape == (40, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(proba[:, 1], [r.quark_probability for r in clf.results_])

    accuracy = clf.score(TEST, TEST.labels)
    assert 0.5 < accuracy <= 1
    assert accuracy == pytest.approx(np.mean(clf.predict(TEST) == TEST.labels))


async def test_apredict_matches_predict(emulator):
    clf = classifier(emulator).fit(TRAIN, TRAIN.labels)
    jets = TEST[:10]
    assert (await clf.apredict(jets)).tolist() == clf.predict(jets).tolist()
    proba = await clf.apredict_proba(jets)
    assert proba.shape == (10, 2)


async def test_sync_calls_work_inside_a_running_event_loop(emulator):
    asyncio.get_running_loop()  # like a Jupyter cell: a loop runs in this thread
    clf = classifier(emulator).fit(TRAIN, TRAIN.labels)
    predictions = clf.predict(TEST[:6])
    assert predictions.shape == (6,) and set(predictions.tolist()) <= {0, 1}
    assert clf.predict_proba(TEST[:6]).shape == (6, 2)
    assert 0 <= clf.score(TEST[:6], TEST.labels[:6]) <= 1
    assert "nest_asyncio" not in sys.modules


def test_verbose_module_does_not_import_the_classifier():
    # The classifier calls _verbose; _verbose takes plain values and imports nothing back.
    tree = ast.parse(Path(_verbose.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m and "classifier" in m}


def test_verbose_shows_usage_reasoning_answer_and_totals(emulator, monkeypatch):
    buffer = io.StringIO()
    monkeypatch.setattr(_verbose, "console", Console(file=buffer, width=200, color_system=None))
    clf = classifier(emulator, verbose=True, price={"input": 1.0, "output": 4.0})
    clf.fit(TRAIN, TRAIN.labels)
    clf.predict(TEST[:2])
    text = buffer.getvalue()
    first = clf.results_[0]
    usage = first.usage
    assert f"jet {first.index}" in text
    assert "model openai/gpt-oss-120b · effort low · template few_shot" in text
    assert f"input tokens    {usage.input_tokens:,}" in text
    assert f"output tokens   {usage.output_tokens:,}" in text
    assert f"reasoning  {usage.reasoning_tokens:,}" in text
    cost = usage.input_tokens * 1e-6 + usage.output_tokens * 4e-6
    assert f"${cost:.6f}" in text
    assert first.reasoning[:60] in text  # the preview
    assert "more characters]" in text  # cut after the preview
    assert first.answer in text  # the final answer
    assert f"{first.label} (P(quark) = {first.quark_probability:.2f}, by schema)" in text
    totals = clf.totals_
    assert (
        f"running totals: 2 jets, 2 labelled, 0 without label, 0 from cache · tokens in "
        f"{totals.usage.input_tokens:,}"
    ) in text

    # Running totals add up across calls; a jet asked before is shown again, paid once.
    clf.predict(TEST[2:3])
    assert "running totals: 3 jets, 3 labelled, 0 without label, 0 from cache" in buffer.getvalue()
    start = len(buffer.getvalue())
    clf.predict(TEST[:1])
    again = buffer.getvalue()[start:]
    assert f"jet {first.index}" in again and "(cached: nothing paid)" in again
    assert first.reasoning[:60] in again
    assert "running totals: 4 jets, 4 labelled, 0 without label, 1 from cache" in again
    assert f"cost ${clf.totals_.cost:.6f}" in again and clf.totals_.cost == clf.cost_
    size = len(buffer.getvalue())
    clf.predict(TEST[3:4], verbose=False)
    assert len(buffer.getvalue()) == size


def test_unlabelled_jets_give_minus_one_and_nan_never_a_guess(fresh_emulator):
    # Half the answers are cut short (finish_reason "length"): those jets get no label.
    server = fresh_emulator(faults={"truncation": 0.5})
    clf = classifier(server, reask=False).fit(TRAIN, TRAIN.labels)
    jets = TEST[:16]
    with pytest.warns(UnlabelledJetsWarning, match=r"of 16 jets got no label \(\d+ truncated"):
        predictions = clf.predict(jets)
    failed = [r.index for r in clf.failures_]
    assert 0 < len(failed) < 16
    assert all(r.error.kind == "truncated" and r.label is None for r in clf.failures_)
    for prediction, result in zip(predictions, clf.results_, strict=True):
        assert prediction == (-1 if result.index in failed else int(result.label == "quark"))

    # predict_proba on the same jets reads the kept answers: the same jets are nan, none asked.
    server.reset_stats()
    with pytest.warns(UnlabelledJetsWarning):
        proba = clf.predict_proba(jets)
    assert server.stats()["requests_total"] == 0
    assert np.isnan(proba[predictions == -1]).all()
    assert not np.isnan(proba[predictions != -1]).any()

    server.set_faults(truncation=1.0)
    clf.fit(TRAIN, TRAIN.labels)  # a new fit asks again
    with pytest.warns(UnlabelledJetsWarning, match="16 of 16 jets got no label"):
        proba = clf.predict_proba(jets)
    assert np.isnan(proba).all()
    assert len(clf.failures_) == 16
    with pytest.warns(UnlabelledJetsWarning, match="score counts them as wrong"):
        assert clf.score(jets, jets.labels) == 0.0  # a jet without a label counts as wrong


def test_use_async_false_sends_one_request_at_a_time(fresh_emulator):
    server = fresh_emulator(itl=0.0002)
    clf = classifier(server).fit(TRAIN, TRAIN.labels)
    clf.predict(TEST[:8], use_async=False)
    stats = server.stats()
    assert stats["requests_total"] == 8
    assert stats["max_running"] == 1

    server.reset_stats()
    clf.predict(TEST[8:16])
    assert server.stats()["max_running"] > 1
