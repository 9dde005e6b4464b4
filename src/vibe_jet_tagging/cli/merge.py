"""``vjt merge``: results files of one run's parts (``vjt tag --shard K/N``) into one file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from .app import CLIError, app
from .checks import check_results_files
from .options import Balanced, Limit, Seed
from .run import open_jets, say, select

_SHOWN = 10  # jet indices listed in a duplicates or gaps line


def _listed(indices: list[int]) -> str:
    shown = ", ".join(map(str, indices[:_SHOWN]))
    return shown + (f", ... ({len(indices) - _SHOWN} more)" if len(indices) > _SHOWN else "")


def _expected(rows: list[dict[str, Any]], jets: str | None, **selection: Any) -> Any:
    """The selection the parts were cut from: ``--jets`` or the recorded source, or None."""
    source = jets or next((r.get("source") for r in rows if r.get("source")), None)
    if source is None:
        return None
    try:
        dataset = open_jets(source)
    except CLIError:
        say(f"[yellow]jets {source!r} not found: gaps not checked (pass --jets)[/]")
        return None
    return select(dataset, **selection)


@app.command()
def merge(
    files: Annotated[list[Path], typer.Argument(help="Results files of one run's parts.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Merged results file (JSONL).")],
    jets: Annotated[
        str | None,
        typer.Option(help="The jets the parts were cut from (default: the recorded source)."),
    ] = None,
    limit: Limit = None,
    balanced: Balanced = False,
    seed: Seed = None,
) -> None:
    """Merge results files into one row per jet; report duplicates and gaps.

    Refuses files made with other settings, model, effort, template, backend or jets. Gaps are
    checked against the recorded source (or --jets), with the same --limit/--balanced/--seed
    as the parts were tagged with.
    """
    if output.resolve() in {f.resolve() for f in files}:
        raise CLIError(f"{output}: the merged file must not be one of the files merged")
    check_results_files(files)  # before the stack that reads rows is imported
    from ..store.merging import merge_rows
    from ..store.rows import JsonlWriter

    merged = merge_rows(files)
    if not merged.rows:
        raise CLIError("no result rows in " + ", ".join(map(str, files)))
    expected = _expected(merged.rows, jets, limit=limit, balanced=balanced, seed=seed)
    with JsonlWriter(output, merged.rows):
        pass
    labelled = sum(row.get("label") is not None for row in merged.rows)
    say(
        f"merged {len(files)} files into {escape(str(output))}: {len(merged.rows)} jets "
        f"({labelled} labelled, {len(merged.rows) - labelled} without label)"
    )
    if merged.duplicates:
        say(
            f"[yellow]duplicates: {len(merged.duplicates)} jets are in more than one file "
            f"(kept one row each, a labelled one first): {_listed(merged.duplicates)}[/]"
        )
    if expected is not None:
        gaps = merged.gaps(expected.indices)
        outside = merged.outside(expected.indices)
        if gaps:
            say(
                f"[yellow]gaps: {len(gaps)} of the {len(expected)} jets of "
                f"{escape(expected.source)} are in no file: {_listed(gaps)}[/]"
            )
        else:
            say(f"no gaps: every one of the {len(expected)} jets of {escape(expected.source)}")
        if outside:
            say(
                f"[yellow]{len(outside)} jets are not in the selection (other --limit or "
                f"--jets?): {_listed(outside)}[/]"
            )
