"""Reading batch output lines (``vllm run-batch``, the OpenAI Batch API) into tag results.

A door of the gate (:class:`~vibe_jet_tagging.tagging.gate.AnswerGate`): each answer is read
the way the tagger reads one over HTTP, and admitted, re-asked or failed by the gate. Reading
is a transaction: labelled results are staged and go to the cache only when every line of
every file was read (:meth:`BatchReader.commit`); a line that does not belong (another
export, another model, a body without a model or with impossible usage, a cut or malformed
line) stops the read with one line naming the file and line, and nothing is stored.

A line is read with bounded memory: one longer than the answer bound is never held whole; its
jet (found from the ``custom_id`` at its start) gets an ``oversized`` error.

What the format binds: an answer belongs to its prompt only through ``custom_id``. A batch
runner that swapped two lines' bodies would give each jet the other's answer, and nothing in
the file can show it; trust a batch output file as much as the runner that wrote it.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage

from ..errors import VJTError
from ..jets.jet import Jet
from ..servers.transport import DEFAULT_MAX_ANSWER_BYTES
from ..tagging.gate import Asked, OversizedAnswer
from ..tagging.parsing import LabelParseError
from ..tagging.results import TagError, TaggingError, TagResult, Usage
from .batchfiles import REASK_SUFFIX, BatchTagger, JetInput, Reask, answer_message
from .exportindex import ExportIndex

__all__ = ["BatchOutput", "BatchReader", "OversizedLine", "copies", "read_batch_output"]

logger = logging.getLogger(__name__)

FAILED, LABELLED = 1, 2
"""What :class:`BatchReader` notes in the export index for a key whose result it gave."""

_LINE_SLACK = 64 << 10
"""Bytes a response line holds beside the answer (ids, usage, metadata)."""
_CUSTOM_ID = re.compile(r'"custom_id"\s*:\s*"([^"\\]{1,200})"')


@dataclass(frozen=True)
class OversizedLine:
    """A line longer than the bound: its size and, if found at its start, its custom id."""

    size: int
    custom_id: str | None


def _error_text(error: Any) -> str:
    if isinstance(error, Mapping):
        inner = error.get("error", error)
        if isinstance(inner, Mapping):
            return str(inner.get("message") or json.dumps(inner))[:300]
        return str(inner)[:300]
    return str(error)[:300]


class _Refused(VJTError):
    """A line that does not belong to the export: the whole read stops."""


@dataclass
class _Line:
    custom_id: str
    reask: bool
    message: AIMessage | None = None
    body: dict[str, Any] | None = None
    error: TagError | None = None


def _usage_problem(body: Mapping[str, Any]) -> str | None:
    usage = body.get("usage")
    if usage is None:
        return None
    if not isinstance(usage, Mapping):
        return "its usage is not an object"
    for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
        value = usage.get(name)
        if value is not None and (type(value) is not int or value < 0):
            return f"usage {name} {value!r} is not a count"
    return None


class BatchReader:
    """Reads the response lines of one export into :class:`TagResult`, through the gate.

    :meth:`read` yields each key's result once it is final (a label); failed lines are held
    until :meth:`finish`, since another file may hold a good answer for the same key (a rerun
    shard). Answers that need a re-ask wait for their second round; those still waiting at
    the end are in :attr:`reasks`. Labelled results are staged: :meth:`commit` stores them
    once everything was read.

    Raises :class:`VJTError` naming the file and line for a line of another export (unknown
    custom id) or another model, a body without a model or with impossible usage, and a line
    that is no batch output line.
    """

    def __init__(self, tagger: BatchTagger, index: ExportIndex, *, cache: bool = True) -> None:
        self.tagger = tagger
        self.gate = tagger.gate
        self.index = index
        self.cache = cache
        self.duplicates = 0
        self.lines = 0
        self.reasks: dict[str, Reask] = {}
        self.orphans: dict[str, _Line] = {}
        """Re-ask answers whose first answer is not (yet) among the lines read."""
        self.staged: list[TagResult] = []
        self._firsts: dict[str, AIMessage] = {}
        self._errors: dict[str, TagResult] = {}

    def read(
        self, lines: Iterable[str | Mapping[str, Any] | OversizedLine], name: str
    ) -> Iterator[TagResult]:
        """Results that became final while reading ``lines`` (``name`` is for messages)."""
        for number, raw in enumerate(lines, 1):
            if isinstance(raw, str) and not raw.strip():
                continue
            self.lines += 1
            line = self._parse(raw, f"{name} line {number}")
            key = line.custom_id.removesuffix(REASK_SUFFIX) if line.reask else line.custom_id
            if self.index.state(key) == LABELLED:
                self.duplicates += 1
                continue
            result = self._first(key, line) if not line.reask else self._second(key, line)
            if result is not None:
                yield result

    def finish(self) -> Iterator[TagResult]:
        """The errors of keys that got no label in any line."""
        for key, result in self._errors.items():
            if self.index.state(key) != LABELLED and key not in self.reasks:
                self.index.note(key, FAILED)
                yield result
        self._errors.clear()

    def commit(self) -> int:
        """Store the staged labels in the cache (after every line was read); how many."""
        stored = sum(self.gate.store(result) for result in self.staged) if self.cache else 0
        self.staged.clear()
        return stored

    # -- one line --------------------------------------------------------------------------------

    def _known(self, custom_id: str, where: str) -> None:
        key = custom_id.removesuffix(REASK_SUFFIX)
        if self.index.jet_key(key) is None:
            raise _Refused(
                f"{where}: custom_id {custom_id!r} is not a request of this export (a line of "
                "another export, or made with other settings)"
            )

    def _parse(self, raw: str | Mapping[str, Any] | OversizedLine, where: str) -> _Line:
        if isinstance(raw, OversizedLine):
            if raw.custom_id is None:
                raise _Refused(
                    f"{where}: a line of {raw.size:,} bytes with no custom_id at its start"
                )
            self._known(raw.custom_id, where)
            return _Line(
                raw.custom_id,
                raw.custom_id.endswith(REASK_SUFFIX),
                error=TagError(
                    kind="oversized",
                    message=f"{where} is {raw.size:,} bytes, above the answer bound: not read",
                ),
            )
        try:
            obj = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError as exc:
            raise _Refused(f"{where}: not a batch output line ({exc})") from None
        custom_id = obj.get("custom_id") if isinstance(obj, Mapping) else None
        if not isinstance(custom_id, str):
            raise _Refused(f"{where}: not a batch output line (no custom_id)")
        if "response" not in obj and "error" not in obj:
            what = "a request line" if "body" in obj else "no response and no error"
            raise _Refused(f"{where}: not a batch output line ({what}): pass the output files")
        self._known(custom_id, where)
        line = _Line(custom_id, custom_id.endswith(REASK_SUFFIX))
        response = obj.get("response")
        status = response.get("status_code") if isinstance(response, Mapping) else None
        body = response.get("body") if isinstance(response, Mapping) else None
        error = obj.get("error")
        if error is not None or status != 200:
            detail = _error_text(error if error is not None else (body or "no response"))
            kind = {429: "rate_limit", 400: "bad_request", 422: "bad_request"}.get(
                status if type(status) is int else 0, "server"
            )
            line.error = TagError(
                kind=kind,  # type: ignore[arg-type]
                message=f"{f'HTTP {status}' if status else 'no response'} in {where}: {detail}",
                status=status if type(status) is int else None,
            )
            return line
        if not isinstance(body, Mapping):
            raise _Refused(f"{where}: an answer with status 200 but no body")
        model = self.tagger.client.model_name
        if body.get("model") != model:
            said = "no model" if body.get("model") is None else f"model {body.get('model')!r}"
            raise _Refused(f"{where}: answered by {said}, the export asked {model!r}")
        problem = _usage_problem(body)
        if problem is not None:
            raise _Refused(f"{where}: {problem}")
        try:
            line.message = answer_message(self.tagger, body)
            line.body = dict(body)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            line.error = TagError(
                kind="server", message=f"malformed response in {where}: {exc}"[:400], status=200
            )
        return line

    def _asked(self, key: str) -> Asked:
        return Asked(key, self.index.jet_key(key) or "")

    def _first(self, key: str, line: _Line) -> TagResult | None:
        if line.error is not None:
            self._hold_error(self.gate.failed(self._asked(key), line.error))
            return None
        assert line.message is not None and line.body is not None
        message = line.message
        usage = Usage.from_message(message)
        try:
            parsed = self.gate.read(message)
        except OversizedAnswer as exc:
            self._hold_error(self.gate.failed(self._asked(key), exc.error, None, usage))
            return None
        except LabelParseError as exc:
            if not self.gate.wants_reask(exc):
                self._hold_error(self.gate.failed(self._asked(key), exc, message, usage))
                return None
            second = self.orphans.pop(key, None)
            if second is None:
                self._firsts[key] = message
                self.reasks[key] = Reask(key, line.body)
                return None
            return self._second(key, second, first=message)
        return self._done(key, parsed, message, usage)

    def _second(self, key: str, line: _Line, first: AIMessage | None = None) -> TagResult | None:
        first = first or self._firsts.get(key)
        if first is None:
            self.orphans[key] = line
            return None
        self._firsts.pop(key, None)
        self.reasks.pop(key, None)
        usage = Usage.from_message(first)
        if line.error is not None:
            self._hold_error(self.gate.failed(self._asked(key), line.error, first, usage))
            return None
        assert line.message is not None
        usage = usage + Usage.from_message(line.message)
        try:  # only the answer to the re-ask counts
            parsed = self.gate.read_reask(line.message)
        except OversizedAnswer as exc:
            self._hold_error(self.gate.failed(self._asked(key), exc.error, None, usage))
            return None
        except LabelParseError as exc:
            self._hold_error(self.gate.failed(self._asked(key), exc, line.message, usage))
            return None
        return self._done(key, parsed, line.message, usage)

    def _done(self, key: str, parsed: Any, message: AIMessage, usage: Usage) -> TagResult:
        result = self.gate.admit(self._asked(key), parsed, message, usage, store=False)
        if self.cache:
            self.staged.append(result)
        self.index.note(key, LABELLED)
        self._errors.pop(key, None)
        self.reasks.pop(key, None)
        self._firsts.pop(key, None)
        return result

    def _hold_error(self, result: TagResult) -> None:
        """Keep a failed result until :meth:`finish` (another line may answer its key)."""
        self._errors.setdefault(result.key, result)


# -- files ----------------------------------------------------------------------------------------


def file_lines(
    path: Path, max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES
) -> Iterator[str | OversizedLine]:
    """The lines of a batch output file; one longer than the bound is an
    :class:`OversizedLine` (read past in pieces, never held whole)."""
    limit = max_answer_bytes + _LINE_SLACK
    try:
        f = path.open(encoding="utf-8")
    except FileNotFoundError:
        raise VJTError(f"{path}: no such batch output file") from None
    with f:
        while True:
            line = f.readline(limit + 1)
            if not line:
                return
            if len(line) <= limit or line.endswith("\n"):
                yield line
                continue
            match = _CUSTOM_ID.search(line[:4096])
            size = len(line)
            while not line.endswith("\n"):
                line = f.readline(1 << 20)
                if not line:
                    break
                size += len(line)
            yield OversizedLine(size, match.group(1) if match else None)


# -- the Python entry point -----------------------------------------------------------------------


@dataclass
class BatchOutput:
    """What response lines gave for each jet, in the jets' order.

    ``results[i]`` is a :class:`TagResult` (``cached`` when it came from the cache or repeats
    an earlier jet's answer), a :class:`TaggingError` for a jet whose answer failed, the
    ``ValueError`` of an invalid jet, or ``None`` when no line answered it (and the cache has
    nothing). ``reasks`` go to a second round:
    ``tagger.batch_requests(jets, reasks=output.reasks)``.
    """

    results: list[TagResult | Exception | None]
    reasks: list[Reask] = field(default_factory=list)
    duplicates: int = 0
    orphans: int = 0

    @property
    def missing(self) -> int:
        """Jets without an answer (neither a label nor an error)."""
        return sum(r is None for r in self.results)


def _sources(lines: Any, bound: int) -> list[tuple[str, Iterable[Any]]]:
    """``(name, lines)`` pairs: a path, a list of paths, or an iterable of lines."""
    if isinstance(lines, str | os.PathLike):
        lines = [lines]
    if (
        isinstance(lines, list | tuple)
        and lines
        and all(
            isinstance(p, os.PathLike) or (isinstance(p, str) and not p.lstrip().startswith("{"))
            for p in lines
        )
    ):
        return [(str(p), file_lines(Path(p), bound)) for p in lines]
    return [("<lines>", lines)]


def read_batch_output(
    tagger: BatchTagger,
    lines: Any,
    jets: Sequence[JetInput],
    *,
    cache: bool = True,
) -> BatchOutput:
    """Read batch output lines for ``jets`` (the jets that were exported) into results.

    ``lines``: an output file's path, a list of paths, or an iterable of lines (str or dict),
    of one round or of both rounds together. The labels go to the tagger's cache (unless
    ``cache=False``) once every line was read. Raises :class:`VJTError` naming the file and
    line of a line that does not belong (then nothing is stored).
    """
    index = ExportIndex()
    out: list[TagResult | Exception | None] = [None] * len(jets)
    for position, item in enumerate(jets):
        try:
            jet = Jet.coerce(item)
        except ValueError as exc:  # as abatch returns it: an input error in its place
            out[position] = exc
            continue
        index.add(position, tagger.keys.key_for(jet), jet.key, jet.index, None, True)
    reader = BatchReader(tagger, index, cache=cache)
    for name, source in _sources(lines, tagger.gate.max_answer_bytes):
        for result in reader.read(source, name):
            _place(out, index, result)
    for result in reader.finish():
        _place(out, index, result)
    reader.commit()
    for key, _ in index.unique_keys():
        positions = [p for p, _, _ in index.jets(key)]
        if out[positions[0]] is None and tagger.gate.cache is not None and not tagger.gate.refresh:
            hit = tagger.gate.lookup_many([key]).get(key)
            if hit is not None:
                _place(out, index, hit.model_copy(update={"cached": True}))
    return BatchOutput(out, list(reader.reasks.values()), reader.duplicates, len(reader.orphans))


def copies(result: TagResult, index: ExportIndex) -> Iterator[tuple[int, int | None, TagResult]]:
    """``(position, truth, result)`` for each jet with the result's key: the first as answered,
    the others as ``vjt tag`` reports a repeated jet (cached; an error's copy costs nothing)."""
    for n, (position, jet_index, truth) in enumerate(index.jets(result.key)):
        update: dict[str, Any] = {"index": jet_index}
        if n:
            update["cached"] = True
            if not result.ok:
                update.update(usage=Usage(), latency=0.0)
        yield position, truth, result.model_copy(update=update)


def _place(out: list[Any], index: ExportIndex, result: TagResult) -> None:
    for position, _, copy in copies(result, index):
        out[position] = copy if copy.ok else TaggingError(copy)
