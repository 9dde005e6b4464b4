"""Reading a label out of a model's final answer.

The steps, in order (each result records which one produced it):

1. ``schema``: instructor extracts the last JSON object from the answer (also inside prose or a
   code fence) and validates it against :class:`JetLabel`. A truncated answer
   (``finish_reason == "length"``) is reported as truncated, never parsed.
2. ``reask``: the chain asks the model once more, showing it its answer and the validation error
   the way instructor does (:func:`reask_messages`); the answer to that is parsed again.
3. ``regex``: :func:`regex_label` on the final answer (never the reasoning): explicit patterns
   first, then the last standalone 0/1, then the last quark/gluon keyword. The last occurrence
   wins. 1 means quark, 0 gluon.
4. Otherwise :class:`LabelParseError`, carrying the raw answer. Never a guessed label.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from instructor.core import IncompleteOutputException
from instructor.mode import Mode
from instructor.processing import handle_reask_kwargs, process_response
from langchain_core.messages import BaseMessage, convert_to_messages
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import VJTError

__all__ = [
    "COMPACT_LABEL_REGEX",
    "PARSER_VERSION",
    "SCHEMA_VERSION",
    "JetLabel",
    "LabelParseError",
    "ParseStep",
    "ParsedLabel",
    "TruncatedAnswerError",
    "label_response_format",
    "parse_label",
    "read_answer",
    "reask_messages",
    "regex_label",
    "validate_answer",
]

SCHEMA_VERSION = "1"
"""Version of :class:`JetLabel`; part of every cache key."""
PARSER_VERSION = "1"
"""Version of the parsing rules; part of every cache key. Bump it when the rules change."""

Label = Literal["quark", "gluon"]
ParseStep = Literal["schema", "reask", "regex"]


class JetLabel(BaseModel):
    """The answer the model is asked for."""

    model_config = ConfigDict(extra="forbid", title="JetLabel")

    label: Label = Field(description='"quark" or "gluon": what initiated the jet')
    quark_probability: float = Field(
        ge=0.0, le=1.0, description="probability that the jet is quark-initiated, 0 to 1"
    )


def label_response_format() -> dict[str, Any]:
    """:class:`JetLabel` as a Chat Completions ``response_format`` (a dict, not the class).

    A dict keeps pydantic objects out of the message, which LangChain's caches cannot store.
    """
    schema = JetLabel.model_json_schema()
    schema["additionalProperties"] = False
    return {
        "type": "json_schema",
        "json_schema": {"name": "JetLabel", "schema": schema, "strict": True},
    }


COMPACT_LABEL_REGEX = (
    r'\{"label":"(quark|gluon)","quark_probability":(0(\.[0-9]{1,4})?|1(\.0{1,4})?)\}'
)
"""A :class:`JetLabel` answer as compact JSON (no whitespace, at most 4 decimals).

Sent to vLLM as ``structured_outputs.regex``: with a JSON schema, vLLM's grammar allows any
whitespace between tokens, and a small model can fill ``max_tokens`` with it after
``{"label": "gluon"``. vLLM 0.32 ignores the per-request ``disable_any_whitespace`` (only the
server's ``--structured-outputs-config`` sets it), so a regex is the request-level way.
"""


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


class LabelParseError(VJTError):
    """The answer holds no label. Carries the raw answer; the chain never guesses one."""

    def __init__(self, message: str, *, raw: str, truncated: bool = False) -> None:
        super().__init__(message)
        self.raw = raw
        self.truncated = truncated


class TruncatedAnswerError(LabelParseError):
    """The server stopped at ``max_tokens`` (``finish_reason == "length"``)."""


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


def validate_answer(content: str, finish_reason: str | None = None) -> JetLabel:
    """Validate a final answer against :class:`JetLabel` with instructor (mode MD_JSON).

    Raises :class:`TruncatedAnswerError` when the answer was cut at ``max_tokens`` and
    pydantic's ``ValidationError`` when no valid JSON label is found.
    """
    try:
        return process_response(
            _completion(content, finish_reason),
            response_model=JetLabel,
            stream=False,
            mode=Mode.MD_JSON,
        )
    except IncompleteOutputException:
        raise TruncatedAnswerError(
            "the answer was cut at max_tokens (finish_reason 'length')"
            + ("" if content.strip() else "; the reasoning used the whole budget"),
            raw=content,
            truncated=True,
        ) from None


def reask_messages(messages: list[BaseMessage], answer: str, error: Exception) -> list[BaseMessage]:
    """``messages`` plus the bad answer and a request to correct it, as instructor re-asks."""
    extra = handle_reask_kwargs({"messages": []}, Mode.MD_JSON, _completion(answer, "stop"), error)[
        "messages"
    ]
    return [*messages, *convert_to_messages(extra)]


# -- the regex parser ---------------------------------------------------------------------------

_VALUE = r"(?P<v>(?:quark|gluon)(?=s?\b)|[01](?!\w|\.\d))"
_EXPLICIT = [
    # "answer: 1", "Final answer - **gluon**", "label = quark", "prediction is 0"
    re.compile(
        r"\b(?:final\s+)?(?:answer|label|prediction|classification|verdict|result|output|tag)"
        r"\s*(?:is|:|=|->|-|—)\s*(?:[*_`\"']|\bthe\b|\ba\b|\s)*" + _VALUE,
        re.IGNORECASE,
    ),
    # "therefore quark", "so the answer is 0", "thus it is a gluon jet", "hence: gluon"
    re.compile(
        r"\b(?:therefore|thus|hence|so|conclude|conclusion)\b[^.\n]{0,40}?" r"\b" + _VALUE,
        re.IGNORECASE,
    ),
    # "**Gluon**", "**1**"
    re.compile(r"\*\*\s*" + _VALUE + r"(?:[\s-]*(?:jet|initiated))?\s*\*\*", re.IGNORECASE),
    # a lone 0/1 (or label word) ending the answer: "...\n1", "Quark."
    re.compile(r"(?:^|\n)\W*" + _VALUE + r"\W*$", re.IGNORECASE),
]
_STANDALONE_DIGIT = re.compile(r"(?<![\w.])(?P<v>[01])(?!\w|\.\d)")
_KEYWORD = re.compile(r"\b(?P<v>quark|gluon)s?\b", re.IGNORECASE)
_NEGATED = re.compile(
    r"(?:\bnot|n't|\bno|\brather\s+than|\binstead\s+of|\bthan|\bvs\.?|\bversus)"
    r"(?:\s+(?:a|an|the|like))?\s*$",
    re.IGNORECASE,
)
_PROBABILITY = re.compile(
    r"(?:quark[_\s-]*probability|p\s*\(\s*quark\s*\))[\"'*\s]*(?:is|:|=|≈|~)?[\"'*\s]*"
    r"(?P<p>1(?:\.0+)?|0?\.\d+|0)(?![\d.])",
    re.IGNORECASE,
)


def _to_label(token: str) -> Label:
    token = token.lower()
    if token in ("1", "quark"):
        return "quark"
    return "gluon"


def _last(pattern: re.Pattern[str], text: str, *, skip_negated: bool = False) -> re.Match | None:
    last = None
    for match in pattern.finditer(text):
        if skip_negated and _NEGATED.search(text[max(0, match.start() - 24) : match.start()]):
            continue
        last = match
    return last


def regex_label(text: str) -> ParsedLabel | None:
    """Read a label from a prose answer, or ``None`` when it holds none.

    Explicit patterns first ("answer: 1", "label = gluon", "therefore quark", "**Gluon**", a
    lone 0/1 at the end), then the last standalone 0 or 1, then the last quark/gluon keyword
    not preceded by a negation ("not", "rather than"...). Within each rule the last
    occurrence wins. Digits inside numbers (0.67, 10) and words (also) never count.
    """
    match = None
    for pattern in _EXPLICIT:
        found = _last(pattern, text)
        if found is not None and (match is None or found.start("v") > match.start("v")):
            match = found
    match = match or _last(_STANDALONE_DIGIT, text) or _last(_KEYWORD, text, skip_negated=True)
    if match is None:
        return None
    probability = _last(_PROBABILITY, text)
    return ParsedLabel(
        label=_to_label(match.group("v")),
        quark_probability=None if probability is None else float(probability.group("p")),
        step="regex",
    )


def read_answer(
    content: str, finish_reason: str | None, *, allow_reask: bool
) -> ParsedLabel | Exception:
    """Read a label, or return the validation error the model should be re-asked with.

    A truncated answer raises :class:`TruncatedAnswerError`. An
    answer that holds JSON failing the schema is re-asked (when allowed) before any regex: the
    model meant to answer in the schema. A prose answer goes to the regex parser first, and is
    re-asked only if that finds nothing. Raises :class:`LabelParseError` when nothing is left.
    """
    try:
        label = validate_answer(content, finish_reason)
        return ParsedLabel(
            label=label.label, quark_probability=label.quark_probability, step="schema"
        )
    except LabelParseError:
        raise
    except ValueError as error:  # pydantic ValidationError, instructor's JSON errors
        schema_error: Exception = error
    attempted_json = "{" in content
    if attempted_json and allow_reask:
        return schema_error
    parsed = regex_label(content)
    if parsed is not None:
        return parsed
    if allow_reask:
        return schema_error
    preview = content.strip().replace("\n", " ")[:160]
    raise LabelParseError(f"no label in the answer: {preview!r}", raw=content)


def parse_label(text: str) -> ParsedLabel:
    """The label in a final answer: schema validation first, then the regex parser.

    Returns the label, the quark probability when the answer gave one, and the step
    (``"schema"`` or ``"regex"``). Raises :class:`LabelParseError` when the text holds no
    answer.
    """
    try:
        answer = validate_answer(text)
    except ValidationError:
        pass
    else:
        return ParsedLabel(
            label=answer.label, quark_probability=answer.quark_probability, step="schema"
        )
    parsed = regex_label(text)
    if parsed is None:
        preview = text.strip().replace("\n", " ")[:120]
        raise LabelParseError(f"no label in the answer: {preview!r}", raw=text)
    return parsed
