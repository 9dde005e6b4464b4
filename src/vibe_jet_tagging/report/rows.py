"""Evaluating tagged jets: result rows (JSONL), the report, and its plots.

A row is one jet's result as ``vjt tag`` writes it (:func:`result_row`). The report
(:func:`build_report`) puts the LLM's metrics with bootstrap intervals beside the baselines on
the same jets, with tokens, cost and latency per jet, how many answers each parser step read
and how many jets failed. :func:`write_plots` draws the ROC curves, the quark-probability
distributions and a calibration curve.

Rows record which backend answered (``"server"`` or ``"emulated"``); a report on emulated
answers says so in ``backend_note`` (:data:`EMULATED_NOTE`), in its plots' titles, and calls
the tagger "emulated server", never "LLM".
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .errors import VJTError
from .results import TagError, TaggingError, TagResult, Usage
from .usage import Price, usage_totals

__all__ = [
    "EMULATED_NOTE",
    "ROW_FIELDS",
    "JsonlWriter",
    "build_report",
    "draw_roc",
    "read_rows",
    "result_row",
    "row_result",
    "save_report",
    "tagger_name",
    "write_plots",
]

logger = logging.getLogger(__name__)

EMULATED_NOTE = "emulated server: physics heuristic, not a language model"
"""What reports and plots say when the answers came from the emulated vLLM server."""

Backend = Literal["server", "emulated"]
"""Where a row's answer came from: a model server, or the emulated vLLM server."""

ROW_FIELDS = (
    "index",
    "truth",
    "label",
    "quark_probability",
    "logprob_quark_probability",
    "parsed_by",
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "reasoning_estimated",
    "tokens",
    "latency",
    "cached",
    "error",
    "error_kind",
    "model",
    "effort",
    "template",
    "key",
    "source",
    "backend",
)


def result_row(
    outcome: TagResult | Exception,
    *,
    index: int,
    truth: int | None,
    source: str,
    backend: Backend | None = None,
    reasoning: bool = False,
) -> dict[str, Any]:
    """The JSON row of one jet's outcome (a result, or the error it raised).

    ``tokens`` is input plus output tokens (what the answer cost when it was asked, also on
    a cache hit); ``backend`` records whether a model server or the emulated server answered.
    With ``reasoning``, the row also keeps the reasoning text and the final answer.
    """
    if isinstance(outcome, TaggingError):
        outcome = outcome.result
    if isinstance(outcome, Exception):  # e.g. an invalid jet
        return {
            "index": index,
            "truth": truth,
            "label": None,
            "error": str(outcome),
            "error_kind": "input",
            "cached": False,
            "source": source,
            "backend": backend,
        }
    r = outcome
    row = {
        "index": index,
        "truth": truth,
        "label": r.label,
        "quark_probability": r.quark_probability,
        "logprob_quark_probability": r.logprob_quark_probability,
        "parsed_by": r.parsed_by,
        "input_tokens": r.usage.input_tokens,
        "output_tokens": r.usage.output_tokens,
        "reasoning_tokens": r.usage.reasoning_tokens,
        "reasoning_estimated": r.usage.reasoning_estimated,
        "tokens": r.usage.total_tokens,
        "latency": round(r.latency, 4),
        "cached": r.cached,
        "error": None if r.error is None else r.error.message,
        "error_kind": None if r.error is None else r.error.kind,
        "model": r.model,
        "effort": r.effort,
        "template": r.template,
        "key": r.key,
        "source": source,
        "backend": backend,
    }
    if reasoning:
        row["reasoning"] = r.reasoning
        row["answer"] = r.answer
    return row


def row_result(row: Mapping[str, Any]) -> TagResult:
    """A :class:`TagResult` with the fields a row keeps (for totals over rows)."""

    error = None
    if row.get("error") is not None:
        error = TagError(kind=row.get("error_kind") or "server", message=row["error"])
    return TagResult(
        index=row.get("index"),
        jet_key="",
        key=row.get("key") or "",
        label=row.get("label"),
        quark_probability=row.get("quark_probability"),
        parsed_by=row.get("parsed_by"),
        usage=Usage(
            input_tokens=row.get("input_tokens") or 0,
            output_tokens=row.get("output_tokens") or 0,
            reasoning_tokens=row.get("reasoning_tokens") or 0,
            reasoning_estimated=bool(row.get("reasoning_estimated")),
            requests=0 if row.get("cached") else 1,
        ),
        latency=row.get("latency") or 0.0,
        model=row.get("model") or "",
        effort=row.get("effort"),
        template=row.get("template") or "",
        cached=bool(row.get("cached")),
        error=error,
    )


class JsonlWriter:
    """Appends rows to a JSONL file, each with one ``write`` of a whole line, flushed.

    A crash or Ctrl-C leaves only whole lines (at worst a last partial line, which
    :func:`read_rows` skips and :meth:`open` trims away).
    """

    def __init__(self, path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]] = ()):
        """Start ``path`` over with ``rows`` (written atomically), then append."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, allow_nan=False) + "\n")
        os.replace(tmp, self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)

    def write(self, row: Mapping[str, Any]) -> None:
        """Append one row as one line."""
        os.write(self._fd, (json.dumps(row, allow_nan=False) + "\n").encode())

    def close(self) -> None:
        """Close the file."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_rows(path: str | os.PathLike[str], *, strict: bool = False) -> list[dict[str, Any]]:
    """The rows of a results file; a partial last line (from a killed run) is skipped.

    With ``strict``, any line that is not a JSON object raises :class:`VJTError` naming the
    file and line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise VJTError(f"{path}: no such results file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VJTError(f"{path}: cannot read: {exc}") from None
    lines = text.split("\n")
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or "index" not in row:
                raise ValueError("not a result row")
        except ValueError as exc:
            last = number == len(lines) or (number == len(lines) - 1 and not lines[-1])
            if last and not text.endswith("\n") and not strict:
                logger.warning("%s: line %d is cut short (killed run?), skipped", path, number)
                continue
            raise VJTError(f"{path}: line {number} is not a result row: {exc}") from None
        rows.append(row)
    return rows


# -- the report ---------------------------------------------------------------------------------


def _finite(value: Any) -> Any:
    """JSON-safe numbers: inf and nan become None, numpy scalars become Python ones."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


_METRIC_KEYS = ("auc", "accuracy", "rejection_at_30", "rejection_at_50")


def _metrics_summary(metrics: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: metrics[k] for k in _METRIC_KEYS}
    out.update(
        intervals=metrics.get("intervals", {}),
        threshold=metrics.get("threshold"),
        threshold_method=metrics.get("threshold_method"),
        confusion=metrics.get("confusion"),
    )
    return out


def build_report(
    rows: Sequence[Mapping[str, Any]],
    dataset: Any = None,
    *,
    prices: Mapping[str, Price] | None = None,
    backend: Backend | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """The evaluation of tagged jets, as a JSON-ready dict.

    ``dataset`` (the jets the rows index) adds the baselines on the same labelled jets; the
    LLM's accuracy is at P(quark) >= 0.5 and the baselines' at their best cut (stated).
    ``accuracy_all_jets`` counts a jet without a label as wrong.

    ``backend`` is ``"emulated"``, ``"server"``, ``"mixed"`` or ``"unknown"`` (default: from
    the rows); with emulated answers ``backend_note`` says they are not a language model's.
    ``usage`` sums what was paid for (cache hits cost nothing): ``per_jet`` divides it by the
    jets asked, ``per_jet_recorded`` averages the usage recorded with every answer (a cache
    hit counts what it cost when it was asked), which compares settings across cached runs.
    """
    from .metrics import evaluate_scores

    # In index order: rows come in the order jets finished, and the bootstrap and the
    # baselines' cross-validation folds would change with it.
    rows = sorted(rows, key=lambda row: row["index"])
    results = [row_result(r) for r in rows]
    totals = usage_totals(results, prices)
    kind = backend or _backend_of(rows)
    fresh = [r for r in results if not r.cached and r.ok]
    latencies = np.array([r.latency for r in fresh]) if fresh else np.array([0.0])
    labelled = [
        (row, res)
        for row, res in zip(rows, results, strict=True)
        if res.ok and row.get("truth") is not None
    ]
    report: dict[str, Any] = {
        "backend": kind,
        "backend_note": EMULATED_NOTE if kind in ("emulated", "mixed") else None,
        "n_jets": len(rows),
        "n_labelled": totals.labelled,
        "n_errors": totals.errors,
        "cache_hits": totals.cache_hits,
        "errors_by_kind": dict(Counter(r.error.kind for r in results if r.error)),
        "parsed_by": dict(Counter(r.parsed_by for r in results if r.parsed_by)),
        "models": sorted({r.model for r in results if r.model}),
        "efforts": sorted({r.effort for r in results if r.effort}),
        "templates": sorted({r.template for r in results if r.template}),
        "usage": {
            "input_tokens": totals.usage.input_tokens,
            "output_tokens": totals.usage.output_tokens,
            "reasoning_tokens": totals.usage.reasoning_tokens,
            "reasoning_estimated": totals.usage.reasoning_estimated,
            "requests": totals.usage.requests,
            "cost": totals.cost,
            "per_jet": totals.per_jet(),
            "per_jet_recorded": _recorded_per_jet(results),
        },
        "latency": {
            "p50": float(np.percentile(latencies, 50)),
            "p90": float(np.percentile(latencies, 90)),
            "p99": float(np.percentile(latencies, 99)),
            "mean": float(latencies.mean()),
            "n": len(fresh),
        },
        "metrics": None,
        "baselines": {},
    }
    truth_all = [row.get("truth") for row in rows]
    if labelled and len({row["truth"] for row, _ in labelled}) == 2:
        y = np.array([row["truth"] for row, _ in labelled])
        score = np.array([res.score for _, res in labelled])
        metrics = evaluate_scores(y, score, threshold=0.5, n_bootstrap=n_bootstrap, seed=seed)
        report["metrics"] = _metrics_summary(metrics)
        correct = sum(res.value == row["truth"] for row, res in labelled)
        report["metrics"]["accuracy_all_jets"] = correct / sum(t is not None for t in truth_all)
        report["metrics"]["n"] = len(y)
        report["metrics"]["scores_are"] = (
            "stated probabilities"
            if all(res.quark_probability is not None for _, res in labelled)
            else "stated probabilities where given, else the hard label (0/1)"
        )
        if dataset is not None:
            report["baselines"] = _baselines(
                dataset, [row["index"] for row, _ in labelled], n_bootstrap=n_bootstrap, seed=seed
            )
        report["_curves"] = {"llm": (y, score)}
        for name, b in report["baselines"].items():
            report["_curves"][name] = (y, b.pop("scores"))
    return report


def _backend_of(rows: Sequence[Mapping[str, Any]]) -> str:
    kinds = {row.get("backend") for row in rows} - {None}
    if not kinds:
        return "unknown"
    return kinds.pop() if len(kinds) == 1 else "mixed"


def _recorded_per_jet(results: Sequence[TagResult]) -> dict[str, float]:
    """Mean usage and request seconds recorded with each answer, cache hits included."""
    n = max(len(results), 1)
    return {
        "input_tokens": sum(r.usage.input_tokens for r in results) / n,
        "output_tokens": sum(r.usage.output_tokens for r in results) / n,
        "reasoning_tokens": sum(r.usage.reasoning_tokens for r in results) / n,
        "latency": sum(r.latency for r in results) / n,
    }


def _baselines(dataset: Any, indices: list[int], *, n_bootstrap: int, seed: int) -> dict:
    from .baselines import run_baselines

    position = {int(i): p for p, i in enumerate(np.asarray(dataset.indices))}
    try:
        subset = dataset[np.array([position[i] for i in indices])]
    except KeyError as exc:
        raise VJTError(f"result index {exc.args[0]} is not a jet of {dataset.source}") from None
    out = {}
    for name, metrics in run_baselines(subset, seed=seed, n_bootstrap=n_bootstrap).items():
        summary = _metrics_summary(metrics)
        summary["description"] = metrics.get("description")
        summary["scores"] = np.asarray(metrics["scores"])
        out[name] = summary
    return out


def save_report(report: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write the report as JSON (curves left out; inf written as null)."""
    clean = {k: v for k, v in report.items() if not k.startswith("_")}
    path = Path(path)
    path.write_text(json.dumps(_finite(clean), indent=2) + "\n", encoding="utf-8")
    return path


# -- plots ------------------------------------------------------------------------------------

_CURVE_NAMES = {"multiplicity": "multiplicity", "logistic_regression": "logistic regr."}


def tagger_name(report: Mapping[str, Any]) -> str:
    """What to call the tagger in tables and legends: the emulated server is no LLM."""
    return {"emulated": "emulated server", "mixed": "LLM + emulated"}.get(
        report.get("backend") or "", "LLM"
    )


def draw_roc(
    ax: Any,
    curves: Iterable[tuple[str, Any, Any, Mapping[str, Any]]],
    *,
    title: str,
    note: str | None = None,
) -> None:
    """ROC curves as gluon mistag rate (log) against quark efficiency, with the random line.

    ``curves`` holds ``(label, y, score, plot style)``. Points at zero mistag rate cannot sit
    on the log axis and are left out. ``note`` (e.g. :data:`EMULATED_NOTE`) goes under the
    title.
    """
    from sklearn.metrics import roc_curve

    for label, y, score, style in curves:
        fpr, tpr, _ = roc_curve(y, score)
        keep = fpr > 0
        ax.plot(tpr[keep], fpr[keep], label=label, **style)
    eff = np.logspace(-3, 0, 200)
    ax.plot(eff, eff, ls=":", c="grey", label="random (ε_g = ε_q)")
    ax.set(
        xlabel="quark efficiency ε_q",
        ylabel="gluon mistag rate ε_g",
        yscale="log",
        ylim=(1e-3, 1.05),
        xlim=(0, 1),
    )
    ax.set_title(title if note is None else f"{title}\n{note}", fontsize=10)
    ax.legend(loc="lower right", fontsize=7)


def _figure(width: float, height: float) -> Any:
    # A bare Figure, not pyplot: no global backend switch (a notebook keeps its own) and
    # nothing left open.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def write_plots(report: Mapping[str, Any], out_dir: str | os.PathLike[str]) -> list[Path]:
    """``roc.png`` (the tagger and the baselines), ``probability.png`` and ``calibration.png``.

    With emulated answers, the titles say so (:data:`EMULATED_NOTE`) and the tagger is called
    "emulated server", not "LLM". Returns the files written (none without labelled jets).
    """
    from sklearn.calibration import calibration_curve

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    curves = report.get("_curves") or {}
    if "llm" not in curves:
        logger.warning("no labelled jets with known truth: no plots")
        return []
    name = tagger_name(report)
    note = report.get("backend_note")
    written = []

    fig = _figure(5.5, 4.6)
    ax = fig.subplots()
    entries = []
    for curve, (y, score) in curves.items():
        metrics = report["metrics"] if curve == "llm" else report["baselines"][curve]
        label = name if curve == "llm" else _CURVE_NAMES.get(curve, curve)
        style = {"lw": 2.2} if curve == "llm" else {"lw": 1.4, "ls": "--"}
        entries.append((f"{label} (AUC {metrics['auc']:.3f})", y, score, style))
    draw_roc(ax, entries, title=f"{report['n_labelled']} labelled jets", note=note)
    fig.tight_layout()
    written.append(out / "roc.png")
    fig.savefig(written[-1], dpi=130)

    y, score = curves["llm"]
    suffix = "" if note is None else f"\n{note}"
    fig = _figure(5.5, 4)
    ax = fig.subplots()
    bins = np.linspace(0, 1, 21)
    ax.hist(score[y == 1], bins=bins, histtype="step", lw=2, label="true quark", density=True)
    ax.hist(score[y == 0], bins=bins, histtype="step", lw=2, label="true gluon", density=True)
    ax.set(xlabel=f"P(quark) from the {name}'s answer", ylabel="density")
    ax.set_title(f"quark probability{suffix}", fontsize=10)
    ax.legend()
    fig.tight_layout()
    written.append(out / "probability.png")
    fig.savefig(written[-1], dpi=130)

    fig = _figure(4.8, 4.8)
    ax = fig.subplots()
    frac, mean = calibration_curve(y, score, n_bins=10, strategy="quantile")
    ax.plot(mean, frac, "o-", label=name)
    ax.plot([0, 1], [0, 1], ls=":", c="grey", label="perfectly calibrated")
    ax.set(xlabel="stated P(quark)", ylabel="fraction of quark jets")
    ax.set_title(f"calibration{suffix}", fontsize=10)
    ax.legend()
    fig.tight_layout()
    written.append(out / "calibration.png")
    fig.savefig(written[-1], dpi=130)
    return written
