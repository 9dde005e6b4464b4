"""The one gate every answer passes before it is a result, a cache entry or a kept row.

Each way an answer can come in is a door, a thin adapter in front of :class:`AnswerGate`:

- an HTTP response (:class:`~vibe_jet_tagging.tagging.tagger.JetTagger`) and a batch output
  line (:mod:`vibe_jet_tagging.scale.batchread`): :meth:`~AnswerGate.read` the answer with the
  one parser, then :meth:`~AnswerGate.admit` it, or :meth:`~AnswerGate.failed`;
- a cache entry: :meth:`~AnswerGate.lookup` and :meth:`~AnswerGate.lookup_many`;
- a results row (resume, ``vjt cache import``): :meth:`~AnswerGate.admit_row`.

What the gate checks, whatever the door: whose answer it is (the verified identity of the
server that gave it, recorded on the result), that it belongs to this run's settings and this
jet (its cache key), that the one parser read a stated label from it (a bounded answer, never
a guess), and that the label and the probability agree. What passes is signed
(:mod:`vibe_jet_tagging.store.provenance`); a cache entry or a row is used only when its
signature verifies with this user's key, or when the user chose to trust its file (then it is
marked ``imported``). Only the gate writes the result cache (:meth:`~AnswerGate.store`).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage

from .._imports import Deferred, built
from ..errors import VJTError
from ..jets.jet import Jet
from ..servers.url import redact
from ..store.cache import ResultCache
from ..store.provenance import SIGNED, Signer, answer_digest, default_signer
from ..store.rows import row_result
from .client import RequestClient, logprob_quark_probability
from .identity import KeyPolicy
from .results import TagError, TagResult, Usage, reasoning_of

if TYPE_CHECKING:  # the parser's stack (instructor, the openai SDK) is imported when it reads
    from .parser import JetLabelParser
    from .parsing import LabelParseError, ParsedLabel

__all__ = [
    "AnswerGate",
    "Asked",
    "OversizedAnswer",
    "RowRefused",
    "check_row",
    "row_problem",
    "store_admitted",
]

logger = logging.getLogger(__name__)

_STORED_KEPT = 8192
"""Keys stored last that a jet looked up earlier checks again (see ``stored_since``)."""
_KEY = re.compile(r"[0-9a-f]{32}")
_STEPS = frozenset({"schema", "regex", "reask"})
_COUNTS = ("input_tokens", "output_tokens", "reasoning_tokens", "tokens", "requests")
_MAX_INDEX = 2**53


@dataclass(frozen=True, slots=True)
class Asked:
    """What an answer is for: the jet's cache key, its content key and its index."""

    key: str
    jet_key: str
    index: int | None = None

    @classmethod
    def of(cls, jet: Jet, key: str) -> Asked:
        """``jet`` asked under ``key``."""
        return cls(key, jet.key, jet.index)


class OversizedAnswer(VJTError):
    """An answer beyond the size bound: counted as an error, never parsed or kept."""

    def __init__(self, error: TagError) -> None:
        super().__init__(error.message)
        self.error = error


class RowRefused(VJTError):
    """A results row that may not be used: the message names the file and line, and why."""


def _signed(source: Any) -> dict[str, Any]:
    """The signed fields (and the signature) of a result or a row."""
    if isinstance(source, Mapping):
        fields = {name: source.get(name) for name in SIGNED}
        fields["signature"] = source.get("signature")
    else:
        fields = {name: getattr(source, name) for name in SIGNED}
        fields["signature"] = source.signature
    if fields.get("origin") is None:
        fields["origin"] = "model"
    return fields


class AnswerGate:
    """The one place an answer becomes a result (see the module doc).

    Args:
        keys: the tagger's keys (settings key, a jet's cache key).
        client: the requests (the model's name and effort, the verified server identity).
        parser: the one parser of answers (a :class:`~vibe_jet_tagging._imports.Deferred`
            one is built when first read).
        template: the prompt template's name (recorded on results).
        cache: the result cache (``None``: no cache); only the gate writes it.
        refresh: ignore cached results (look-ups find nothing; results are stored anew).
        reask: whether an answer without a label is asked once more.
        max_answer_bytes: the largest answer (reasoning included) the parser reads.
        signer: signs and verifies results (default: this user's key).
    """

    def __init__(
        self,
        *,
        keys: KeyPolicy,
        client: RequestClient,
        parser: JetLabelParser | Deferred[JetLabelParser],
        template: str,
        cache: ResultCache | None,
        refresh: bool,
        reask: bool,
        max_answer_bytes: int,
        signer: Signer | None = None,
    ) -> None:
        self.keys = keys
        self.client = client
        self._parser = parser
        self.template = template
        self.cache = cache
        self.refresh = refresh
        self.reask = reask
        self.max_answer_bytes = max_answer_bytes
        self.signer = signer or default_signer()
        self._identity: str | None = None
        self._stored: OrderedDict[str, None] = OrderedDict()
        self._warned = False

    @property
    def parser(self) -> JetLabelParser:
        """The one parser of answers (built on first use when given as a ``Deferred``)."""
        parser = self._parser = built(self._parser)
        return parser

    @parser.setter
    def parser(self, value: JetLabelParser) -> None:
        self._parser = value

    @property
    def identity(self) -> str:
        """Who answers this tagger's requests (the verified server identity), once read."""
        if self._identity is None:
            self._identity = self.client.identity
        return self._identity

    # -- reading an answer (the HTTP and batch doors) -------------------------------------------

    def read(self, message: AIMessage) -> ParsedLabel:
        """The label ``message`` states, read by the one parser.

        Raises :class:`OversizedAnswer` for an answer beyond the bound (not parsed), and
        :class:`~vibe_jet_tagging.tagging.parsing.LabelParseError` when it states no label.
        """
        self.check_size(message)
        return self.parser.read_message(message)

    def check_size(self, message: AIMessage) -> None:
        """Raise :class:`OversizedAnswer` when ``message`` is beyond the bound."""
        size = len(message.text) + len(reasoning_of(message) or "")
        if size > self.max_answer_bytes:
            raise OversizedAnswer(
                TagError(
                    kind="oversized",
                    message=f"the answer is {size:,} characters, above max_answer_bytes "
                    f"({self.max_answer_bytes:,}): not read",
                )
            )

    def wants_reask(self, error: LabelParseError) -> bool:
        """Whether an answer that gave ``error`` is asked once more (one place decides)."""
        return self.reask and error.reask is not None

    def read_reask(self, message: AIMessage) -> ParsedLabel:
        """The label the answer to a re-ask states; only that answer counts, never the first."""
        parsed = self.read(message)
        if parsed.step == "schema":
            parsed = parsed.model_copy(update={"step": "reask"})
        return parsed

    # -- results ---------------------------------------------------------------------------

    def _result(self, asked: Asked, **fields: Any) -> TagResult:
        return TagResult(
            index=asked.index,
            jet_key=asked.jet_key,
            key=asked.key,
            model=self.client.model_name,
            effort=self.client.reasoning_effort,
            template=self.template,
            settings=self.keys.known,  # None while the server could not be read
            **fields,
        )

    def admit(
        self,
        asked: Asked,
        parsed: ParsedLabel,
        message: AIMessage,
        usage: Usage,
        *,
        latency: float = 0.0,
        server: str | None = None,
        store: bool = True,
    ) -> TagResult:
        """The labelled result of ``message`` for ``asked``: checked, signed and stored.

        ``server``: the URL that answered (``None`` for an answer made offline, a batch
        file's). ``store=False`` leaves the cache to :meth:`store` (imports that commit only
        once everything was read).
        """
        from .parsing.schema import check_consistent

        check_consistent(parsed.label, parsed.quark_probability)
        answer = message.text
        result = self._result(
            asked,
            label=parsed.label,
            quark_probability=parsed.quark_probability,
            logprob_quark_probability=logprob_quark_probability(message),
            parsed_by=parsed.step,
            answer=answer,
            reasoning=reasoning_of(message),
            finish_reason=message.response_metadata.get("finish_reason"),
            usage=usage,
            latency=latency,
            server=redact(server),
            cached=bool(message.response_metadata.get("cache_hit")),
            identity=self.identity,
            answer_digest=answer_digest(answer),
        )
        result.signature = self.signer.sign(_signed(result))
        if store:
            self.store(result)
        return result

    def failed(
        self,
        asked: Asked,
        error: TagError | LabelParseError,
        message: AIMessage | None = None,
        usage: Usage | None = None,
        latency: float = 0.0,
    ) -> TagResult:
        """The result of a jet without a label: the error, the answer if any, what it cost."""
        if not isinstance(error, TagError):  # a LabelParseError
            error = TagError(kind=error.kind, message=str(error), raw_answer=error.raw)
        if message is not None and error.kind == "oversized":
            message = None  # never kept
        return self._result(
            asked,
            answer=None if message is None else message.text,
            reasoning=None if message is None else reasoning_of(message),
            finish_reason=None
            if message is None
            else message.response_metadata.get("finish_reason"),
            usage=usage or Usage(),
            latency=latency,
            error=error,
        )

    def store(self, result: TagResult) -> bool:
        """Put a labelled result this gate admitted into the cache (the only writer)."""
        if self.cache is None or not store_admitted(self.cache, result, self.signer):
            return False
        self._stored[result.key] = None
        if len(self._stored) > _STORED_KEPT:
            with contextlib.suppress(KeyError):  # another loop's batch took it
                self._stored.popitem(last=False)
        return True

    def stored_since(self, key: str) -> bool:
        """Whether this gate stored ``key`` lately (a jet looked up before may find it now)."""
        return key in self._stored

    # -- the cache door ----------------------------------------------------------------------

    def _trusted_entry(self, hit: TagResult, key: str) -> bool:
        fields = _signed(hit)
        if hit.key == key and hit.ok and self.signer.verifies(fields):
            return True
        level = logging.DEBUG if self._warned else logging.WARNING
        self._warned = True
        logger.log(
            level,
            "cache entry %s does not verify (edited, another user's, or made before results "
            "were signed): treated as a miss",
            key,
        )
        return False

    def lookup(self, key: str, jet: Jet) -> TagResult | None:
        """The cached result of ``jet`` under ``key``, verified; ``None`` (also on refresh)."""
        if self.cache is None or self.refresh:
            return None
        hit = self.cache.get(key)
        if hit is None or not self._trusted_entry(hit, key):
            return None
        return self.served(hit, jet.index)

    def lookup_many(self, keys: Iterable[str]) -> dict[str, TagResult]:
        """The verified cached results among ``keys`` (none on refresh), new objects each."""
        if self.cache is None or self.refresh:
            return {}
        hits = self.cache.get_many(keys, reasoning=False)  # each text read when asked
        return {key: hit for key, hit in hits.items() if self._trusted_entry(hit, key)}

    @staticmethod
    def served(hit: TagResult, index: int | None) -> TagResult:
        """Mark a result read from the cache (a new object, ours to mark) as a jet's hit."""
        hit.cached = True
        hit.index = index
        return hit

    # -- the rows door (resume, cache import) ------------------------------------------------

    def admit_row(
        self,
        row: Mapping[str, Any],
        *,
        where: str,
        jet: Jet | None = None,
        trusted: bool = False,
    ) -> TagResult:
        """A labelled results row as a result this run may use.

        Raises :class:`RowRefused` (one line starting with ``where``, e.g. ``out.jsonl line
        7``) for a row with impossible or contradicting values, a row made for another jet or
        other settings (when ``jet`` is given), and a row whose signature does not verify,
        unless ``trusted``: then it is taken as ``imported`` and signed as such.
        """
        if jet is not None and row_problem(row) is None and row["key"] != self.keys.key_for(jet):
            raise RowRefused(f"{where}: made for another jet or with other settings")
        return check_row(row, where=where, signer=self.signer, trusted=trusted)


def check_row(
    row: Mapping[str, Any], *, where: str, signer: Signer, trusted: bool = False
) -> TagResult:
    """A labelled results row as a result, checked (see :meth:`AnswerGate.admit_row`).

    For doors without a tagger (``vjt cache import``): the row's own key is taken as given,
    which its signature covers.
    """
    problem = row_problem(row)
    if problem is not None:
        raise RowRefused(f"{where}: {problem}")
    result = row_result(row)
    if signer.verifies(_signed(row)):
        return result
    if not trusted:
        raise RowRefused(
            f"{where}: the row does not verify (edited, made by another user, or by a vjt "
            "from before signed results); trust its file explicitly to take it as imported"
        )
    result.origin = "imported"
    result.signature = signer.sign(_signed(result))
    return result


def store_admitted(cache: ResultCache, result: TagResult, signer: Signer) -> bool:
    """Put ``result`` into ``cache`` if it is labelled and signed by ``signer`` (the one way
    results enter a cache)."""
    if not result.ok or not signer.verifies(_signed(result)):
        return False
    return cache.put(result)


def _is_count(value: Any) -> bool:
    return value is None or (type(value) is int and 0 <= value < _MAX_INDEX)


def row_problem(row: Mapping[str, Any]) -> str | None:
    """Why a labelled row cannot be a result, or ``None``."""
    label, p = row.get("label"), row.get("quark_probability")
    if label not in ("quark", "gluon"):
        return f"label {label!r} is not quark or gluon"
    if row.get("error") is not None:
        return "a row with an error has no label"
    # type(): a bool is no number here; the range refuses nan and infinities as well.
    if p is not None and (type(p) not in (int, float) or not 0 <= p <= 1):
        return f"quark_probability {p!r} is not a number from 0 to 1"
    from .parsing.schema import check_consistent

    try:
        check_consistent(label, p)
    except ValueError:
        return f"label {label!r} contradicts quark_probability {p!r}"
    if row.get("parsed_by") not in _STEPS:
        return f"parsed_by {row.get('parsed_by')!r} is not one of {', '.join(sorted(_STEPS))}"
    for name in ("key", "jet_key"):
        if not isinstance(row.get(name), str) or not _KEY.fullmatch(row[name]):
            return f"{name} {row.get(name)!r} is not a key"
    if not isinstance(row.get("settings"), str):
        return "no settings key (a row from another tool, or too old to check)"
    index = row.get("index")
    if type(index) is not int or not 0 <= index < _MAX_INDEX:
        return f"index {index!r} is not a jet index"
    for name in _COUNTS:
        if not _is_count(row.get(name)):
            return f"{name} {row.get(name)!r} is not a count"
    if row.get("origin", "model") not in ("model", "imported"):
        return f"origin {row.get('origin')!r} is not model or imported"
    return None
