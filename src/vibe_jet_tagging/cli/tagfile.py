"""Tagging into a results file: resumable, streamed, and honest about how it ended.

:func:`tag_to_file` keeps the rows an output already holds for the same jets and settings
(each labelled row only when the gate verifies it: see
:meth:`~vibe_jet_tagging.tagging.gate.AnswerGate.admit_row`), moves every other row to a side
file (rows are never deleted), and streams one row per jet as it finishes. The counts it
returns say whether server failures left jets without an answer, which ``vjt tag`` turns
into its exit status.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from . import interrupt
from .app import CLIError, console
from .breaker import Breaker, RunStopped
from .lazy import lazy
from .run import say

np = lazy("numpy")

__all__ = ["Plan", "RunStats", "set_aside_path", "tag_to_file"]

_SERVER_KINDS = frozenset(
    {"server", "timeout", "connection", "rate_limit", "bad_request", "repeated_failure"}
)
"""Error kinds that say a server failed (the same as ``tagging.results.SERVER_KINDS``)."""


@dataclass
class RunStats:
    """Counts shown on the progress bar and in the summary."""

    done: int = 0
    resumed: int = 0
    errors: int = 0
    input_errors: int = 0  # this run's jets whose own data cannot be tagged
    kept_input_errors: int = 0  # such jets' rows kept from a previous run
    server_failures: int = 0  # this run's jets a server failure left without an answer
    imported: int = 0  # rows kept that came from a trusted file, not this user's runs
    cache_hits: int = 0
    tokens: int = 0
    started: float = field(default_factory=time.perf_counter)
    servers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def asked(self) -> int:
        """Jets sent to the server in this run."""
        return self.done - self.cache_hits - self.input_errors

    @property
    def invalid(self) -> int:
        """Jets in the output that can never be tagged: their data is invalid."""
        return self.input_errors + self.kept_input_errors

    @property
    def retryable(self) -> int:
        """Jets of this run without label that a rerun asks again."""
        return self.errors - self.input_errors

    def add(self, row: dict[str, Any]) -> None:
        self.done += 1
        self.errors += row.get("error") is not None
        self.input_errors += row.get("error_kind") == "input"
        self.server_failures += row.get("error_kind") in _SERVER_KINDS
        self.cache_hits += bool(row.get("cached"))
        if not row.get("cached"):
            self.tokens += row.get("tokens") or 0

    def line(self) -> str:
        """Errors, cache hits, tokens and jets per second, short enough for 80 columns."""
        rate = self.done / max(time.perf_counter() - self.started, 1e-9)
        tokens = next(
            f"{self.tokens / scale:.1f}{unit}"
            for scale, unit in ((1e6, "M"), (1e3, "k"), (1, ""))
            if self.tokens >= scale or scale == 1
        )
        line = f"{self.errors} err · {self.cache_hits} cached · {tokens} tok · {rate:.1f} jets/s"
        if len(self.servers) > 1:  # answered (failed) per server, by host:port
            line += " · " + " ".join(
                f"{urlsplit(s['base_url']).netloc} {s['ok']}"
                + (f" ({s['failed']} failed)" if s["failed"] else "")
                for s in self.servers
            )
        return line


def set_aside_path(output: Path) -> Path:
    """The side file of ``output``: ``results.jsonl`` -> ``results.set-aside.jsonl``."""
    return output.with_name(f"{output.stem}.set-aside{output.suffix}")


@dataclass
class Plan:
    """What becomes of the rows already in an output and its side file (see _plan_rows)."""

    kept: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Rows kept in the output, by position in the selection."""
    aside: list[dict[str, Any]] = field(default_factory=list)
    """What the side file holds afterwards."""
    moved: list[dict[str, Any]] = field(default_factory=list)
    """Rows of the output that move to the side file."""
    restored: int = 0
    """Rows of the side file that come back to the output."""
    retry: int = 0
    """Jets whose row had no label with these settings: asked again, the row replaced."""
    refused: list[str] = field(default_factory=list)
    """Why labelled rows that fit the run were not kept (file and line each)."""


def _identity(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True)


Numbered = list[tuple[str, dict[str, Any]]]
"""Rows with where each is (``file line N``)."""


def _plan_rows(
    rows: Numbered,
    earlier: Numbered,
    tagger: Any,
    selection: Any,
    backend: str,
    *,
    resume: bool = True,
    trusted: frozenset[str] = frozenset(),
) -> Plan:
    """Sort the rows of the output (``rows``) and of its side file (``earlier``).

    Kept in the output (with ``resume``): a labelled row for a jet of the selection, made by
    the same kind of backend, that the gate admits (same cache key, values that agree, and a
    signature that verifies, or a file in ``trusted``: then it is kept as imported); or an
    ``input`` error for a jet whose data still fails the same way. Replaced by this run: a row
    of the same settings without a label (asked again), and without ``resume`` any row of the
    same settings (the run makes it again). Every other row (other jets, other settings or
    server, a second copy of a jet, a row the gate refuses) goes to the side file: rows are
    never deleted. Rows of the side file that fit the run come back; exact copies are kept
    once. The jets are read once, in order, and an invalid one stops nothing.
    """
    from ..tagging.gate import RowRefused

    source = selection.source
    positions = {int(idx): p for p, idx in enumerate(np.asarray(selection.indices))}
    candidates: list[tuple[int, str, dict[str, Any], bool]] = []
    plan = Plan()
    seen: set[str] = set()

    def aside(row: dict[str, Any], from_output: bool) -> None:
        identity = _identity(row)
        if identity not in seen:
            seen.add(identity)
            plan.aside.append(row)
            if from_output:
                plan.moved.append(row)

    outside: list[tuple[dict[str, Any], bool]] = []
    every = [(w, r, True) for w, r in rows] + [(w, r, False) for w, r in earlier]
    for where, row, from_output in every:
        index = row.get("index")
        p = positions.get(index) if type(index) is int else None
        if p is None or row.get("source") != source or row.get("backend", backend) != backend:
            outside.append((row, from_output))
        else:
            candidates.append((p, where, row, from_output))
    wanted = sorted({p for p, _, _, _ in candidates})
    read = selection[np.array(wanted, dtype=np.intp)].jets_or_errors()
    jets = dict(zip(wanted, read, strict=True))
    retried: set[int] = set()
    for p, where, row, from_output in candidates:
        jet = jets[p]
        if row.get("error_kind") == "input":
            fits = isinstance(jet, ValueError) and str(jet) == row.get("error")
            replaced = not fits  # the jet's data changed since: tag it again
        elif isinstance(jet, ValueError) or row.get("key") != tagger.key_for(jet):
            aside(row, from_output)
            continue
        elif row.get("error") is not None:
            fits, replaced = False, True
        else:
            file = where.rsplit(" line ", 1)[0]
            try:
                admitted = tagger.gate.admit_row(row, where=where, jet=jet, trusted=file in trusted)
            except RowRefused as exc:
                plan.refused.append(str(exc))
                aside(row, from_output)
                retried.add(p)
                continue
            if admitted.signature != row.get("signature"):  # trusted: kept as imported
                row = {**row, "origin": "imported", "signature": admitted.signature}
            fits, replaced = True, False
        if replaced:
            retried.add(p)
        elif not resume:
            continue  # made again by this run
        elif p not in plan.kept:
            plan.kept[p] = row
            if not from_output:
                plan.restored += 1
            seen.add(_identity(row))
        else:
            aside(row, from_output)  # a second row for the same jet
    for row, from_output in outside:
        aside(row, from_output)
    plan.retry = len(retried - set(plan.kept))
    return plan


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Replace ``path`` by ``rows`` at once (a kill leaves the old file or the new one)."""
    from ..store.rows import JsonlWriter

    JsonlWriter(path, rows).close()


def _numbered(path: Path) -> Numbered:
    from ..store.rows import numbered_rows

    return [(f"{path} line {n}", row) for n, row in numbered_rows(path)]


def tag_to_file(
    tagger: Any,
    selection: Any,
    output: Path,
    *,
    backend: str,
    reasoning: bool = False,
    description: str = "tagging",
    resume: bool = True,
    trusted: frozenset[str] = frozenset(),
) -> RunStats:
    """Tag ``selection`` into ``output`` (JSONL), one row per jet as it finishes.

    With ``resume``, rows already in ``output`` for the same jets and settings are kept (when
    the gate admits them) and only the rest is asked for (through the cache); otherwise they
    are made again. Rows made for other jets or with other settings or server, and rows the
    gate refuses, are never deleted: they move to a side file next to ``output``
    (:func:`set_aside_path`), and come back when a later run fits them (see
    :func:`_plan_rows`). A side file, not the same file, so that ``output`` always holds one
    run's settings, one row per jet, for ``vjt evaluate``. The side file is written before
    ``output`` is, and trimmed only after, so a kill at any point loses no row. An output or
    side file someone else could have written is refused (one line) unless it is in
    ``trusted`` (paths as given). Ctrl-C and SIGTERM leave whole lines and are re-raised
    after a message.
    """
    from ..store.rows import JsonlWriter, check_owned, result_row

    labels = selection.labels
    side = set_aside_path(output)
    for path in (output, side):
        check_owned(path, trusted=str(path) in trusted or str(output) in trusted)
    plan = Plan()
    earlier: Numbered = []
    if output.exists() or side.exists():
        earlier = _numbered(side) if side.exists() else []
        rows = _numbered(output) if output.exists() else []
        plan = _plan_rows(rows, earlier, tagger, selection, backend, resume=resume, trusted=trusted)
        if plan.moved:  # first a side file that holds everything
            seen = {_identity(row) for _, row in earlier}
            kept_before = [row for _, row in earlier]
            _write_rows(side, kept_before + [r for r in plan.moved if _identity(r) not in seen])
            say(
                f"[yellow]moved {len(plan.moved)} rows of {escape(str(output))} made for other "
                f"jets or with other settings or server, or that do not verify, to "
                f"{escape(str(side))}[/] (kept there for later runs; `vjt evaluate` reads it too)"
            )
        if plan.refused:
            say(
                f"[yellow]{len(plan.refused)} labelled rows were not kept and their jets are "
                f"asked again; the first: {escape(plan.refused[0])}[/]"
            )
        invalid = sum(row.get("error") is not None for row in plan.kept.values())
        if plan.kept or plan.retry:
            restored = f" ({plan.restored} from {escape(str(side))})" if plan.restored else ""
            say(
                f"resuming {escape(str(output))}: {len(plan.kept) - invalid} jets already "
                f"tagged{restored}, {invalid} with invalid data kept as they are, "
                f"{plan.retry} without label asked again"
            )
    kept = plan.kept
    todo = [p for p in range(len(selection)) if p not in kept]
    stats = RunStats(
        resumed=len(kept),
        kept_input_errors=sum(row.get("error") is not None for row in kept.values()),
        imported=sum(row.get("origin") == "imported" for row in kept.values()),
    )
    jets = selection[np.array(todo, dtype=np.intp)] if todo else []
    breaker = Breaker(streak=max(tagger.max_concurrency, 1) + 10)

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=16),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeRemainingColumn(),
        console=console,
    )

    async def stream() -> None:
        async for i, outcome in tagger.abatch_as_completed(jets, return_exceptions=True):
            p = todo[i]
            row = result_row(
                outcome,
                index=int(selection.indices[p]),
                truth=None if labels is None else int(labels[p]),
                source=selection.source,
                backend=backend,  # type: ignore[arg-type]
                reasoning=reasoning,
            )
            writer.write(row)
            stats.add(row)
            stats.servers = tagger.endpoint_stats()
            progress.update(task, advance=1, stats=stats.line())
            breaker.observe(row)

    try:
        with JsonlWriter(output, kept.values()) as writer, progress:
            # The output now holds the rows kept: the side file keeps only the others.
            before = {_identity(r) for _, r in earlier} | {_identity(r) for r in plan.moved}
            if side.exists() and {_identity(r) for r in plan.aside} != before:
                if plan.aside:
                    _write_rows(side, plan.aside)
                else:
                    side.unlink()
            task = progress.add_task(
                description, total=len(selection), completed=len(kept), stats=""
            )
            interrupt.run(stream)
    except KeyboardInterrupt:
        say(
            f"[yellow]interrupted[/]: {stats.resumed + stats.done} of {len(selection)} jets "
            f"are in {escape(str(output))}; rerun the same command to resume"
        )
        raise
    except RunStopped as exc:
        raise CLIError(
            f"stopped: {exc}; {stats.resumed + stats.done - stats.errors} jets are tagged in "
            f"{output} (kept): fix the cause and rerun the same command to resume"
        ) from None
    return stats
