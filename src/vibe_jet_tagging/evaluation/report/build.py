"""The report of tagged jets (:func:`build_report`) or of several runs on the same jets
(:func:`build_comparison`), as JSON-ready dicts, and :func:`save_report`.

A report holds the tagger's metrics (:mod:`.evaluation`) beside the baselines on the same jets,
each error kind with its count, tokens, cost and latency per jet, the settings, the versions
and the server. What it left out (a baseline the run is too small for, an AUC without both
kinds of jet) is listed in ``notes`` with the reason. Keys starting with ``_`` hold what the
plots need (scores, curves) and are not saved.

A report on emulated answers says so in ``backend_note`` (:data:`EMULATED_NOTE`) and calls the
tagger "emulated server", never "LLM".
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections import Counter
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ...servers.url import redact
from ...store.rows import row_result
from ...tagging.usage import Price, usage_totals
from ..baselines import BASELINES
from ..metrics import DEFAULT_INTERVAL_LEVEL
from .evaluation import baseline_metrics, tagger_metrics

__all__ = [
    "EMULATED_NOTE",
    "ERROR_KINDS",
    "build_comparison",
    "build_report",
    "emulated_settings_note",
    "save_report",
    "tagger_name",
]

EMULATED_NOTE = "emulated server: physics heuristic, not a language model"
"""What reports and plots say when the answers came from the emulated vLLM server."""

_SETTING_NAMES = {"efforts": "reasoning effort", "templates": "template", "models": "model"}


def emulated_settings_note(reports: Mapping[str, Mapping[str, Any]]) -> str | None:
    """What a comparison of runs on the emulated server must say: the settings that differ
    between its runs could not change its answers (``None`` when no setting differs)."""
    varying = [
        key
        for key in ("efforts", "templates", "models")
        if len({tuple(r.get(key) or ()) for r in reports.values()}) > 1
    ]
    if not varying:
        return None
    what = " and the ".join(_SETTING_NAMES[k] for k in varying)
    costs = []
    if "efforts" in varying:
        costs.append(
            "a higher effort only makes the reasoning longer and the answer slower, as on "
            "vLLM serving gpt-oss"
        )
    if "templates" in varying:
        costs.append("another template only draws other noise")
    if "models" in varying:
        costs.append("every model name gets the same answers")
    return (
        f"emulated server: the {what} cannot change its answers (it reads each jet's "
        f"multiplicity and width, plus seeded noise); {'; '.join(costs)}: differences "
        "between these runs say nothing about the settings"
    )


ERROR_KINDS = ("parse", "contradiction", "server", "truncated", "input")
"""The kinds of jet without a label a report always counts (other kinds are added as found)."""

SERVER_KINDS = ("server", "timeout", "connection", "rate_limit", "bad_request")
"""Row error kinds counted as ``server`` errors (each also counted on its own)."""

_VERSIONS = ("vibe-jet-tagging", "numpy", "scikit-learn", "matplotlib", "langchain-openai")


def tagger_name(report: Mapping[str, Any]) -> str:
    """What to call the tagger in tables and legends: the emulated server is no LLM."""
    return {"emulated": "emulated server", "mixed": "LLM + emulated"}.get(
        report.get("backend") or "", "LLM"
    )


def errors_by_kind(rows: Sequence[Mapping[str, Any]]) -> tuple[dict[str, int], dict[str, int]]:
    """Jets without a label by kind (every kind of :data:`ERROR_KINDS`, zeros included), and
    the server errors by their own kind (timeout, connection, ...)."""
    kinds = Counter(
        str(row.get("error_kind") or "server") for row in rows if row.get("error") is not None
    )
    counts = dict.fromkeys(ERROR_KINDS, 0)
    server: dict[str, int] = {}
    for kind, n in sorted(kinds.items()):
        if kind in SERVER_KINDS:
            counts["server"] += n
            server[kind] = n
        else:
            counts[kind] = counts.get(kind, 0) + n
    return counts, server


def versions() -> dict[str, str]:
    """Python and the packages the numbers and plots came from."""
    out = {"python": platform.python_version()}
    for name in _VERSIONS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _backend_of(rows: Sequence[Mapping[str, Any]]) -> str:
    kinds = {row.get("backend") for row in rows} - {None}
    if not kinds:
        return "unknown"
    return str(kinds.pop()) if len(kinds) == 1 else "mixed"


def _server(rows: Sequence[Mapping[str, Any]], kind: str, url: str | None) -> dict[str, Any]:
    urls = sorted({str(row["server"]) for row in rows if row.get("server")})
    if url is not None:
        urls = [url]
    urls = [redact(u) or "" for u in urls]  # rows from older versions, a URL given
    return {
        "kind": kind,
        "urls": urls,
        "description": {
            "emulated": "the emulated vLLM server of vibe-jet-tagging (a physics heuristic)",
            "server": "a model server (vLLM or OpenAI-compatible)",
            "mixed": "rows from a model server and from the emulated server",
        }.get(kind, "not recorded in the results"),
    }


def _recorded_per_jet(results: Sequence[Any]) -> dict[str, float | None]:
    """Mean usage and request seconds recorded with each answer, cache hits included.

    ``cached_input_tokens`` sums what the servers reported (``None`` when none did).
    """
    n = max(len(results), 1)
    cached = [r.usage.cached_input_tokens for r in results]
    known = [c for c in cached if c is not None]
    return {
        "input_tokens": sum(r.usage.input_tokens for r in results) / n,
        "cached_input_tokens": sum(known) / n if known else None,
        "output_tokens": sum(r.usage.output_tokens for r in results) / n,
        "reasoning_tokens": sum(r.usage.reasoning_tokens for r in results) / n,
        "latency": sum(r.latency for r in results) / n,
    }


def _run_summary(
    rows: Sequence[Mapping[str, Any]], prices: Mapping[str, Price] | None, backend: str | None
) -> dict[str, Any]:
    """Counts, errors, settings, usage and latency of one run's rows."""
    results = [row_result(r) for r in rows]
    totals = usage_totals(results, prices)
    fresh = [r for r in results if not r.cached and r.ok]
    latencies = np.array([r.latency for r in fresh]) if fresh else np.array([0.0])
    kind = backend or _backend_of(rows)
    errors, server_errors = errors_by_kind(rows)
    sources = sorted({str(r["source"]) for r in rows if r.get("source")})
    return {
        "backend": kind,
        "backend_note": EMULATED_NOTE if kind in ("emulated", "mixed") else None,
        "source": ", ".join(sources) or "unknown",
        "n_jets": len(rows),
        "n_labelled": totals.labelled,
        "n_errors": totals.errors,
        "n_imported": sum(r.origin == "imported" for r in results if r.ok),
        "cache_hits": totals.cache_hits,
        "errors_by_kind": errors,
        "server_errors_by_kind": server_errors,
        "parsed_by": dict(Counter(r.parsed_by for r in results if r.parsed_by)),
        "models": sorted({r.model for r in results if r.model}),
        "efforts": sorted({r.effort for r in results if r.effort}),
        "templates": sorted({r.template for r in results if r.template}),
        "usage": {
            "input_tokens": totals.usage.input_tokens,
            "cached_input_tokens": totals.usage.cached_input_tokens,
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
    }


def _notes_of(metrics: Mapping[str, Any] | None, name: str) -> list[str]:
    """What a tagger's numbers leave out, in words."""
    if metrics is None:
        return [f"{name}: the jets have no truth labels, so no metrics"]
    notes = []
    if metrics.get("no_auc"):
        notes.append(f"{name}: no AUC or rejection: {metrics['no_auc']}")
    if metrics["n_without_probability"] and metrics["n_scored"]:
        notes.append(
            f"{name}: AUC, rejections and best-cut accuracy over the {metrics['n_scored']} jets "
            "that stated a probability;"
            f" {metrics['n_without_probability']} gave a label only"
        )
    if metrics["n_contradicting"]:
        n = metrics["n_contradicting"]
        notes.append(
            f"{name}: {n} answer{'s' if n > 1 else ''} state{'' if n > 1 else 's'} a label "
            "that contradicts the probability (accuracy uses the label, AUC the probability)"
        )
    return notes


def _add_baselines(
    report: dict[str, Any],
    dataset: Any,
    indices: Sequence[int],
    jets: str,
    *,
    n_bootstrap: int,
    seed: int,
    level: float,
) -> None:
    baselines, left_out, plots = baseline_metrics(
        dataset, indices, n_bootstrap=n_bootstrap, seed=seed, level=level
    )
    report["baselines"] = baselines
    report["baselines_left_out"] = left_out
    report["baselines_on"] = jets
    report["_plot"]["baselines"] = plots
    for name, reason in left_out.items():
        report["notes"].append(f"{BASELINES[name]} left out: {reason}")


def _baseline_jets(plots: Sequence[Mapping[str, Any] | None], rows: Sequence[Any]) -> Any:
    """The jets baselines run on: those behind every tagger's AUC, else all with a truth."""
    common: set[int] | None = None
    for plot in plots:
        indices = set((plot or {}).get("indices") or [])
        common = indices if common is None else common & indices
    truthful = sorted({int(r["index"]) for r in rows if r.get("truth") is not None})
    if common:
        labels = {int(r["index"]): r["truth"] for r in rows if r.get("truth") is not None}
        if {labels[i] for i in common} == {0, 1}:
            whose = "the tagger's AUC" if len(plots) == 1 else "every run's AUC"
            return sorted(common), f"the {len(common)} jets behind {whose}"
    return truthful, f"all {len(truthful)} jets with a true label"


def _imported_note(report: Mapping[str, Any], name: str) -> list[str]:
    """A note when labels came from a file the user trusted, not from this user's runs."""
    n = report.get("n_imported") or 0
    if not n:
        return []
    return [
        f"{name}: {n} of the {report['n_labelled']} labels are imported from a results file "
        "the user chose to trust, not answers this user's runs received from the model"
    ]


def build_report(
    rows: Sequence[Mapping[str, Any]],
    dataset: Any = None,
    *,
    prices: Mapping[str, Price] | None = None,
    backend: str | None = None,
    server: str | None = None,
    name: str | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    level: float = DEFAULT_INTERVAL_LEVEL,
) -> dict[str, Any]:
    """The evaluation of tagged jets, as a JSON-ready dict.

    ``metrics`` holds the tagger's numbers (accuracy from the labels, AUC and rejections from
    the stated probability: see :mod:`.evaluation`); ``dataset`` (the jets the rows index)
    adds the baselines on the same jets. ``backend`` is ``"emulated"``, ``"server"``,
    ``"mixed"`` or ``"unknown"`` (default: from the rows); ``server`` is the base URL, when
    the rows do not record it; ``name`` what to call the tagger (default: :func:`tagger_name`).

    ``usage`` sums what was paid for (cache hits cost nothing): ``per_jet`` divides it by the
    jets asked, ``per_jet_recorded`` averages the usage recorded with every answer (a cache
    hit counts what it cost when it was asked), which compares settings across cached runs.
    """
    # In index order: rows come in the order jets finished, and the bootstrap and the
    # baselines' cross-validation folds would change with it.
    rows = sorted(rows, key=lambda row: row["index"])
    report = _run_summary(rows, prices, backend)
    name = name or tagger_name(report)
    metrics, plot = tagger_metrics(rows, n_bootstrap=n_bootstrap, seed=seed, level=level)
    report.update(
        tagger=name,
        server=_server(rows, report["backend"], server),
        versions=versions(),
        interval_level=level,
        n_bootstrap=n_bootstrap,
        metrics=metrics,
        baselines={},
        baselines_left_out={},
        baselines_on=None,
        notes=_notes_of(metrics, name) + _imported_note(report, name),
        _plot={"taggers": {} if plot is None else {name: plot}, "baselines": {}},
    )
    if dataset is not None and metrics is not None:
        indices, jets = _baseline_jets([plot], rows)
        _add_baselines(
            report, dataset, indices, jets, n_bootstrap=n_bootstrap, seed=seed, level=level
        )
    return report


def build_comparison(
    runs: Mapping[str, Sequence[Mapping[str, Any]]],
    dataset: Any = None,
    *,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    backend: str | None = None,
    server: str | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    level: float = DEFAULT_INTERVAL_LEVEL,
) -> dict[str, Any]:
    """Several runs on the same jets: one report per run (``runs``) and one set of baselines.

    Each run is as :func:`build_report` makes it, without baselines; the baselines run on the
    jets behind every run's AUC (or all jets with a true label).
    """
    reports = {
        name: build_report(
            rows,
            None,
            backend=backend,
            server=server,
            name=name,
            n_bootstrap=n_bootstrap,
            seed=seed,
            level=level,
        )
        for name, rows in runs.items()
    }
    kinds = {r["backend"] for r in reports.values()}
    kind = kinds.pop() if len(kinds) == 1 else "mixed"
    everything = [row for rows in runs.values() for row in rows]
    comparison: dict[str, Any] = {
        "backend": kind,
        "backend_note": EMULATED_NOTE if kind in ("emulated", "mixed") else None,
        "source": ", ".join(sorted({r["source"] for r in reports.values()})),
        "n_jets": len({row["index"] for row in everything}),
        "server": _server(everything, kind, server),
        "versions": versions(),
        "interval_level": level,
        "n_bootstrap": n_bootstrap,
        "runs": {},
        "baselines": {},
        "baselines_left_out": {},
        "baselines_on": None,
        "notes": [],
        "_plot": {"taggers": {}, "baselines": {}},
    }
    for name, report in reports.items():
        report["settings"] = dict((settings or {}).get(name, {}))
        plot = report.pop("_plot")["taggers"]
        if plot:
            comparison["_plot"]["taggers"][name] = next(iter(plot.values()))
        for key in ("server", "versions", "baselines", "baselines_left_out", "baselines_on"):
            report.pop(key)
        comparison["notes"].extend(report.pop("notes"))
        comparison["runs"][name] = report
    if kind == "emulated":
        note = emulated_settings_note(comparison["runs"])
        if note:
            comparison["notes"].insert(0, note)
    if dataset is not None and any(r["metrics"] for r in reports.values()):
        indices, jets = _baseline_jets(list(comparison["_plot"]["taggers"].values()), everything)
        _add_baselines(
            comparison, dataset, indices, jets, n_bootstrap=n_bootstrap, seed=seed, level=level
        )
    return comparison


def _finite(value: Any) -> Any:
    """JSON-safe: inf and nan become None, numpy values Python ones, ``_`` keys dropped."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, np.ndarray):
        return _finite(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def save_report(report: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write the report as JSON, with its tables as printed (inf and nan written as null).

    A rejection of null with ``n_gluon`` gluons means none of them was left: it is above
    ``n_gluon`` (the tables say "> N").
    """
    from .table import metric_tables

    clean = dict(report)
    clean["tables"] = [table.as_dict() for table in metric_tables(report)]
    path = Path(path)
    path.write_text(json.dumps(_finite(clean), indent=2) + "\n", encoding="utf-8")
    return path
