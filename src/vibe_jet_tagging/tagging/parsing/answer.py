"""Reading a label out of a model's final answer: its last decision, validated, or an error."""

from __future__ import annotations

from typing import Literal

from instructor.core import IncompleteOutputException
from instructor.mode import Mode
from instructor.processing import handle_reask_kwargs, process_response
from langchain_core.messages import BaseMessage, convert_to_messages
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ContradictionError, LabelParseError, TruncatedAnswerError
from .prose import TAIL_CHARS, tail
from .reader import read
from .schema import CONTRADICTION, DIGIT_LABELS, JetLabel, Label, check_consistent

__all__ = [
    "PARSER_VERSION",
    "ParseStep",
    "ParsedLabel",
    "parse_label",
    "read_answer",
    "read_label",
    "reask_messages",
    "regex_label",
    "validate_answer",
]

PARSER_VERSION = "3"
"""Version of the parsing rules; part of every cache key. Bump it when the rules change.

2: JSON is read as JSON only; prose needs an explicit decision; contradictions are errors.
3: the last decision (JSON or prose) is the answer, and only if nothing after it doubts,
retracts, negates it or names the other class; quoted examples decide nothing; JSON labels
are case-insensitive (1/0 with ``digit_labels``)."""

ParseStep = Literal["schema", "reask", "regex"]


class ParsedLabel(BaseModel):
    """A label read from an answer, and the step that read it."""

    model_config = ConfigDict(frozen=True)

    label: Label
    quark_probability: float | None = Field(
        None, description="the probability the answer stated, if it stated one"
    )
    step: ParseStep

    @property
    def value(self) -> int:
        """1 for quark, 0 for gluon."""
        return int(self.label == "quark")


class NoDecisionError(ValueError):
    """A prose answer states no decision (what the model is re-asked with)."""


def _completion(content: str, finish_reason: str | None) -> ChatCompletion:
    """An object shaped like the OpenAI completion instructor's functions expect."""
    return ChatCompletion.model_validate(
        {
            "id": "answer",
            "object": "chat.completion",
            "created": 0,
            "model": "answer",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": finish_reason or "stop",
                    "message": {"role": "assistant", "content": content},
                }
            ],
        }
    )


def _truncated(content: str) -> TruncatedAnswerError:
    return TruncatedAnswerError(
        "the answer was cut at max_tokens (finish_reason 'length')"
        + ("" if content.strip() else "; the reasoning used the whole budget"),
        raw=content,
    )


def validate_answer(
    content: str, finish_reason: str | None = None, *, digit_labels: bool = False
) -> JetLabel:
    """Validate the end of an answer against :class:`JetLabel` with instructor (mode MD_JSON).

    Reads the last JSON object of the answer's last :data:`~.prose.TAIL_CHARS` characters
    (also inside prose or a code fence). Raises :class:`TruncatedAnswerError` when the answer
    was cut at ``max_tokens`` and pydantic's ``ValidationError`` when no valid JSON label is
    found (also when the label and probability disagree: error type ``"contradiction"``).
    The label is case-insensitive; with ``digit_labels``, 1 and 0 are quark and gluon.
    """
    if finish_reason == "length":
        raise _truncated(content)
    try:
        return process_response(
            _completion(tail(content), finish_reason),
            response_model=JetLabel,
            stream=False,
            mode=Mode.MD_JSON,
            validation_context={DIGIT_LABELS: digit_labels},
        )
    except IncompleteOutputException:
        raise _truncated(content) from None


def _preview(content: str) -> str:
    end = " ".join(tail(content)[-200:].split())
    return ("…" if len(content) > 200 else "") + end[-160:]


def _is_contradiction(error: Exception) -> bool:
    return isinstance(error, ValidationError) and any(
        e["type"] == CONTRADICTION for e in error.errors()
    )


def read_label(
    content: str, finish_reason: str | None = None, *, digit_labels: bool = False
) -> ParsedLabel:
    """The label an answer states, read from its last :data:`~.prose.TAIL_CHARS` characters.

    The rule (:mod:`.reader`): the answer's last decision, a JSON object or an explicit
    prose decision, gives the label, unless something after it doubts, retracts or negates
    it or names the other class.

    - ``finish_reason == "length"``: :class:`TruncatedAnswerError`, whatever the text.
    - A JSON decision is validated against :class:`JetLabel` with instructor (the label
      case-insensitive; 1/0 with ``digit_labels``); a failure raises
      :class:`LabelParseError` (:class:`ContradictionError` when the label and probability
      disagree) whose ``reask`` is the validation error; it is never searched for a label.
    - A prose decision is checked against the quark probability stated from the line before
      it to the end (:class:`ContradictionError` when they disagree).
    - No decision, or one taken back: :class:`LabelParseError` whose ``reask`` asks for the
      JSON answer.

    The work is bounded by the tail's length, not the answer's, so this is safe to call on
    the event loop whatever the server sent.
    """
    if finish_reason == "length":
        raise _truncated(content)
    fast = _compact_label(content, finish_reason, digit_labels)
    if fast is not None:
        return fast
    return _read_by_rule(content, finish_reason, digit_labels)


_FAST_FINISH = frozenset((None, "", "stop"))


def _compact_label(
    content: str, finish_reason: str | None, digit_labels: bool
) -> ParsedLabel | None:
    """The label of an answer that is one flat JSON object and nothing else, or ``None``.

    A shortcut past instructor for the answer a structured-output server sends
    (``{"label":"quark","quark_probability":0.97}``): :class:`JetLabel`'s own
    ``model_validate_json`` on the object, with the validation context instructor is given.
    It gives exactly what :func:`_read_by_rule` gives: the object is the reader's only
    statement (nothing but whitespace around it) and, with one ``{``, one ``}`` and no ``[``,
    instructor's ``extract_json_from_codeblock`` hands pydantic the same string; the finish
    reasons are those instructor's completion is built from unchanged. Anything else, or any
    failure (which instructor reports as the error to re-ask with), returns ``None``: the
    reader's rule and instructor decide.
    """
    if finish_reason not in _FAST_FINISH or len(content) > TAIL_CHARS:
        return None
    text = content.strip()
    if not (
        text[:1] == "{"
        and text[-1:] == "}"
        and text.count("{") == 1
        and text.count("}") == 1
        and "[" not in text
    ):
        return None
    try:
        answer = JetLabel.model_validate_json(text, context={DIGIT_LABELS: digit_labels})
    except ValueError:
        return None
    return ParsedLabel(
        label=answer.label, quark_probability=answer.quark_probability, step="schema"
    )


def _read_by_rule(content: str, finish_reason: str | None, digit_labels: bool) -> ParsedLabel:
    """:func:`read_label` by the reader's rule (:mod:`.reader`), JSON through instructor."""
    end = tail(content)

    def validate(text: str) -> tuple[str, float | None]:
        answer = validate_answer(text, finish_reason, digit_labels=digit_labels)
        return answer.label, answer.quark_probability

    reading = read(end, validate, whole=len(end) == len(content))
    if reading.error is not None:
        error = reading.error
        if isinstance(error, ValidationError) and _is_contradiction(error):
            raise ContradictionError(
                f"the answer contradicts itself: {error.errors()[0]['msg']}: {_preview(content)!r}",
                raw=content,
                reask=error,
            )
        raise LabelParseError(
            f"the answer's JSON is not a valid label ({_first_error(error)}): "
            f"{_preview(content)!r}",
            raw=content,
            reask=error,
        )
    if reading.label is None:
        reask = NoDecisionError(
            f"{reading.why}. Reply with only a JSON object: "
            '{"label": "quark" or "gluon", "quark_probability": a number from 0 to 1}'
        )
        raise LabelParseError(
            f"no label in the answer ({reading.why}): {_preview(content)!r}",
            raw=content,
            reask=reask,
        )
    label: Label = "quark" if reading.label == "quark" else "gluon"
    probability = reading.quark_probability
    if reading.contradiction or reading.step == "regex":
        try:
            check_consistent(label, probability)
        except ValueError as error:
            raise ContradictionError(
                f"the answer contradicts itself: it decides {label} but states quark "
                f"probability {probability}: {_preview(content)!r}",
                raw=content,
                reask=NoDecisionError(str(error)),
            ) from None
    return ParsedLabel(label=label, quark_probability=probability, step=reading.step or "regex")


def _first_error(error: Exception) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']}" if where else first["msg"]
    return str(error).splitlines()[0][:120]


def read_answer(
    content: str, finish_reason: str | None, *, allow_reask: bool, digit_labels: bool = False
) -> ParsedLabel | Exception:
    """Read a label (:func:`read_label`), or return the error to re-ask the model with.

    With ``allow_reask``, an answer whose JSON fails the schema, that contradicts itself, or
    whose prose states no decision returns the error to show the model (see
    :func:`reask_messages`); without it, or for a truncated answer, :class:`LabelParseError`
    is raised.
    """
    try:
        return read_label(content, finish_reason, digit_labels=digit_labels)
    except LabelParseError as error:
        if allow_reask and error.reask is not None:
            return error.reask
        raise


def regex_label(text: str) -> ParsedLabel | None:
    """The label an answer's prose decides, or ``None`` (see :mod:`.reader`).

    An answer whose decision is JSON, and decisions contradicting a stated probability,
    give None.
    """
    try:
        parsed = read_label(text)
    except LabelParseError:
        return None
    return parsed if parsed.step == "regex" else None


def parse_label(text: str) -> ParsedLabel:
    """The label in a final answer: its last decision, JSON validated against the schema.

    Returns the label, the quark probability when the answer gave one, and the step
    (``"schema"`` or ``"regex"``). Raises :class:`LabelParseError` (or
    :class:`ContradictionError`) when the text states no label.
    """
    return read_label(text)


def reask_messages(messages: list[BaseMessage], answer: str, error: Exception) -> list[BaseMessage]:
    """``messages`` plus the bad answer and a request to correct it, as instructor re-asks.

    The answer is shown as the parser read it: its last :data:`~.prose.TAIL_CHARS` characters.
    """
    extra = handle_reask_kwargs(
        {"messages": []}, Mode.MD_JSON, _completion(tail(answer), "stop"), error
    )["messages"]
    return [*messages, *convert_to_messages(extra)]
