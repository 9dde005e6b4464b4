"""Offline batch files: requests for ``vllm run-batch`` or the OpenAI Batch API, and their answers.

Both use the same JSONL lines: ``{custom_id, method, url, body}`` in and ``{id, custom_id,
response: {status_code, request_id, body}, error}`` out. Here the ``body`` is exactly what
:class:`~.tagging.tagger.JetTagger` sends over HTTP (built by ChatOpenAI's own payload
code, ``extra_body`` merged as the openai SDK merges it), and ``custom_id`` is the jet's cache
key. An answer is read the way the tagger reads one (``ChatVLLM._create_chat_result``, then the
tagger's parser and re-ask rules) into the same :class:`TagResult`; a failed line is an error
result, never a label. An answer that needs a re-ask is a :class:`Reask`: a second round of
request lines (custom id ``KEY-reask``) asks it again with the messages the tagger would send,
and reading both rounds' answers together gives the final result.

The cache key holds what the server is (emulated or not, its weights, the constraint it
takes), so a tagger exporting without a server is told what will answer first:
``tagger.assume_server(offline_server(model, constraint="regex"))`` (vLLM's run-batch).

Functions take a tagger; ``JetTagger.batch_requests`` and ``JetTagger.read_batch_output`` are
the same as methods. :mod:`.batchread` reads the answers; ``vjt batch`` (:mod:`.cli.batch`)
adds the folder on disk (request files, manifest).
"""

from __future__ import annotations

import logging
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from langchain_core.language_models.chat_models import _gen_info_and_msg_metadata
from langchain_core.messages import AIMessage, BaseMessage
from langchain_openai.chat_models.base import BaseChatOpenAI

from ..errors import VJTError
from ..jets.jet import Jet
from ..servers.info import ModelCard, ServerInfo
from ..tagging.parsing import LabelParseError, reask_messages

if TYPE_CHECKING:
    from ..tagging.tagger import JetInput, JetTagger

__all__ = [
    "BATCH_URL",
    "REASK_SUFFIX",
    "Constraint",
    "ExportIndex",
    "ExportedJet",
    "Reask",
    "answer_message",
    "batch_requests",
    "constraint_of",
    "export_jets",
    "offline_server",
    "reask_request",
    "request_body",
]

logger = logging.getLogger(__name__)

BATCH_URL = "/v1/chat/completions"
REASK_SUFFIX = "-reask"
"""Appended to a jet's cache key: the custom id of its re-ask request."""

Constraint = Literal["regex", "response_format"]
"""How an answer is constrained: vLLM's ``structured_outputs.regex`` (vLLM >= 0.10.2, what
``vllm run-batch`` takes) or the portable ``response_format`` JSON schema (OpenAI, older
vLLM). The tagger sends what its server takes."""

_KEY_BYTES = 32  # a cache key: 16 bytes as hex


# -- requests -----------------------------------------------------------------------------------


def _chat_model(tagger: JetTagger) -> BaseChatOpenAI:
    if not isinstance(tagger.model, BaseChatOpenAI):
        raise VJTError(
            f"batch files need an OpenAI-compatible chat model, not {type(tagger.model).__name__}"
        )
    return tagger.model


def offline_server(
    model: str,
    *,
    constraint: Constraint = "regex",
    emulated: bool = False,
    root: str | None = None,
) -> ServerInfo:
    """What will answer a batch file, as its ``/v1/models`` and ``/version`` would say.

    For ``tagger.assume_server(...)`` when there is no server to ask: the cache keys hold what
    the server is (emulated or not, the weights ``root``, the constraint it takes), so these
    must be what ``vjt tag`` would find on the server that later reads the cache. ``root``:
    the weights vLLM loads (``--model``; default ``model``). ``emulated``: the emulated server
    answers (tests, demos).
    """
    if constraint not in ("regex", "response_format"):
        raise ValueError(f"constraint must be regex or response_format, not {constraint!r}")
    if emulated:
        from ..emulator.server import EMULATED_ROOT, EMULATED_VERSION

        card = ModelCard(model, root=EMULATED_ROOT, owned_by="vllm")
        if constraint != "regex":
            raise ValueError("the emulated server takes structured_outputs: use regex")
        return ServerInfo("offline", (card,), EMULATED_VERSION)
    card = ModelCard(model, root=root or model, owned_by="vllm")
    # vLLM >= 0.10.2 takes structured_outputs; an older one only response_format.
    return ServerInfo("offline", (card,), "0.10.2" if constraint == "regex" else "0.10.1")


def constraint_of(tagger: JetTagger) -> str:
    """``"regex"``, ``"response_format"`` or ``"none"``: what the tagger's requests carry."""
    body = tagger._options().get("extra_body") or {}
    if "structured_outputs" in body:
        return "regex"
    return "response_format" if "response_format" in body else "none"


def request_body(tagger: JetTagger, messages: Sequence[BaseMessage]) -> dict[str, Any]:
    """The Chat Completions body the tagger sends its server for ``messages``.

    ChatOpenAI's own payload code with the tagger's call options, then ``extra_body`` merged
    on top as the openai SDK does.
    """
    payload = _chat_model(tagger)._get_request_payload(list(messages), **tagger._options())
    extra = payload.pop("extra_body", None) or {}
    return {**payload, **extra}


def _line(custom_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": BATCH_URL, "body": body}


@dataclass
class ExportedJet:
    """One jet of an export: its keys, and its request line (``None`` when not asked)."""

    position: int
    index: int | None
    key: str
    jet_key: str
    request: dict[str, Any] | None
    """``None`` when the jet is in the cache, or has the key of an earlier jet."""
    asked: bool
    """Whether the export asks for the jet's key (in this line or an earlier jet's)."""
    error: ValueError | None = None
    """Why the jet cannot be tagged (invalid data): then it has no key and no request."""


def export_jets(tagger: JetTagger, jets: Iterable[JetInput]) -> Iterator[ExportedJet]:
    """Every jet with its key and, for jets to ask, the request line (streamed).

    Jets in the tagger's cache (unless ``refresh``) and repeats of a key get no request. An
    invalid jet (or a ``ValueError`` in its place, as ``JetDataset.jets_or_errors`` gives)
    comes back with its ``error`` and stops nothing.
    """
    _chat_model(tagger)
    asked: set[str] = set()
    for position, item in enumerate(jets):
        try:
            if isinstance(item, ValueError):
                raise item
            jet = Jet.coerce(item)
        except ValueError as exc:
            yield ExportedJet(position, None, "", "", None, False, exc)
            continue
        key = tagger.key_for(jet)
        request = None
        if key not in asked and tagger._lookup(key, jet) is None:
            asked.add(key)
            request = _line(key, request_body(tagger, tagger.prompt.messages(jet)))
        yield ExportedJet(position, jet.index, key, jet.key, request, key in asked)


def reask_request(tagger: JetTagger, jet: Jet, reask: Reask) -> dict[str, Any]:
    """The request line that asks ``reask`` again: the messages ``JetTagger`` would send.

    Raises :class:`VJTError` when the jet is not the one the first answer was for.
    """
    key = tagger.key_for(jet)
    if key != reask.custom_id:
        raise VJTError(
            f"jet {jet.index}: its key {key} under these settings is not the re-ask's "
            f"{reask.custom_id} (other jets or settings than the first round)"
        )
    first = answer_message(tagger, reask.response)
    try:
        tagger.parser.read_message(first)
    except LabelParseError as exc:
        error = exc.reask
    else:
        error = None
    if error is None:
        raise VJTError(f"{reask.custom_id}: the first answer is not one to re-ask")
    messages = reask_messages(tagger.prompt.messages(jet), first.text, error)
    return _line(key + REASK_SUFFIX, request_body(tagger, messages))


def batch_requests(
    tagger: JetTagger, jets: Iterable[JetInput], *, reasks: Iterable[Reask] | None = None
) -> Iterator[dict[str, Any]]:
    """Request lines for the jets to ask (``custom_id`` = cache key), streamed.

    With ``reasks`` (from :func:`read_batch_output`), the re-ask lines of those jets instead.
    """
    if reasks is None:
        for exported in export_jets(tagger, jets):
            if exported.error is not None:
                logger.warning("jet %d not exported: %s", exported.position, exported.error)
            elif exported.request is not None:
                yield exported.request
        return
    pending = {r.custom_id: r for r in reasks}
    for item in jets:
        jet = Jet.coerce(item)
        reask = pending.pop(tagger.key_for(jet), None)
        if reask is not None:
            yield reask_request(tagger, jet, reask)


# -- the jets of an export ------------------------------------------------------------------------


class ExportIndex:
    """The jets of an export by custom id: position, index, truth, jet key, whether asked.

    Kept in numpy arrays sorted by key (about 100 bytes a jet), so that millions of jets fit.
    Build it with :meth:`add` jet by jet, then look keys up with :meth:`find`.
    """

    def __init__(self) -> None:
        self._keys = bytearray()
        self._jet_keys = bytearray()
        self._position = array("q")
        self._index = array("q")
        self._truth = array("b")
        self._asked = bytearray()
        self._sorted = False
        self._state = np.zeros(0, dtype=np.uint8)

    def add(
        self,
        position: int,
        key: str,
        jet_key: str,
        index: int | None,
        truth: int | None,
        asked: bool,
    ) -> None:
        """The jet at ``position`` of the exported jets."""
        self._position.append(position)
        self._keys += _key_bytes(key)
        self._jet_keys += _key_bytes(jet_key)
        self._index.append(-1 if index is None else index)
        self._truth.append(-1 if truth is None else truth)
        self._asked.append(asked)
        self._sorted = False

    def _freeze(self) -> None:
        if self._sorted:
            return
        keys = np.frombuffer(self._keys, dtype=f"S{_KEY_BYTES}")
        self.order = np.argsort(keys, kind="stable")
        self.keys = keys[self.order]
        self.jet_keys = np.frombuffer(self._jet_keys, dtype=f"S{_KEY_BYTES}")[self.order]
        self.position = np.frombuffer(self._position, dtype=np.int64)[self.order]
        self.index = np.frombuffer(self._index, dtype=np.int64)[self.order]
        self.truth = np.frombuffer(self._truth, dtype=np.int8)[self.order]
        self.asked = np.frombuffer(self._asked, dtype=np.bool_)[self.order]
        self._state = np.zeros(len(self.keys), dtype=np.uint8)
        self._sorted = True

    def __len__(self) -> int:
        return len(self._index)

    def find(self, key: str) -> slice:
        """The rows of ``key`` in the sorted arrays (empty when unknown)."""
        self._freeze()
        if len(key) != _KEY_BYTES:
            return slice(0, 0)
        k = key.encode("ascii", "replace")
        return slice(
            int(np.searchsorted(self.keys, k, "left")), int(np.searchsorted(self.keys, k, "right"))
        )

    def jet_key(self, key: str) -> str | None:
        """The jet key of custom id ``key``, or ``None`` when the export has no such jet."""
        rows = self.find(key)
        return self.jet_keys[rows.start].decode() if rows.stop > rows.start else None

    def jets(self, key: str) -> list[tuple[int, int | None, int | None]]:
        """``(position, index, truth)`` of each jet with ``key``, in export order."""
        rows = self.find(key)
        return [
            (
                int(self.position[r]),
                None if self.index[r] < 0 else int(self.index[r]),
                None if self.truth[r] < 0 else int(self.truth[r]),
            )
            for r in range(rows.start, rows.stop)
        ]

    def state(self, key: str) -> int:
        """What a reader noted for ``key`` (0 until :meth:`note`; e.g. 1 error, 2 labelled)."""
        rows = self.find(key)
        return int(self._state[rows.start]) if rows.stop > rows.start else 0

    def note(self, key: str, state: int) -> None:
        """Note ``state`` for a known ``key`` (a byte per jet, unlike a set of keys)."""
        rows = self.find(key)
        if rows.stop > rows.start:
            self._state[rows.start] = state

    def unique_keys(self) -> Iterator[tuple[str, bool]]:
        """Each key once, with whether it was asked."""
        self._freeze()
        if not len(self):
            return
        first = np.flatnonzero(np.r_[True, self.keys[1:] != self.keys[:-1]])
        for r in first:
            yield self.keys[r].decode(), bool(self.asked[r])


def _key_bytes(key: str) -> bytes:
    raw = key.encode("ascii")
    if len(raw) != _KEY_BYTES:
        raise ValueError(f"not a cache key: {key!r}")
    return raw


# -- answers read back ---------------------------------------------------------------------------


@dataclass
class Reask:
    """An answer that needs a re-ask: its custom id and its response body."""

    custom_id: str
    response: dict[str, Any]


def answer_message(tagger: JetTagger, body: Mapping[str, Any]) -> AIMessage:
    """The AIMessage the tagger's chat model makes of a response body (as after HTTP)."""
    result = _chat_model(tagger)._create_chat_result(dict(body))
    [generation] = result.generations
    message = generation.message
    message.response_metadata = {
        **(result.llm_output or {}),
        **_gen_info_and_msg_metadata(generation),
    }
    assert isinstance(message, AIMessage)
    return message
