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


def _smallest_balanced(dataset: Any, indices: Any, seed: int) -> Any:
    """The smallest ``dataset.balanced(n, seed)`` that holds every jet of ``indices``, or None.

    Subsets of one seed nest (each kind is taken from the front of one seeded shuffle), so
    the smallest one that holds the rows is found from how far into each shuffle they reach.
    """
    np = _numpy()
    labels = dataset.labels
    if labels is None:
        return None
    half = 0
    for label in (1, 0):
        pool = np.flatnonzero(labels == label)
        rank = np.empty(len(pool), dtype=np.intp)
        rank[np.random.default_rng([seed, label]).permutation(len(pool))] = np.arange(len(pool))
        chosen = np.searchsorted(pool, indices[labels[indices] == label])
        if len(chosen):
            half = max(half, int(rank[chosen].max()) + 1)
    if half == 0 or 2 * half > len(dataset):
        return None
    return dataset.balanced(2 * half, seed=seed)


def _numpy() -> Any:
    import numpy

    return numpy


def _inferred_selection(
    dataset: Any, indices: list[int], seed: int | None
) -> tuple[Any, str] | None:
    """The run's selection as the rows show it, when the merge is given no --limit: the
    smallest selection a ``vjt tag`` run makes (the first N, or a balanced subset of
    ``--seed``) that holds every row, else the whole source; and the flags that make it.

    ``None`` when even that selection is more than twice the rows: they are then no run's
    selection that can be told (another --seed?), and gaps against it would mislead.
    """
    np = _numpy()
    seen = np.asarray(sorted(indices), dtype=np.intp)
    if not len(seen) or seen[0] < 0 or seen[-1] >= len(dataset):
        return dataset, ""
    candidates = [(len(dataset), dataset, "")]
    first = int(seen[-1]) + 1
    if first < len(dataset):
        candidates.append((first, dataset.head(first), f"--limit {first}"))
    balanced = _smallest_balanced(dataset, seen, seed or 0)
    if balanced is not None and len(balanced) < len(dataset):
        flags = f"--limit {len(balanced)} --balanced" + (f" --seed {seed}" if seed else "")
        candidates.append((len(balanced), balanced, flags))
    size, selection, flags = min(candidates, key=lambda c: c[0])
    return None if size > 2 * len(seen) else (selection, flags)


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
    checked against the recorded source (or --jets) with the --limit, --balanced and --seed
    the parts were tagged with; without --limit, against the smallest selection of vjt tag
    that holds the rows (the first N jets, or a balanced subset of --seed), which a missing
    last part does not change.
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
    inferred, source = "", None if expected is None else expected.source
    if expected is not None and limit is None:  # the parts' own selection, as the rows show
        found = _inferred_selection(expected, sorted(merged.indices), seed)
        expected, inferred = found or (None, "")
    with JsonlWriter(output, merged.rows):
        pass
    labelled = sum(row.get("label") is not None for row in merged.rows)
    say(
        f"merged {len(files)} file{'s' if len(files) != 1 else ''} into "
        f"{escape(str(output))}: {len(merged.rows)} jets ({labelled} labelled, "
        f"{len(merged.rows) - labelled} without label)"
    )
    if merged.duplicates:
        say(
            f"[yellow]duplicates: {len(merged.duplicates)} jets are in more than one file "
            f"(kept one row each, a labelled one first): {_listed(merged.duplicates)}[/]"
        )
    if expected is None and source is not None:
        say(
            f"[yellow]gaps not checked: the {len(merged.rows)} jets with a row are not what "
            f"vjt tag selects from {escape(source)} with --limit alone or with --balanced "
            f"(seed {seed or 0}); pass the run's --limit, --balanced and --seed[/]"
        )
    if expected is not None:
        gaps = merged.gaps(expected.indices)
        outside = merged.outside(expected.indices)
        # The run's selection: as given, or the smallest one of vjt tag holding the rows.
        of = f"{len(expected)} jets of {escape(expected.source)}"
        if inferred:
            of += (
                f" selected by {inferred} (as the rows show; a missing last part would not "
                "show: pass the run's --limit, --balanced and --seed to check against them)"
            )
        if gaps:
            say(f"[yellow]gaps: {len(gaps)} of the {of} are in no file: {_listed(gaps)}[/]")
        else:
            say(f"no gaps: every one of the {of} has a row")
        if outside:
            say(
                f"[yellow]{len(outside)} jets are not in the selection (other --limit or "
                f"--jets?): {_listed(outside)}[/]"
            )
