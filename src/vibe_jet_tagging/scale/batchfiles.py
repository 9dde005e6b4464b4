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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_openai import ChatOpenAI

from .._compat.langchain import message_of_response, request_payload
from ..errors import VJTError
from ..jets.jet import Jet
from ..servers.info import ModelCard, ServerInfo
from ..tagging.parsing import LabelParseError, reask_messages
from .exportindex import ExportIndex

if TYPE_CHECKING:
    from ..tagging.client import RequestClient
    from ..tagging.gate import AnswerGate
    from ..tagging.identity import KeyPolicy
    from ..tagging.prompt import JetPrompt

__all__ = [
    "BATCH_URL",
    "REASK_SUFFIX",
    "BatchTagger",
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


class BatchTagger(Protocol):
    """What batch files need of a tagger: its parts (a :class:`JetTagger` has them)."""

    prompt: JetPrompt
    client: RequestClient
    keys: KeyPolicy
    gate: AnswerGate

    @property
    def model(self) -> BaseChatModel:
        """The chat model (a tagger's is built when first read)."""
        ...


JetInput = Any
"""A jet as a tagger takes it (a :class:`Jet`, an array, a mapping with ``jet``)."""


# -- requests -----------------------------------------------------------------------------------


def _chat_model(tagger: BatchTagger) -> ChatOpenAI:
    if not isinstance(tagger.model, ChatOpenAI):
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


def constraint_of(tagger: BatchTagger) -> str:
    """``"regex"``, ``"response_format"`` or ``"none"``: what the tagger's requests carry."""
    return tagger.client.constraint


def request_body(tagger: BatchTagger, messages: Sequence[BaseMessage]) -> dict[str, Any]:
    """The Chat Completions body the tagger sends its server for ``messages``.

    ChatOpenAI's own payload code with the tagger's call options, then ``extra_body`` merged
    on top as the openai SDK does.
    """
    payload = request_payload(_chat_model(tagger), list(messages), **tagger.client.options())
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


def export_jets(tagger: BatchTagger, jets: Iterable[JetInput]) -> Iterator[ExportedJet]:
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
        key = tagger.keys.key_for(jet)
        request = None
        if key not in asked and tagger.gate.lookup(key, jet) is None:
            asked.add(key)
            request = _line(key, request_body(tagger, tagger.prompt.messages(jet)))
        yield ExportedJet(position, jet.index, key, jet.key, request, key in asked)


def reask_request(tagger: BatchTagger, jet: Jet, reask: Reask) -> dict[str, Any]:
    """The request line that asks ``reask`` again: the messages the tagger would send.

    Raises :class:`VJTError` when the jet is not the one the first answer was for.
    """
    key = tagger.keys.key_for(jet)
    if key != reask.custom_id:
        raise VJTError(
            f"jet {jet.index}: its key {key} under these settings is not the re-ask's "
            f"{reask.custom_id} (other jets or settings than the first round)"
        )
    first = answer_message(tagger, reask.response)
    try:
        tagger.gate.read(first)
    except LabelParseError as exc:
        error = exc.reask
    else:
        error = None
    if error is None:
        raise VJTError(f"{reask.custom_id}: the first answer is not one to re-ask")
    messages = reask_messages(tagger.prompt.messages(jet), first.text, error)
    return _line(key + REASK_SUFFIX, request_body(tagger, messages))


def batch_requests(
    tagger: BatchTagger, jets: Iterable[JetInput], *, reasks: Iterable[Reask] | None = None
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
        reask = pending.pop(tagger.keys.key_for(jet), None)
        if reask is not None:
            yield reask_request(tagger, jet, reask)


# -- answers read back ---------------------------------------------------------------------------


@dataclass
class Reask:
    """An answer that needs a re-ask: its custom id and its response body."""

    custom_id: str
    response: dict[str, Any]


def answer_message(tagger: BatchTagger, body: Mapping[str, Any]) -> AIMessage:
    """The AIMessage the tagger's chat model makes of a response body (as after HTTP)."""
    return message_of_response(_chat_model(tagger), dict(body))
