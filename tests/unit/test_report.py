"""The report on rows of real jets: what each number uses, small runs, errors, plots, HTML.

Rows are made from jets of the bundled sample with a stated probability that follows their
multiplicity (a tagger that is good but not perfect), so every number can be recomputed here
from the rows with scikit-learn or by hand.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score

from vibe_jet_tagging.evaluation.report import (
    build_comparison,
    build_report,
    error_summary,
    fmt_fraction,
    fmt_rejection,
    metric_tables,
    save_report,
    write_html,
    write_plots,
)
from vibe_jet_tagging.evaluation.report.html import render_html
from vibe_jet_tagging.evaluation.report.plots import draw_roc
from vibe_jet_tagging.jets.dataset import JetDataset, load_sample

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def sample() -> JetDataset:
    return load_sample()


def make_rows(
    jets: JetDataset,
    *,
    errors: dict[int, str] | None = None,
    flip: tuple[int, ...] = (),
    hard: bool = False,
    backend: str = "server",
) -> list[dict]:
    """One row per jet: P(quark) from the multiplicity, the label from P (``flip``: the label
    contradicts P), an error of the given kind for positions in ``errors``."""
    mult = jets.observables()["multiplicity"]
    p = np.round(1 / (1 + np.exp((mult - 43) / 7)), 3)
    rows = []
    for pos, (index, truth) in enumerate(zip(jets.indices, jets.labels, strict=True)):
        row = {
            "index": int(index),
            "truth": int(truth),
            "label": "quark" if (p[pos] >= 0.5) != (pos in flip) else "gluon",
            "quark_probability": None if hard else float(p[pos]),
            "parsed_by": "regex" if hard else "schema",
            "input_tokens": 1000,
            "output_tokens": 200,
            "reasoning_tokens": 150,
            "latency": 1.0,
            "cached": False,
            "error": None,
            "error_kind": None,
            "model": "openai/gpt-oss-120b",
            "effort": "medium",
            "template": "few_shot",
            "source": jets.source,
            "backend": backend,
        }
        if errors and pos in errors:
            row.update(
                label=None,
                quark_probability=None,
                parsed_by=None,
                error=f"{errors[pos]} failure",
                error_kind=errors[pos],
            )
        rows.append(row)
    return rows


def everything_written(report: dict, tmp_path: Path) -> tuple[str, str, list[Path]]:
    """report.json, the plots and the page, as a command writes them; no "∞" anywhere."""
    json_text = save_report(report, tmp_path / "report.json").read_text()
    json.loads(json_text)  # valid JSON: no NaN or Infinity
    plots = write_plots(report, tmp_path)
    for plot in plots:
        assert plot.read_bytes()[:8] == PNG
    page = write_html(report, tmp_path / "report.html", plots).read_text()
    page = re.sub(r"base64,[A-Za-z0-9+/=]+", "base64,", page)  # the images
    tables = "\n".join(str(t.as_dict()) for t in metric_tables(report))
    for text in (json_text, page, tables):
        assert not re.search(r"∞|\binf\b|Infinity|\bnan\b|NaN", text)
    return json_text, page, plots


def test_accuracy_comes_from_the_labels_and_auc_from_the_probability(sample, tmp_path):
    jets = sample.balanced(200, seed=3)
    rows = make_rows(jets, flip=(0, 5, 9))  # three answers contradict themselves
    report = build_report(rows, sample, n_bootstrap=200)
    m = report["metrics"]
    truth = np.array([r["truth"] for r in rows])
    labels = np.array([r["label"] == "quark" for r in rows])
    p = np.array([r["quark_probability"] for r in rows])
    assert m["accuracy"] == pytest.approx(np.mean(labels == (truth == 1)))
    assert m["accuracy"] != pytest.approx(np.mean((p >= 0.5) == (truth == 1)))
    assert m["auc"] == pytest.approx(roc_auc_score(truth, p))
    assert m["accuracy_from"].startswith("label") and m["auc_from"].startswith("quark_probability")
    assert m["n_contradicting"] == 3
    assert any("3 answers state a label that contradicts" in n for n in report["notes"])
    assert "3 labels contradict their probability" in error_summary(report)
    # The baselines ran on the same jets, and their accuracy at 0.5 is apart from the best cut.
    mult = -jets.observables()["multiplicity"]
    assert report["baselines"]["multiplicity"]["auc"] == pytest.approx(
        roc_auc_score(jets.labels, mult)
    )
    assert report["baselines"]["multiplicity"]["accuracy"] is None  # a count: no 0.5
    lr = report["baselines"]["logistic_regression"]
    assert lr["accuracy"] is not None and lr["accuracy_best_cut"] >= lr["accuracy"]
    json_text, _page, _ = everything_written(report, tmp_path)
    saved = json.loads(json_text)
    assert "label" in saved["metrics"]["accuracy_from"]
    accuracy_table = saved["tables"][1]
    assert "label" in accuracy_table["caption"] and "label" in accuracy_table["title"]
    assert "P(quark)" in saved["tables"][0]["title"]


def test_jets_without_a_label_count_in_the_headline_by_kind(sample, tmp_path):
    jets = sample.balanced(40, seed=4)
    kinds = ["parse"] * 3 + ["contradiction"] * 2 + ["timeout", "connection", "server"]
    kinds += ["truncated", "input", "refusal"]  # "refusal": a kind this version does not know
    rows = make_rows(jets, errors=dict(enumerate(kinds)))
    report = build_report(rows, sample, n_bootstrap=100)
    assert report["errors_by_kind"] == {
        "parse": 3,
        "contradiction": 2,
        "server": 3,
        "truncated": 1,
        "input": 1,
        "refusal": 1,
    }
    assert report["server_errors_by_kind"] == {"connection": 1, "server": 1, "timeout": 1}
    assert report["n_errors"] == 11 and report["n_labelled"] == 29
    m = report["metrics"]
    right = sum((r["label"] == "quark") == (r["truth"] == 1) for r in rows if r["label"])
    assert m["accuracy"] == pytest.approx(right / 29)
    assert m["accuracy_all_jets"] == pytest.approx(right / 40)
    assert (m["n_labelled"], m["n_all"]) == (29, 40)
    assert error_summary(report) == (
        "40 jets: 29 labelled, 11 without a label (parse 3, contradiction 2, server 3 "
        "(connection 1, server 1, timeout 1), truncated 1, input 1, refusal 1)"
    )
    scores, accuracy = metric_tables(report)
    tagger, all_jets = accuracy.rows[0], accuracy.rows[1]
    assert tagger[:2] == [report["tagger"], "29"]
    assert all_jets[0].strip() == "all jets" and all_jets[1] == "40"
    assert 1 in accuracy.sub
    # The baselines ran on the 29 jets behind the tagger's AUC, not on all 40.
    assert scores.rows[1][1] == "29" and report["baselines"]["multiplicity"]["n_scored"] == 29
    everything_written(report, tmp_path)


@pytest.mark.parametrize(
    ("case", "n"),
    [
        ("8 jets", 8),
        ("2 jets", 2),
        ("one kind", 8),
        ("all errors", 8),
        ("hard labels", 40),
        ("no truth", 8),
    ],
)
def test_small_and_odd_runs_report_what_they_can(sample, tmp_path, case, n):
    if case == "one kind":
        gluons = np.flatnonzero(sample.labels == 0)[:n]
        jets = sample[gluons]
    else:
        jets = sample.balanced(n, seed=5)
    errors = dict.fromkeys(range(n), "parse") if case == "all errors" else None
    rows = make_rows(jets, errors=errors, hard=case == "hard labels")
    if case == "no truth":  # e.g. jets of a real run, where nobody knows
        rows = [{**row, "truth": None} for row in rows]
    report = build_report(rows, sample, n_bootstrap=200)
    _json_text, page, plots = everything_written(report, tmp_path)
    m = report["metrics"]
    notes = " | ".join(report["notes"])
    if case == "no truth":
        assert m is None and report["baselines"] == {} and plots == []
        assert "the jets have no truth labels, so no metrics" in notes
        assert "8 jets: 8 labelled" in page
        return
    assert "<table>" in page
    if case in ("8 jets", "2 jets"):
        assert m["auc"] is not None and set(report["baselines"]) == {"multiplicity"}
        assert "logistic regression left out: its 5-fold cross-validation needs at least 10" in (
            notes
        )
        assert [p.name for p in plots] == ["roc.png", "calibration.png", "scores.png"]
    if case == "one kind":
        assert m["auc"] is None and m["accuracy"] is not None
        assert "an AUC needs quark and gluon jets" in m["no_auc"]
        assert report["baselines"] == {}
        assert "multiplicity cut left out: needs quark and gluon jets" in notes
    if case == "all errors":
        assert m["accuracy"] is None and m["accuracy_all_jets"] == 0.0
        assert report["errors_by_kind"]["parse"] == n
        assert "no jet got a label" in notes
        # The baselines still show what these jets allow, on all of them.
        assert report["baselines_on"] == f"all {n} jets with a true label"
        assert [p.name for p in plots] == ["roc.png"]
    if case == "hard labels":
        assert m["hard_labels"] and m["auc"] is None
        assert "one working point, no curve" in notes
        wp = m["working_point"]
        quarks = [r for r in rows if r["truth"] == 1]
        assert wp["eps_q"] == pytest.approx(np.mean([r["label"] == "quark" for r in quarks]))
        assert [p.name for p in plots] == ["roc.png"]  # a point, no probability to plot


def roc_axes(report: dict) -> tuple:
    fig = Figure()
    ax = fig.subplots()
    draw_roc(ax, report)
    return fig, ax


def test_roc_stops_at_what_the_gluons_resolve_with_bands_and_no_infinity(sample):
    jets = sample.balanced(200, seed=6)
    report = build_report(make_rows(jets), sample, n_bootstrap=200)
    _, ax = roc_axes(report)
    lo, hi = ax.get_ylim()
    assert lo == 1 and 100 <= hi < 110  # 100 gluon jets: nothing above 1/εg = 100 resolves
    assert len(ax.collections) >= 3  # a band for the tagger and each baseline
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    texts += [t.get_text() for t in ax.get_yticklabels()]
    assert not [t for t in texts if "∞" in t or "inf" in t]
    assert any(t.startswith("random") for t in texts)
    assert any("its labels" in t for t in texts)  # the working point of the labels
    # The band holds the curve (pointwise 68 % interval around the resampled curves).
    roc = report["_plot"]["taggers"][report["tagger"]]["roc"]
    inside = (roc["eps_g_lo"] <= roc["eps_g"] + 1e-12) & (roc["eps_g"] <= roc["eps_g_hi"] + 1e-12)
    assert inside.mean() > 0.9


def test_a_hard_label_tagger_is_a_point_not_a_curve(sample):
    jets = sample.balanced(40, seed=7)
    report = build_report(make_rows(jets, hard=True), sample, n_bootstrap=100)
    _, ax = roc_axes(report)
    labels = [line.get_label() for line in ax.get_lines()]
    assert not [label for label in labels if label.startswith(report["tagger"])]  # no curve
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("labels only, no probability" in t for t in legend)


def test_identical_runs_stay_visible_in_a_comparison(sample, tmp_path):
    jets = sample.balanced(40, seed=8)
    rows = make_rows(jets, backend="emulated")
    comparison = build_comparison(
        {"low": rows, "high": rows}, sample, settings={"low": {}, "high": {}}, n_bootstrap=100
    )
    assert set(comparison["runs"]) == {"low", "high"}
    assert comparison["backend_note"]
    _, ax = roc_axes(comparison)
    curves = {
        line.get_label().split(":")[0]: line
        for line in ax.get_lines()
        if line.get_label().startswith(("low", "high"))
    }
    low, high = curves["low"], curves["high"]
    np.testing.assert_array_equal(low.get_ydata(), high.get_ydata())  # the same curve...
    assert (low.get_linestyle(), low.get_marker()) != (high.get_linestyle(), high.get_marker())
    assert low.get_markevery() != high.get_markevery()  # ...with markers at other places
    scores, _accuracy = metric_tables(comparison)
    assert [r[0] for r in scores.rows] == ["low", "high", "multiplicity", "logistic regr."]
    assert scores.rows[0][1:] == scores.rows[1][1:]
    _, _page, plots = everything_written(comparison, tmp_path)
    assert [p.name for p in plots] == ["roc.png", "calibration.png", "scores.png"]


def test_each_metric_is_written_one_way() -> None:
    # Value ± half the interval, rounded as the PDG does (2 digits up to 354, else 1).
    assert fmt_fraction(0.826, [0.797, 0.855]) == "0.826 ± 0.029"
    assert fmt_fraction(0.8456, [0.8396, 0.8516]) == "0.846 ± 0.006"
    assert fmt_fraction(0.75, [0.6, 0.9]) == "0.75 ± 0.15"
    assert fmt_fraction(0.9, [0.8904, 0.9096]) == "0.900 ± 0.010"  # 0.0096 rounds up
    # A lopsided interval is written as one: 8 right of 8 is not "1.00 ± 0.10".
    assert fmt_fraction(1.0, [0.795, 1.0]) == "1.00 (0.80–1.00)"
    assert fmt_fraction(0.5) == "0.500"
    assert fmt_fraction(None) == fmt_fraction(float("nan")) == "-"
    # Rejections: above the N gluon jets they rest on, "> N", never infinity.
    assert fmt_rejection(14.2, [11.3, 24.1], 100) == "14 (11–24)"
    assert fmt_rejection(6.54, [3.9, 18.2], 20) == "6.5 (3.9–18)"
    assert fmt_rejection(math.inf, [49.0, math.inf], 100) == "> 100 (49–>100)"
    assert fmt_rejection(150.0, [60.0, 300.0], 100) == "> 100 (60–>100)"  # interpolated
    assert fmt_rejection(None, [None, None], 20) == "> 20"  # as report.json writes inf
    assert fmt_rejection(12.0, [float("nan"), float("nan")], 20) == "12"
    assert fmt_rejection(None) == "-"


def test_the_report_names_the_servers_that_answered() -> None:
    from vibe_jet_tagging.evaluation.report import result_row
    from vibe_jet_tagging.tagging.results import TagResult

    urls = ["http://gpu-a:8000/v1", "http://gpu-b:8000/v1"]
    rows = [
        result_row(
            TagResult(
                index=i, jet_key="", key="", label="quark", quark_probability=0.9, server=url
            ),
            index=i,
            truth=i % 2,
            source="sample",
            backend="server",
        )
        for i, url in enumerate(urls * 2)
    ]
    assert [row["server"] for row in rows] == urls * 2
    report = build_report(rows, n_bootstrap=0)
    assert report["server"]["urls"] == urls
    assert build_report(rows, n_bootstrap=0, server="http://x/v1")["server"]["urls"] == [
        "http://x/v1"
    ]
    assert "gpu-b" in render_html(report)


def test_a_fully_cached_run_says_no_jet_was_asked_not_a_latency_of_zero(sample) -> None:
    rows = [dict(row, cached=True) for row in make_rows(sample.balanced(20, seed=3))]
    page = render_html(build_report(rows, n_bootstrap=0))
    assert "p50 0.00 s" not in page
    assert "none asked in this run (recorded when asked: 1.00 s per jet)" in page
    fresh = render_html(build_report(make_rows(sample.balanced(20, seed=3)), n_bootstrap=0))
    assert "p50 1.00 s, p90 1.00 s (20 jets)" in fresh


def test_a_comparison_on_the_emulator_says_the_settings_could_not_differ(sample) -> None:
    jets = sample.balanced(20, seed=4)

    def run(backend: str, **settings: str) -> list[dict]:
        return [dict(row, **settings) for row in make_rows(jets, backend=backend)]

    emulated = build_comparison(
        {"low": run("emulated", effort="low"), "high": run("emulated", effort="high")},
        n_bootstrap=0,
    )
    note = emulated["notes"][0]
    assert note.startswith("emulated server: the reasoning effort cannot change its answers")
    assert "a higher effort only makes the reasoning longer and the answer slower" in note
    assert "say nothing about the settings" in note
    both = build_comparison(
        {
            "a": run("emulated", effort="low", template="zero_shot"),
            "b": run("emulated", effort="high", template="few_shot"),
        },
        n_bootstrap=0,
    )
    assert both["notes"][0].startswith(
        "emulated server: the reasoning effort and the template cannot change its answers"
    )
    assert "another template only draws other noise" in both["notes"][0]
    # A model server's runs may differ: nothing is said; nor when no setting differs.
    served = build_comparison(
        {"low": run("server", effort="low"), "high": run("server", effort="high")},
        n_bootstrap=0,
    )
    same = build_comparison({"a": run("emulated"), "b": run("emulated")}, n_bootstrap=0)
    assert not any("cannot change" in n for n in served["notes"] + same["notes"])
