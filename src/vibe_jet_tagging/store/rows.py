"""Result rows: one jet's outcome as a JSON object, and the JSONL file ``vjt tag`` writes.

A row is one jet's result (:func:`result_row`); :func:`row_result` turns it back into a
:class:`~vibe_jet_tagging.tagging.results.TagResult`. A labelled row carries its provenance
(the server identity, a digest of the answer, its origin and this user's signature), which
the gate checks before a row is kept on resume or imported into a cache.

:class:`JsonlWriter` writes whole lines and never through a link: a file is replaced by a
temporary file made exclusively in its folder, and appended to only when it is no symlink.
:func:`read_rows` reads rows back, skipping a line a killed run left cut short;
:func:`check_owned` refuses a results file another user could have written.

Rows record which backend answered (``"server"`` or ``"emulated"``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from ..errors import VJTError
from ..tagging.results import TagError, TaggingError, TagResult, Usage
from .folder import others_could_write

__all__ = [
    "ROW_FIELDS",
    "Backend",
    "JsonlWriter",
    "UnsafeResultsFileError",
    "check_owned",
    "numbered_rows",
    "read_rows",
    "replace_file",
    "result_row",
    "row_result",
]

logger = logging.getLogger(__name__)

Backend = Literal["server", "emulated"]
"""Where a row's answer came from: a model server, or the emulated vLLM server."""

ROW_FIELDS = (
    "index",
    "truth",
    "label",
    "quark_probability",
    "logprob_quark_probability",
    "parsed_by",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "reasoning_estimated",
    "tokens",
    "latency",
    "cached",
    "error",
    "error_kind",
    "model",
    "effort",
    "template",
    "key",
    "source",
    "backend",
    "jet_key",
    "settings",
    "finish_reason",
    "requests",
    "identity",
    "answer_digest",
    "origin",
    "signature",
)


def result_row(
    outcome: TagResult | Exception,
    *,
    index: int,
    truth: int | None,
    source: str,
    backend: Backend | None = None,
    reasoning: bool = False,
    server: str | None = None,
) -> dict[str, Any]:
    """The JSON row of one jet's outcome (a result, or the error it raised).

    ``tokens`` is input plus output tokens (what the answer cost when it was asked, also on
    a cache hit), of which ``cached_input_tokens`` came from the server's prefix cache
    (``None``: the server did not say); ``backend`` records whether a model server or the
    emulated server answered, and ``server`` its base URL (when given, or when the result
    says which of several servers answered), which reports show.
    With ``reasoning``, the row also keeps the reasoning text and the final answer.
    """
    if isinstance(outcome, TaggingError):
        outcome = outcome.result
    if isinstance(outcome, Exception):  # e.g. an invalid jet
        return {
            "index": index,
            "truth": truth,
            "label": None,
            "error": str(outcome),
            "error_kind": "input",
            "cached": False,
            "source": source,
            "backend": backend,
            **({} if server is None else {"server": server}),
        }
    r = outcome
    row = {
        "index": index,
        "truth": truth,
        "label": r.label,
        "quark_probability": r.quark_probability,
        "logprob_quark_probability": r.logprob_quark_probability,
        "parsed_by": r.parsed_by,
        "input_tokens": r.usage.input_tokens,
        "cached_input_tokens": r.usage.cached_input_tokens,
        "output_tokens": r.usage.output_tokens,
        "reasoning_tokens": r.usage.reasoning_tokens,
        "reasoning_estimated": r.usage.reasoning_estimated,
        "tokens": r.usage.total_tokens,
        "latency": round(r.latency, 4),
        "cached": r.cached,
        "error": None if r.error is None else r.error.message,
        "error_kind": None if r.error is None else r.error.kind,
        "model": r.model,
        "effort": r.effort,
        "template": r.template,
        "key": r.key,
        "source": source,
        "backend": backend,
        "jet_key": r.jet_key,
        "settings": r.settings,
        "finish_reason": r.finish_reason,
        "requests": r.usage.requests,
    }
    if r.ok:  # what the gate checks when the row is read back (see store.provenance)
        row.update(
            identity=r.identity,
            answer_digest=r.answer_digest,
            origin=r.origin,
            signature=r.signature,
        )
    server = server or getattr(r, "server", None)  # of several, the one that answered
    if server is not None:
        row["server"] = server
    if reasoning:
        row["reasoning"] = r.reasoning
        row["answer"] = r.answer
    return row


def row_result(row: Mapping[str, Any]) -> TagResult:
    """A :class:`TagResult` with the fields a row keeps (for totals, and the cache).

    The error kind is kept as the row says, also a kind this version does not know (a row
    written by a newer one). Rows of older files lack ``jet_key``, ``settings``,
    ``finish_reason`` and ``requests`` (then one request unless cached); the reasoning and
    answer are there with ``--reasoning``.
    """
    error = None
    if row.get("error") is not None:
        kind: Any = row.get("error_kind") or "server"  # a kind this version may not know
        error = TagError.model_construct(kind=kind, message=str(row["error"]))
    requests = row.get("requests")
    return TagResult(
        index=row.get("index"),
        jet_key=row.get("jet_key") or "",
        key=row.get("key") or "",
        label=row.get("label"),
        quark_probability=row.get("quark_probability"),
        parsed_by=row.get("parsed_by"),
        usage=Usage(
            input_tokens=row.get("input_tokens") or 0,
            cached_input_tokens=row.get("cached_input_tokens"),
            output_tokens=row.get("output_tokens") or 0,
            reasoning_tokens=row.get("reasoning_tokens") or 0,
            reasoning_estimated=bool(row.get("reasoning_estimated")),
            requests=requests if isinstance(requests, int) else 0 if row.get("cached") else 1,
        ),
        latency=row.get("latency") or 0.0,
        model=row.get("model") or "",
        effort=row.get("effort"),
        template=row.get("template") or "",
        settings=row.get("settings"),
        server=row.get("server"),
        logprob_quark_probability=row.get("logprob_quark_probability"),
        finish_reason=row.get("finish_reason"),
        answer=row.get("answer"),
        reasoning=row.get("reasoning"),
        cached=bool(row.get("cached")),
        error=error,
        identity=row.get("identity"),
        answer_digest=row.get("answer_digest"),
        origin="imported" if row.get("origin") == "imported" else "model",
        signature=row.get("signature"),
    )


class UnsafeResultsFileError(VJTError):
    """A results file another user could have written (or a link) was refused."""


_SHARED_HINT = "use a results file of your own, or trust this one explicitly"


def check_owned(path: Path, *, trusted: bool = False) -> None:
    """Refuse ``path`` (if it exists) when someone else could have written it.

    Refused unless ``trusted``: a symlink, a file of another user, a file its group or others
    can write. Like a cache folder, such a file could hold rows that are not this user's.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeResultsFileError(
            f"refusing {path}: it is a symlink (to {os.readlink(path)}), which another user may "
            "have planted; write to the file itself"
        )
    why = None if trusted else others_could_write(st)
    if why is not None:
        fix = "`chmod go-w` it, or " if "mode" in why else ""
        raise UnsafeResultsFileError(
            f"refusing {path}: {why}, so its rows may not be yours; {fix}{_SHARED_HINT}"
        )


def replace_file(path: Path, chunks: Iterable[str]) -> None:
    """Replace ``path`` by ``chunks`` at once, never through a link.

    The text goes to a temporary file made exclusively in ``path``'s folder (``mkstemp``:
    a name planted beforehand is never opened), then takes ``path``'s place (``os.replace``
    replaces a symlink itself, never its target). A kill leaves the old file or the new one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        raise UnsafeResultsFileError(
            f"refusing to write {path}: it is a symlink (to {os.readlink(path)}); write to the "
            "file itself"
        )
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for chunk in chunks:
                f.write(chunk)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class JsonlWriter:
    """Appends rows to a JSONL file, each with one ``write`` of a whole line, flushed.

    A crash or Ctrl-C leaves only whole lines (at worst a last partial line, which
    :func:`read_rows` skips). Never writes through a symlink (see :func:`replace_file`).
    """

    def __init__(self, path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]] = ()):
        """Start ``path`` over with ``rows`` (written atomically), then append."""
        self.path = Path(path)
        replace_file(self.path, (json.dumps(row, allow_nan=False) + "\n" for row in rows))
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)

    def write(self, row: Mapping[str, Any]) -> None:
        """Append one row as one line."""
        os.write(self._fd, (json.dumps(row, allow_nan=False) + "\n").encode())

    def close(self) -> None:
        """Close the file."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_rows(path: str | os.PathLike[str], *, strict: bool = False) -> list[dict[str, Any]]:
    """The rows of a results file; a partial last line (from a killed run) is skipped.

    With ``strict``, any line that is not a JSON object raises :class:`VJTError` naming the
    file and line.
    """
    return [row for _, row in numbered_rows(path, strict=strict)]


def numbered_rows(
    path: str | os.PathLike[str], *, strict: bool = False
) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, row)`` of each row of a results file (see :func:`read_rows`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise VJTError(f"{path}: no such results file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VJTError(f"{path}: cannot read: {exc}") from None
    lines = text.split("\n")
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or "index" not in row:
                raise ValueError("not a result row")
        except ValueError as exc:
            last = number == len(lines) or (number == len(lines) - 1 and not lines[-1])
            if last and not text.endswith("\n") and not strict:
                logger.warning("%s: line %d is cut short (killed run?), skipped", path, number)
                continue
            raise VJTError(f"{path}: line {number} is not a result row: {exc}") from None
        rows.append((number, row))
    return rows
