"""``vjt compare``: the same jets over several efforts, templates or models."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from .app import CLIError, app, console
from .options import (
    BaseUrl,
    Concurrency,
    Emulate,
    JetsArg,
    Limit,
    MaxRetries,
    MaxTokens,
    Seed,
    Temperature,
    Timeout,
)
from .render import _num
from .run import (
    check_template,
    example_pool,
    make_tagger,
    open_jets,
    say,
    select,
    server,
    settings_from,
    tag_to_file,
)


def _split(values: str | None) -> list[str] | None:
    if values is None:
        return None
    items = [v.strip() for v in values.split(",") if v.strip()]
    if not items:
        raise CLIError(f"empty list {values!r}: give comma-separated values")
    return items


def _run_names(grid: list[dict[str, str]]) -> list[str]:
    """Short run names from the settings that vary (``low``, ``few_shot/high``...)."""
    short = {"model": lambda v: v.split("/")[-1], "template": lambda v: Path(v).stem}
    varying = [k for k in ("model", "template", "effort") if len({g[k] for g in grid}) > 1]
    keys = varying or ["effort"]
    names = ["/".join(short.get(k, str)(g[k]) for k in keys) for g in grid]
    if len(set(names)) < len(names):
        raise CLIError("the runs to compare are not all different: drop the repeated values")
    return names


@app.command()
def compare(
    jets: JetsArg,
    out: Annotated[Path, typer.Option("--out", help="Folder for results, table and plot.")] = Path(
        "vjt-compare"
    ),
    efforts: Annotated[
        str | None, typer.Option(help="Comma-separated efforts, e.g. low,medium,high.")
    ] = None,
    templates: Annotated[str | None, typer.Option(help="Comma-separated templates.")] = None,
    models: Annotated[str | None, typer.Option(help="Comma-separated model names.")] = None,
    base_url: BaseUrl = None,
    concurrency: Concurrency = None,
    limit: Limit = 100,
    seed: Seed = None,
    emulate: Emulate = False,
    max_tokens: MaxTokens = None,
    timeout: Timeout = None,
    max_retries: MaxRetries = None,
    temperature: Temperature = None,
) -> None:
    """The same jets over several efforts, templates or models: one table, one ROC plot."""
    from ..report import build_report, read_rows

    request = {
        "base_url": base_url,
        "concurrency": concurrency,
        "seed": seed,
        "max_tokens": max_tokens,
        "timeout": timeout,
        "max_retries": max_retries,
        "temperature": temperature,
    }
    base = settings_from(**request)
    for e in _split(efforts) or []:
        if e not in ("low", "medium", "high"):
            raise CLIError(f"invalid effort {e!r} in --efforts: use low, medium or high")
    grid = [
        {"effort": e, "template": t, "model": m}
        for e in _split(efforts) or [base.effort]
        for t in _split(templates) or [base.template]
        for m in _split(models) or [base.model]
    ]
    # Every setting is checked before any server starts or any jet is asked.
    runs = [settings_from(**g, **request) for g in grid]
    for settings in runs:
        check_template(settings.template)
    names = _run_names(grid)
    dataset = open_jets(jets)
    selection = select(dataset, limit, dataset.labels is not None, seed)
    examples = example_pool()
    out.mkdir(parents=True, exist_ok=True)
    reports: dict[str, dict[str, Any]] = {}
    served = sorted({g["model"] for g in grid})
    shared = server(True, runs[0], models=served) if emulate else contextlib.nullcontext(None)
    with shared as emulated:
        if emulated is not None:
            emulated.announce()
        for settings, name, g in zip(runs, names, grid, strict=True):
            own = contextlib.nullcontext(emulated) if emulate else server(False, settings)
            with own as backend:
                assert backend is not None
                if not emulate:
                    backend.announce()
                tagger = make_tagger(settings, backend, examples, cache=True, refresh=False)
                path = out / f"results-{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.jsonl"
                tag_to_file(tagger, selection, path, backend=backend.kind, description=name)
            reports[name] = build_report(read_rows(path), dataset, backend=backend.kind)
            reports[name]["settings"] = g
    _compare_outputs(reports, out, len(selection))


def _compare_outputs(reports: dict[str, dict[str, Any]], out: Path, n_jets: int) -> None:
    """The comparison table, ``roc.png`` and ``compare.json``."""
    from ..report import EMULATED_NOTE, draw_roc, save_report

    backends = {r["backend"] for r in reports.values()}
    backend = backends.pop() if len(backends) == 1 else "mixed"
    note = EMULATED_NOTE if backend in ("emulated", "mixed") else None

    table = Table(
        title=f"comparison on the same {n_jets} jets",
        title_justify="left",
        caption="tokens and seconds: per jet, as recorded when asked (cache hits included)",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
    )
    table.add_column("run", no_wrap=True)
    for col in ("AUC", "acc.", "1/εg@50%", "in tok", "out tok", "s/jet", "err"):
        table.add_column(col, justify="right", no_wrap=True)
    for name, report in reports.items():
        m = report.get("metrics") or {}
        rec = report["usage"]["per_jet_recorded"]
        table.add_row(
            name,
            "-" if m.get("auc") is None else f"{m['auc']:.3f}",
            "-" if m.get("accuracy") is None else f"{m['accuracy']:.3f}",
            _num(m.get("rejection_at_50")) if m else "-",
            f"{rec['input_tokens']:,.0f}",
            f"{rec['output_tokens']:,.0f}",
            f"{rec['latency']:.2f}",
            str(report["n_errors"]),
        )

    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.8))
    ax = fig.subplots()
    entries = []
    baselines: dict[str, Any] = {}
    for name, report in reports.items():
        curves = report.get("_curves") or {}
        if "llm" in curves:
            y, score = curves["llm"]
            label = f"{name} (AUC {report['metrics']['auc']:.3f})"
            entries.append((label, y, score, {"lw": 2}))
        for curve, (y, score) in curves.items():
            if curve != "llm" and curve not in baselines:
                auc = report["baselines"][curve]["auc"]
                label = f"{curve.replace('_', ' ')} (AUC {auc:.3f})"
                baselines[curve] = (label, y, score, {"lw": 1.2, "ls": "--"})
    draw_roc(
        ax,
        [*entries, *baselines.values()],
        title=f"{n_jets} jets, {len(reports)} settings",
        note=note,
    )
    fig.tight_layout()
    fig.savefig(out / "roc.png", dpi=130)

    save_report(
        {
            "backend": backend,
            "backend_note": note,
            "n_jets": n_jets,
            "runs": {
                n: {k: v for k, v in r.items() if not k.startswith("_")} for n, r in reports.items()
            },
        },
        out / "compare.json",
    )
    console.print(table)
    if note:
        say(f"[yellow]{note} (these numbers say nothing about an LLM)[/]")
    say(f"plot:   {escape(str(out / 'roc.png'))}")
    say(f"table:  {escape(str(out / 'compare.json'))}")
