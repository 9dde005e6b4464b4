"""``vjt evaluate``: metrics, baselines, usage and plots of a results file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from .app import CLIError, app
from .checks import check_results_files
from .render import print_report, show
from .run import open_jets, say


def _dataset_for(rows: list[dict[str, Any]], jets: str | None) -> Any:
    """The jets results index: ``--jets``, else the source the rows recorded (if found)."""
    from ..jets.dataset import load_jets, load_sample

    if jets is not None:
        return open_jets(jets)
    source = rows[0].get("source")
    if source == "sample":
        return load_sample()
    if source and Path(source).exists():
        return load_jets(source)
    say(f"[yellow]jets {source!r} not found: no baselines (pass --jets)[/]")
    return None


def evaluate_file(
    results: Path | list[Path],
    out: Path,
    jets: str | None = None,
    *,
    server: str | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Build, print and write the report of a results file (or of several, merged as
    ``vjt merge`` merges them); returns the report.

    Writes ``report.json``, the plots and ``report.html`` (all of them, embedded) into ``out``;
    ``server`` is the base URL the rows were tagged against, when they do not record it.
    """
    from ..evaluation.report import build_report, read_rows, save_report, write_html, write_plots

    if isinstance(results, list) and len(results) > 1:
        from ..store.merging import merge_rows

        merged = merge_rows(results)
        rows = merged.rows
        if merged.duplicates:
            say(f"[yellow]{len(merged.duplicates)} jets are in more than one file: one row each[/]")
    else:
        results = results[0] if isinstance(results, list) else results
        rows = read_rows(results)
    if not rows:
        raise CLIError(f"{results}: no result rows")
    report = build_report(rows, _dataset_for(rows, jets), server=server)
    out.mkdir(parents=True, exist_ok=True)
    save_report(report, out / "report.json")
    plots = write_plots(report, out)
    page = write_html(report, out / "report.html", plots, command=command)
    print_report(report)
    show(f"report: {escape(str(out / 'report.json'))}")
    show(f"page:   {escape(str(page))}")
    for plot in plots:
        show(f"plot:   {escape(str(plot))}")
    return report


@app.command()
def evaluate(
    results: Annotated[
        list[Path],
        typer.Argument(help="A results file from vjt tag (several: the parts of one run)."),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Folder for report.json, plots, report.html.")
    ] = Path("vjt-out"),
    jets: Annotated[
        str | None, typer.Option(help="The jets the results index (default: as recorded).")
    ] = None,
) -> None:
    """Metrics with intervals beside the baselines, usage and latency.

    Writes report.json, the plots and report.html (one self-contained page) into OUT; the
    tables go to stdout.
    """
    check_results_files(results)
    evaluate_file(results, out, jets, command="vjt evaluate " + " ".join(map(str, results)))
