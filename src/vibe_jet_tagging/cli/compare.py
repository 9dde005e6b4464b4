"""``vjt compare``: the same jets over several efforts, templates or models."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from .app import CLIError, app
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
from .render import print_notes, print_tables, show
from .run import (
    check_template,
    example_pool,
    make_tagger,
    open_jets,
    select,
    server,
    settings_from,
)
from .tagfile import tag_to_file


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
    """The same jets over several efforts, templates or models, against the baselines.

    Writes each run's results, compare.json, the plots and compare.html into OUT; the tables
    go to stdout.
    """
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
    dataset = open_jets(jets)  # a missing file is answered before the template stack loads
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
    selection = select(dataset, limit, dataset.labels is not None, seed)
    from ..store.rows import read_rows

    examples = example_pool()
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict[str, Any]]] = {}
    url = None
    served = sorted({g["model"] for g in grid})
    shared = server(True, runs[0], models=served) if emulate else contextlib.nullcontext(None)
    with shared as emulated:
        if emulated is not None:
            emulated.announce()
        for settings, name in zip(runs, names, strict=True):
            own = contextlib.nullcontext(emulated) if emulate else server(False, settings)
            with own as backend:
                assert backend is not None
                if not emulate:
                    backend.announce()
                tagger = make_tagger(settings, backend, examples, cache=True, refresh=False)
                path = out / f"results-{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.jsonl"
                tag_to_file(tagger, selection, path, backend=backend.kind, description=name)
            rows[name] = read_rows(path)
            url = backend.shown
    _compare_outputs(rows, dict(zip(names, grid, strict=True)), dataset, out, url)


def _compare_outputs(
    rows: dict[str, list[dict[str, Any]]],
    settings: dict[str, dict[str, str]],
    dataset: Any,
    out: Path,
    url: str | None,
) -> dict[str, Any]:
    """The comparison's tables, plots, ``compare.json`` and ``compare.html``."""
    from ..evaluation.report import build_comparison, save_report, write_html, write_plots
    from ..evaluation.report.table import usage_table

    comparison = build_comparison(rows, dataset, settings=settings, server=url)
    save_report(comparison, out / "compare.json")
    plots = write_plots(comparison, out)
    costs = usage_table(comparison)
    page = write_html(
        comparison,
        out / "compare.html",
        plots,
        title=f"Comparison on the same {comparison['n_jets']:,} jets",
        extra_tables=[costs],
    )
    print_tables(comparison, [costs])
    print_notes(comparison)
    show(f"table:  {escape(str(out / 'compare.json'))}")
    show(f"page:   {escape(str(page))}")
    for plot in plots:
        show(f"plot:   {escape(str(plot))}")
    return comparison
