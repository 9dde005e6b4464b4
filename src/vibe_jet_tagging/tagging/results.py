"""What tagging a jet returns: :class:`TagResult`, its :class:`Usage` and :class:`TagError`.

A result read from the cache in bulk (``abatch`` over cached jets) holds its reasoning text
only once asked for: the text is ~2 KB of a ~3 KB result, and 100,000 results would hold
200 MB of it that most runs never read. ``result.reasoning`` reads it back from the cache the
result came from (see :func:`defer_reasoning`), checked to be the same answer.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Literal, Protocol

from langchain_core.messages import BaseMessage
from pydantic import BaseModel, ConfigDict, Field

from ..errors import VJTError

__all__ = [
    "REASONING_KEY",
    "SERVER_KINDS",
    "ErrorKind",
    "Origin",
    "TagError",
    "TagResult",
    "TaggingError",
    "TransientTaggingError",
    "Usage",
    "defer_reasoning",
    "reasoning_of",
]

# The same as ``parsing.Label`` and ``parsing.ParseStep`` (tests/unit/test_startup.py checks
# it), spelled here so that a result (and the cache that holds results) can be imported
# without the parser's stack (instructor and the openai SDK, ~0.6 s of CPU).
Label = Literal["quark", "gluon"]
ParseStep = Literal["schema", "reask", "regex"]

REASONING_KEY = "reasoning_content"
"""Where :class:`~vibe_jet_tagging.tagging.model.ChatVLLM` keeps the reasoning in
``AIMessage.additional_kwargs`` (LangChain's usual key)."""


def reasoning_of(message: BaseMessage) -> str | None:
    """The reasoning text ``ChatVLLM`` kept on ``message``, if any."""
    text = message.additional_kwargs.get(REASONING_KEY)
    return text if isinstance(text, str) and text else None


ErrorKind = Literal[
    "parse",
    "truncated",
    "contradiction",
    "server",
    "timeout",
    "connection",
    "rate_limit",
    "bad_request",
    "input",
    "oversized",
    "repeated_failure",
]
"""Why a jet has no label. ``parse``: the answer states none; ``truncated``: cut at
``max_tokens``; ``contradiction``: its label and quark probability disagree (after a re-ask);
``oversized``: the answer exceeded ``max_answer_bytes`` (never read whole, parsed or kept);
``repeated_failure``: two servers in turn failed on the request (not sent to a third); the
others: the server or the jet's data."""

SERVER_KINDS = frozenset(
    {"server", "timeout", "connection", "rate_limit", "bad_request", "repeated_failure"}
)
"""Error kinds that say a server failed (not the jet's data, not the model's answer)."""

Origin = Literal["model", "imported"]
"""Whose answer a result is: this user's run got it from the model (``model``), or it came
from a results file the user chose to trust (``imported``)."""


class Usage(BaseModel):
    """Tokens one jet cost (summed over its requests, a re-ask included).

    ``output_tokens`` include the reasoning tokens. When the server does not report
    ``reasoning_tokens`` (many vLLM versions send null), they are estimated by splitting
    ``output_tokens`` in the ratio of the reasoning and answer lengths, and
    ``reasoning_estimated`` says so.

    ``cached_input_tokens`` are the input tokens the server served from its prefix cache
    (``usage.prompt_tokens_details.cached_tokens``: vLLM sends it when started with
    ``--enable-prompt-tokens-details``); the GPU prefilled only the rest
    (:attr:`uncached_input_tokens`). ``None`` means the server did not say, never 0.
    """

    input_tokens: int = 0
    cached_input_tokens: int | None = None
    output_tokens: int = 0
    reasoning_tokens: int = 0
    reasoning_estimated: bool = False
    requests: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    @property
    def uncached_input_tokens(self) -> int:
        """Input tokens the server had to prefill (all of them when it did not say)."""
        return self.input_tokens - (self.cached_input_tokens or 0)

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            cached_input_tokens=_add_known(self.cached_input_tokens, other.cached_input_tokens),
            output_tokens=self.output_tokens + other.output_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            reasoning_estimated=self.reasoning_estimated or other.reasoning_estimated,
            requests=self.requests + other.requests,
        )

    @classmethod
    def from_message(cls, message: BaseMessage) -> Usage:
        """The usage a chat model reported on ``message``, reasoning estimated if missing."""
        meta: dict[str, Any] = getattr(message, "usage_metadata", None) or {}
        output = int(meta.get("output_tokens") or 0)
        reported = (meta.get("output_token_details") or {}).get("reasoning")
        estimated = reported is None
        if estimated:
            reasoning = reasoning_of(message) or ""
            answer = message.text if hasattr(message, "text") else str(message.content)
            chars = len(reasoning) + len(answer)
            reported = round(output * len(reasoning) / chars) if chars else 0
        cached = (meta.get("input_token_details") or {}).get("cache_read")
        return cls(
            input_tokens=int(meta.get("input_tokens") or 0),
            cached_input_tokens=None if cached is None else int(cached),
            output_tokens=output,
            reasoning_tokens=int(reported or 0),
            reasoning_estimated=estimated and output > 0,
            requests=1,
        )


def _add_known(a: int | None, b: int | None) -> int | None:
    """The sum of what is known: ``None`` only when neither side is."""
    return None if a is None and b is None else (a or 0) + (b or 0)


class TagError(BaseModel):
    """Why a jet has no label."""

    kind: ErrorKind
    message: str
    raw_answer: str | None = Field(None, description="the model's final answer, when it gave one")
    status: int | None = Field(None, description="HTTP status, for server errors")

    @property
    def transient(self) -> bool:
        """Whether asking again can succeed: a connection error, a timeout, 429 or 5xx.

        Not a 4xx (an unknown model, a request the server refuses) nor an answer without a
        label: asking again the same way fails the same way.
        """
        if self.kind in ("timeout", "connection", "rate_limit"):
            return True
        return self.kind == "server" and (self.status is None or self.status >= 500)


class TagResult(BaseModel):
    """One jet's tag: the label, where it came from, and what it cost.

    ``label`` is ``None`` exactly when ``error`` is set; a label is never guessed.
    """

    model_config = ConfigDict(extra="ignore")

    index: int | None = Field(None, description="the jet's index in its data set, if known")
    jet_key: str
    key: str = Field(description="cache key: the jet, the prompt and the model settings")
    label: Label | None = None
    quark_probability: float | None = Field(None, description="the probability the answer stated")
    logprob_quark_probability: float | None = Field(
        None, description="P(quark) from the token logprobs of the label, when requested"
    )
    parsed_by: ParseStep | None = None
    answer: str | None = Field(None, description="the model's final answer (last request)")
    reasoning: str | None = None
    finish_reason: str | None = None
    usage: Usage = Usage()
    latency: float = Field(0.0, description="seconds spent in model requests")
    model: str = ""
    effort: str | None = None
    template: str = ""
    settings: str | None = Field(
        None, description="the tagger's settings key: results with the same one are comparable"
    )
    server: str | None = Field(
        None, description="the server that answered (kept in the cache with the answer)"
    )
    cached: bool = Field(False, description="served from the cache or an identical request")
    error: TagError | None = None
    identity: str | None = Field(
        None, description="who answered: the verified identity of the server (model, weights)"
    )
    answer_digest: str | None = Field(None, description="digest of the answer text (signed)")
    origin: Origin = Field("model", description="the model's answer to this run, or imported")
    signature: str | None = Field(
        None, description="this user's signature of the result (see store.provenance)"
    )

    def __getattr__(self, name: str) -> Any:
        if name == "reasoning":  # deferred (see defer_reasoning): read it now, keep it
            text = _read_reasoning(self)
            self.__dict__["reasoning"] = text
            return text
        return super().__getattr__(name)  # type: ignore[misc]

    def _whole(self) -> None:
        """Read a deferred reasoning text, before anything that copies or shows the fields."""
        if "reasoning" not in self.__dict__:
            self.__getattr__("reasoning")

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        self._whole()
        return super().model_dump(**kwargs)

    def model_dump_json(self, **kwargs: Any) -> str:
        self._whole()
        return super().model_dump_json(**kwargs)

    def __getstate__(self) -> dict[Any, Any]:
        self._whole()
        return super().__getstate__()

    def __eq__(self, other: object) -> bool:
        self._whole()
        if isinstance(other, TagResult):
            other._whole()
        return super().__eq__(other)

    def __repr_args__(self) -> Any:
        self._whole()
        return super().__repr_args__()

    @property
    def ok(self) -> bool:
        """Whether the jet got a label."""
        return self.error is None and self.label is not None

    @property
    def value(self) -> int | None:
        """1 for quark, 0 for gluon, ``None`` on error."""
        return None if self.label is None else int(self.label == "quark")

    @property
    def score(self) -> float | None:
        """Quark score for ROC curves: the stated probability, else the hard label."""
        if self.quark_probability is not None:
            return self.quark_probability
        return None if self.value is None else float(self.value)


class _ReasoningSource(Protocol):
    def get(self, key: str) -> TagResult | None: ...


_SOURCES: dict[str | None, weakref.WeakSet[Any]] = {}
_SOURCES_LOCK = threading.Lock()


def defer_reasoning(result: TagResult, source: _ReasoningSource) -> None:
    """Let ``result`` (just read from ``source``, a result cache) go of its reasoning text;
    ``result.reasoning`` reads it from ``source`` again when asked (the same entry: the same
    answer digest and signature, else ``None``)."""
    if result.__dict__.pop("reasoning", None) is None:
        result.__dict__["reasoning"] = None  # nothing to defer
        return
    with _SOURCES_LOCK:
        sources = _SOURCES.get(result.settings)
        if sources is None:
            sources = _SOURCES[result.settings] = weakref.WeakSet()
        sources.add(source)


def _read_reasoning(result: TagResult) -> str | None:
    with _SOURCES_LOCK:
        sources = list(_SOURCES.get(result.settings) or ())
    for source in sources:
        entry = source.get(result.key)
        if (
            entry is not None
            and entry.answer_digest == result.answer_digest
            and entry.signature == result.signature
        ):
            text = entry.__dict__.get("reasoning")
            return text if isinstance(text, str) else None
    return None


class TaggingError(VJTError):
    """A jet could not be tagged; ``.result`` holds the error, the raw answer and the usage.

    An error that can pass (:attr:`TagError.transient`) is a :class:`TransientTaggingError`,
    which is what ``JetTagger.with_retry`` retries.
    """

    def __new__(cls, result: TagResult, *args: Any) -> TaggingError:
        if cls is TaggingError and result.error is not None and result.error.transient:
            cls = TransientTaggingError
        return super().__new__(cls, result, *args)

    @property
    def transient(self) -> bool:
        """Whether asking again can succeed (see :attr:`TagError.transient`)."""
        return isinstance(self, TransientTaggingError)

    def __reduce__(self) -> tuple[Any, ...]:
        return (TaggingError, (self.result,))

    def __init__(self, result: TagResult) -> None:
        assert result.error is not None
        where = "" if result.index is None else f"jet {result.index}: "
        super().__init__(f"{where}{result.error.kind}: {result.error.message}")
        self.result = result


class TransientTaggingError(TaggingError):
    """A :class:`TaggingError` that asking again can cure: connection, timeout, 429, 5xx."""
