"""Merging results files of one run (``vjt tag --shard K/N`` parts, batch imports) into one.

Files merge only when their rows were made the same way: the same settings key (prompt, model
settings, parser), model, effort, template, backend and jets source; otherwise the merge is
refused with one line naming the field and the files. A jet in several files is a duplicate
(the labelled row is kept, else the first); a jet of the selection in no file is a gap.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import VJTError
from .rows import read_rows

__all__ = ["MERGE_FIELDS", "Merged", "merge_rows"]

MERGE_FIELDS = ("model", "effort", "template", "backend", "source", "settings")
"""Row fields that must agree across merged files (rows that lack one are not compared)."""


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


def _check_same(seen: dict[str, tuple[Any, Path]], row: Mapping[str, Any], path: Path) -> None:
    for name in MERGE_FIELDS:
        value = row.get(name)
        if value is None:
            continue
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
    for path in files:
        for row in read_rows(path):
            _check_same(seen, row, path)
            index = int(row["index"])
            kept = best.get(index)
            if kept is None:
                best[index] = row
                continue
            duplicates.add(index)
            if kept.get("label") is None and row.get("label") is not None:
                best[index] = row
    return Merged([best[i] for i in sorted(best)], files, sorted(duplicates))
