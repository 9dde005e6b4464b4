"""One partition of jets tagged into its own JSONL file, rows as ``vjt tag`` writes them.

Engine-neutral: a Dask task or any worker calls :func:`tag_to_jsonl` with the jets of its
partition. Each row is written as its jet finishes (:class:`~.store.rows.JsonlWriter`),
so an interrupted partition keeps what it did: run again, its rows that have a label under the
same settings are kept and only the rest is asked. Every jet ends as a row: a label, or an
error of a counted kind (``input`` for a jet whose data is invalid), never a guess.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import VJTError
from ...jets.jet import Jet
from ...store.rows import JsonlWriter, check_owned, numbered_rows, result_row
from ...tagging.gate import RowRefused
from ...tagging.tagger import JetTagger

__all__ = ["PartitionSummary", "backend_of", "tag_to_jsonl"]

logger = logging.getLogger(__name__)


@dataclass
class PartitionSummary:
    """What one partition's file holds."""

    path: str
    jets: int = 0
    labelled: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    """Jets without label, by error kind."""
    resumed: int = 0
    """Rows kept from an earlier run of the same partition."""

    @property
    def failed(self) -> int:
        """Jets without label."""
        return sum(self.errors.values())

    def add(self, row: dict[str, Any]) -> None:
        self.jets += 1
        if row.get("label") is not None:
            self.labelled += 1
        else:
            kind = str(row.get("error_kind") or "server")
            self.errors[kind] = self.errors.get(kind, 0) + 1


def backend_of(tagger: JetTagger) -> str | None:
    """``"emulated"`` or ``"server"`` (what rows record), or ``None`` if the server is down."""
    try:
        info = tagger.server_info()
    except VJTError as exc:  # every jet will say so as its own error row
        logger.warning("%s", exc)
        return None
    if info is None:
        return None
    return "emulated" if info.emulated else "server"


def _kept_rows(
    path: Path, tagger: JetTagger, jets: Sequence[Jet | Exception], indices: Sequence[int | None]
) -> dict[int, dict[str, Any]]:
    """Rows of an earlier run to keep, by position: a label for the same jet and settings that
    the tagger's gate admits (a row that does not verify is asked again)."""
    check_owned(path)
    if not path.exists():
        return {}
    by_index = {}
    for number, row in numbered_rows(path):
        if row.get("label") is not None:
            by_index[row.get("index")] = (f"{path} line {number}", row)
    kept = {}
    for p, (jet, index) in enumerate(zip(jets, indices, strict=True)):
        where, earlier = by_index.get(index) or ("", None)
        if earlier is None or not isinstance(jet, Jet):
            continue
        try:
            tagger.gate.admit_row(earlier, where=where, jet=jet)
        except RowRefused as exc:
            logger.info("%s", exc)
            continue
        kept[p] = earlier
    return kept


def tag_to_jsonl(
    tagger: JetTagger,
    jets: Sequence[Jet | Exception],
    path: str | os.PathLike[str],
    *,
    indices: Sequence[int | None],
    truths: Sequence[int | None] | None = None,
    source: str,
    backend: str | None = None,
    reasoning: bool = False,
) -> PartitionSummary:
    """Tag ``jets`` into the JSONL file ``path``, one row per jet as it finishes.

    ``jets`` may hold, in place of a jet, the exception saying why its data is invalid (as
    :meth:`JetDataset.jets_or_errors` yields): it becomes an ``input`` error row. ``indices``
    are the jets' positions in ``source`` (what rows and merges go by), ``truths`` their
    labels if known. Rows of an earlier run of the same file that have a label for the same
    jet and settings are kept; the file is rewritten with them, then appended to.
    Runs on the process's background event loop (the tagger's ``batch_as_completed``), so a
    tagger shared by the threads of a worker keeps its HTTP clients on one loop.
    """
    path = Path(path)
    if len(indices) != len(jets) or (truths is not None and len(truths) != len(jets)):
        raise ValueError(f"{path}: jets, indices and truths must have the same length")
    kept = _kept_rows(path, tagger, jets, indices)
    summary = PartitionSummary(str(path), resumed=len(kept))
    todo = [p for p in range(len(jets)) if p not in kept]
    with JsonlWriter(path, kept.values()) as writer:
        for row in kept.values():
            summary.add(row)
        valid: list[tuple[int, Jet]] = []
        for p in todo:
            jet = jets[p]
            if isinstance(jet, Jet):
                valid.append((p, jet))
            else:  # its data is invalid: an input error row
                summary.add(_write(writer, jet, p, indices, truths, source, backend, False))
        outcomes = tagger.batch_as_completed([jet for _, jet in valid], return_exceptions=True)
        for i, outcome in outcomes:
            p = valid[i][0]
            summary.add(_write(writer, outcome, p, indices, truths, source, backend, reasoning))
    counts = Counter({"labelled": summary.labelled, **summary.errors})
    logger.info("%s: %d jets (%s), %d kept", path, summary.jets, dict(counts), summary.resumed)
    return summary


def _write(
    writer: JsonlWriter,
    outcome: Any,
    p: int,
    indices: Sequence[int | None],
    truths: Sequence[int | None] | None,
    source: str,
    backend: str | None,
    reasoning: bool,
) -> dict[str, Any]:
    truth = None if truths is None or truths[p] is None else int(truths[p])  # type: ignore[arg-type]
    index = indices[p]
    row = result_row(
        outcome,
        index=index,  # type: ignore[arg-type]
        truth=truth,
        source=source,
        backend=backend,  # type: ignore[arg-type]
        reasoning=reasoning,
    )
    writer.write(row)
    return row
