"""Merging results files of one run (``vjt tag --shard K/N`` parts, batch imports) into one.

Files merge only when their rows were made the same way: the same settings key (prompt, model
settings, parser), model, effort, template, backend and jets source; otherwise the merge is
refused with one line naming the field and the files. A row that lacks these fields, holds
impossible values or contradicts itself (a label against its probability) is refused, naming
its file and line. A jet in several files is a duplicate (the labelled row is kept, else the
first); two different labels for one jet are a conflict, refused with both rows shown. A jet
of the selection in no file is a gap. Rows keep their signatures: merging never makes a row
verify that did not.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import VJTError
from ..tagging.gate import row_problem
from .rows import numbered_rows

__all__ = ["MERGE_FIELDS", "Merged", "merge_rows"]

MERGE_FIELDS = ("model", "effort", "template", "backend", "source", "settings")
"""Row fields that must agree across merged files."""
_REQUIRED = ("model", "template", "backend", "source", "settings")
_REQUIRED_INPUT = ("backend", "source")
"""What a row must hold (an ``input`` error row, made before any request, holds less)."""
_MAX_INDEX = 2**53


@dataclass
class Merged:
    """Merged rows, one per jet in index order, and what the merge found."""

    rows: list[dict[str, Any]]
    files: list[Path]
    duplicates: list[int] = field(default_factory=list)
    """Jet indices with rows in more than one place (kept: the labelled row, else the first)."""

    @property
    def indices(self) -> set[int]:
        """The jets that have a row."""
        return {int(row["index"]) for row in self.rows}

    def gaps(self, expected: Iterable[int]) -> list[int]:
        """The jets of ``expected`` that no file has, in order."""
        seen = self.indices
        return sorted(int(i) for i in expected if int(i) not in seen)

    def outside(self, expected: Iterable[int]) -> list[int]:
        """Jets with a row that are not in ``expected``."""
        return sorted(self.indices - {int(i) for i in expected})


def _check_row(row: Mapping[str, Any], where: str) -> None:
    """Refuse a row that lacks what a merge compares, or holds impossible values."""
    index = row.get("index")
    if type(index) is not int or not 0 <= index < _MAX_INDEX:
        raise VJTError(f"{where}: index {index!r} is not a jet index")
    required = _REQUIRED_INPUT if row.get("error_kind") == "input" else _REQUIRED
    missing = [name for name in required if not row.get(name)]
    if missing:
        raise VJTError(
            f"{where}: the row has no {', '.join(missing)}, so it cannot be told to belong to "
            "this run; merge only rows written by vjt tag, batch import or merge"
        )
    if row.get("label") is not None:
        problem = row_problem(row)
        if problem is not None:
            raise VJTError(f"{where}: {problem}")
    elif row.get("error") is None:
        raise VJTError(f"{where}: a row with neither a label nor an error")


def _check_same(seen: dict[str, tuple[Any, Path]], row: Mapping[str, Any], path: Path) -> None:
    names = _REQUIRED_INPUT if row.get("error_kind") == "input" else MERGE_FIELDS
    for name in names:
        value = row.get(name)
        first = seen.setdefault(name, (value, path))
        if first[0] != value:
            where = (
                f"{first[1]} and {path}"
                if first[1] != path
                else f"{path} (line of jet {row.get('index')})"
            )
            raise VJTError(
                f"mixed settings: {name} {first[0]!r} and {value!r} in {where}; merge only "
                "the parts of one run"
            )


def merge_rows(paths: Sequence[str | os.PathLike[str]]) -> Merged:
    """One row per jet from the results files ``paths``.

    Raises :class:`VJTError` when the files mix settings, models, efforts, templates,
    backends or sources (naming the field and two files), or a file cannot be read.
    """
    if not paths:
        raise VJTError("no results files to merge")
    seen: dict[str, tuple[Any, Path]] = {}
    best: dict[int, dict[str, Any]] = {}
    duplicates: set[int] = set()
    files = [Path(p) for p in paths]
    where: dict[int, str] = {}
    for path in files:
        for number, row in numbered_rows(path):
            here = f"{path} line {number}"
            _check_row(row, here)
            _check_same(seen, row, path)
            index = int(row["index"])
            kept = best.get(index)
            if kept is None:
                best[index], where[index] = row, here
                continue
            duplicates.add(index)
            label, other = row.get("label"), kept.get("label")
            if label is not None and other is not None and label != other:
                raise VJTError(
                    f"conflict: jet {index} is {other} in {where[index]} "
                    f"(P(quark) {kept.get('quark_probability')}) and {label} in {here} "
                    f"(P(quark) {row.get('quark_probability')}); merge only one run's parts"
                )
            if other is None and label is not None:
                best[index], where[index] = row, here
    return Merged([best[i] for i in sorted(best)], files, sorted(duplicates))
