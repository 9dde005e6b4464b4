"""Reading batch output lines (``vllm run-batch``, the OpenAI Batch API) into tag results.

See :mod:`.batchfiles` for the format. A line is read the way the tagger reads an answer over
HTTP; a line of another export or model stops the read with one line naming the file and line.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage

from ..errors import VJTError
from ..jets.jet import Jet
from ..tagging.model import reasoning_of
from ..tagging.parsing import LabelParseError, ParsedLabel
from ..tagging.results import TagError, TaggingError, TagResult, Usage
from .batchfiles import REASK_SUFFIX, ExportIndex, Reask, answer_message

if TYPE_CHECKING:
    from ..tagging.tagger import JetInput, JetTagger

__all__ = ["BatchOutput", "BatchReader", "copies", "read_batch_output"]

logger = logging.getLogger(__name__)

FAILED, LABELLED = 1, 2
"""What :class:`BatchReader` notes in the export index for a key whose result it gave."""


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


class BatchReader:
    """Reads the response lines of one export into :class:`TagResult`, as the tagger would.

    :meth:`read` yields each key's result once it is final (a label); failed lines are held
    until :meth:`finish`, since another file may hold a good answer for the same key (a rerun
    shard). Answers that need a re-ask wait for their second round; those still waiting at
    the end are in :attr:`reasks`. Successes go to the tagger's cache.

    Raises :class:`VJTError` naming the file and line for a line of another export (unknown
    custom id) or another model.
    """

    def __init__(self, tagger: JetTagger, index: ExportIndex, *, cache: bool = True) -> None:
        self.tagger = tagger
        self.index = index
        self.cache = cache
        self.duplicates = 0
        self.lines = 0
        self.reasks: dict[str, Reask] = {}
        self.orphans: dict[str, _Line] = {}
        """Re-ask answers whose first answer is not (yet) among the lines read."""
        self._firsts: dict[str, AIMessage] = {}
        self._errors: dict[str, TagResult] = {}

    def read(self, lines: Iterable[str | Mapping[str, Any]], name: str) -> Iterator[TagResult]:
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

    # -- one line --------------------------------------------------------------------------------

    def _parse(self, raw: str | Mapping[str, Any], where: str) -> _Line:
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
        reask = custom_id.endswith(REASK_SUFFIX)
        key = custom_id.removesuffix(REASK_SUFFIX)
        if self.index.jet_key(key) is None:
            raise _Refused(
                f"{where}: custom_id {custom_id!r} is not a request of this export (a line of "
                "another export, or made with other settings)"
            )
        line = _Line(custom_id, reask)
        response = obj.get("response")
        status = response.get("status_code") if isinstance(response, Mapping) else None
        body = response.get("body") if isinstance(response, Mapping) else None
        error = obj.get("error")
        if error is not None or status != 200:
            detail = _error_text(error if error is not None else (body or "no response"))
            kind = {429: "rate_limit", 400: "bad_request", 422: "bad_request"}.get(
                status or 0, "server"
            )
            line.error = TagError(
                kind=kind,  # type: ignore[arg-type]
                message=f"{f'HTTP {status}' if status else 'no response'} in {where}: {detail}",
                status=status,
            )
            return line
        if isinstance(body, Mapping) and body.get("model") not in (None, self.tagger.model_name):
            raise _Refused(
                f"{where}: answered by model {body.get('model')!r}, the export asked "
                f"{self.tagger.model_name!r}"
            )
        try:
            if not isinstance(body, Mapping):
                raise ValueError("no body")
            line.message = answer_message(self.tagger, body)
            line.body = dict(body)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            line.error = TagError(
                kind="server", message=f"malformed response in {where}: {exc}"[:400], status=200
            )
        return line

    def _first(self, key: str, line: _Line) -> TagResult | None:
        if line.error is not None:
            return self._hold(self._failed(key, None, Usage(), line.error))
        assert line.message is not None and line.body is not None
        message = line.message
        try:
            parsed = self.tagger.parser.read_message(message)
        except LabelParseError as exc:
            if not self.tagger.reask or exc.reask is None:  # as JetTagger._atag decides
                return self._hold(self._failed(key, message, Usage.from_message(message), exc))
            second = self.orphans.pop(key, None)
            if second is None:
                self._firsts[key] = message
                self.reasks[key] = Reask(key, line.body)
                return None
            return self._second(key, second, first=message)
        return self._done(key, parsed, message, Usage.from_message(message))

    def _second(self, key: str, line: _Line, first: AIMessage | None = None) -> TagResult | None:
        first = first or self._firsts.get(key)
        if first is None:
            self.orphans[key] = line
            return None
        self._firsts.pop(key, None)
        self.reasks.pop(key, None)
        usage = Usage.from_message(first)
        if line.error is not None:
            return self._hold(self._failed(key, first, usage, line.error))
        assert line.message is not None
        usage = usage + Usage.from_message(line.message)
        try:  # only the answer to the re-ask counts (JetTagger._read_reask)
            parsed = self.tagger.parser.read_message(line.message)
        except LabelParseError as exc:
            return self._hold(self._failed(key, line.message, usage, exc))
        if parsed.step == "schema":
            parsed = parsed.model_copy(update={"step": "reask"})
        return self._done(key, parsed, line.message, usage)

    # -- results ---------------------------------------------------------------------------------

    def _result(self, key: str, **fields: Any) -> TagResult:
        return TagResult(
            index=None,
            jet_key=self.index.jet_key(key) or "",
            key=key,
            model=self.tagger.model_name,
            effort=self.tagger.effort,
            template=self.tagger.prompt.template.name,
            settings=self.tagger.settings_key,
            **fields,
        )

    def _done(self, key: str, parsed: ParsedLabel, message: AIMessage, usage: Usage) -> TagResult:
        from ..tagging.client import answered_fields

        result = self._result(key, **answered_fields(parsed, message, usage))
        self.index.note(key, LABELLED)
        self._errors.pop(key, None)
        self.reasks.pop(key, None)
        self._firsts.pop(key, None)
        if self.cache and self.tagger.cache is not None:
            self.tagger.cache.put(result)
        return result

    def _failed(
        self,
        key: str,
        message: AIMessage | None,
        usage: Usage,
        error: TagError | LabelParseError,
    ) -> TagResult:
        if isinstance(error, LabelParseError):
            error = TagError(kind=error.kind, message=str(error), raw_answer=error.raw)
        return self._result(
            key,
            answer=None if message is None else message.text,
            reasoning=None if message is None else reasoning_of(message),
            finish_reason=None
            if message is None
            else message.response_metadata.get("finish_reason"),
            usage=usage,
            error=error,
        )

    def _hold(self, result: TagResult) -> None:
        self._errors.setdefault(result.key, result)


# -- the Python entry point -----------------------------------------------------------------------


@dataclass
class BatchOutput:
    """What response lines gave for each jet, in the jets' order.

    ``results[i]`` is a :class:`TagResult` (``cached`` when it came from the cache or repeats
    an earlier jet's answer), a :class:`TaggingError` for a jet whose answer failed, the
    ``ValueError`` of an invalid jet, or ``None`` when no line answered it (and the cache has
    nothing). ``reasks`` go to a second
    round: ``tagger.batch_requests(jets, reasks=output.reasks)``.
    """

    results: list[TagResult | Exception | None]
    reasks: list[Reask] = field(default_factory=list)
    duplicates: int = 0
    orphans: int = 0

    @property
    def missing(self) -> int:
        """Jets without an answer (neither a label nor an error)."""
        return sum(r is None for r in self.results)


def _sources(lines: Any) -> list[tuple[str, Iterable[Any]]]:
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
        return [(str(p), _file_lines(Path(p))) for p in lines]
    return [("<lines>", lines)]


def _file_lines(path: Path) -> Iterator[str]:
    try:
        with path.open(encoding="utf-8") as f:
            yield from f
    except FileNotFoundError:
        raise VJTError(f"{path}: no such batch output file") from None


def read_batch_output(
    tagger: JetTagger,
    lines: Any,
    jets: Sequence[JetInput],
    *,
    cache: bool = True,
) -> BatchOutput:
    """Read batch output lines for ``jets`` (the jets that were exported) into results.

    ``lines``: an output file's path, a list of paths, or an iterable of lines (str or dict),
    of one round or of both rounds together. Successes go to the tagger's cache (unless
    ``cache=False``). Raises :class:`VJTError` naming the file and line of a line that belongs
    to another export or model.
    """
    index = ExportIndex()
    out: list[TagResult | Exception | None] = [None] * len(jets)
    for position, item in enumerate(jets):
        try:
            jet = Jet.coerce(item)
        except ValueError as exc:  # as abatch returns it: an input error in its place
            out[position] = exc
            continue
        index.add(position, tagger.key_for(jet), jet.key, jet.index, None, True)
    reader = BatchReader(tagger, index, cache=cache)
    for name, source in _sources(lines):
        for result in reader.read(source, name):
            _place(out, index, result)
    for result in reader.finish():
        _place(out, index, result)
    for key, _ in index.unique_keys():
        positions = [p for p, _, _ in index.jets(key)]
        if out[positions[0]] is None and tagger.cache is not None and not tagger.refresh:
            hit = tagger.cache.get(key)
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
