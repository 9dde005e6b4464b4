"""The answer the model is asked for: :class:`JetLabel`, its JSON schema and its rules."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

__all__ = [
    "COMPACT_LABEL_REGEX",
    "DIGIT_LABELS",
    "SCHEMA_VERSION",
    "JetLabel",
    "Label",
    "check_consistent",
    "format_instructions",
    "label_response_format",
]

SCHEMA_VERSION = "2"
"""Version of :class:`JetLabel`; part of every cache key (2: label and probability must agree)."""

Label = Literal["quark", "gluon"]

CONTRADICTION = "contradiction"
"""The pydantic error type of an answer whose label and probability disagree."""


def check_consistent(label: str, quark_probability: float | None) -> None:
    """Raise ``PydanticCustomError("contradiction")`` unless quark <=> probability >= 0.5."""
    if quark_probability is None:
        return
    if (label == "quark") != (quark_probability >= 0.5):
        raise PydanticCustomError(
            CONTRADICTION,
            "label '{label}' contradicts quark_probability {p}: the label must be quark "
            "when quark_probability >= 0.5 and gluon when it is below",
            {"label": label, "p": quark_probability},
        )


DIGIT_LABELS = "digit_labels"
"""Validation context key: when true, a label of 1 or 0 (number or string) reads as quark or
gluon (for templates that ask for digits)."""


class JetLabel(BaseModel):
    """The answer the model is asked for. The label and the probability must agree.

    The label is read case-insensitively (``"Quark"`` is quark); 1 and 0 are read as quark and
    gluon only when validated with ``context={"digit_labels": True}``.
    """

    model_config = ConfigDict(extra="forbid", title="JetLabel")

    label: Label = Field(description='"quark" or "gluon": what initiated the jet')
    quark_probability: float = Field(
        ge=0.0,
        le=1.0,
        description="probability that the jet is quark-initiated, 0 to 1 "
        "(at least 0.5 exactly when the label is quark)",
    )

    @field_validator("label", mode="before")
    @classmethod
    def _label_as_written(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            word = value.strip().lower()
            if word in ("quark", "gluon"):
                return word
        digits = bool(info.context and info.context.get(DIGIT_LABELS))
        if digits and not isinstance(value, bool) and value in (0, 1, "0", "1"):
            return "quark" if value in (1, "1") else "gluon"
        return value

    @model_validator(mode="after")
    def _label_agrees_with_probability(self) -> JetLabel:
        check_consistent(self.label, self.quark_probability)
        return self


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

The regex leaves the model free to contradict itself (a gluon label with a quark probability
of 0.9): forcing agreement in the grammar would hide what the model meant behind a number the
grammar chose. A contradiction is re-asked and, if it stays, counted as an error of its own.
"""


def format_instructions() -> str:
    """How to answer, for a prompt: one JSON object following :class:`JetLabel`'s schema."""
    schema = label_response_format()["json_schema"]["schema"]
    return (
        "Answer with one JSON object and nothing after it, following this JSON schema:\n"
        f"```json\n{json.dumps(schema, indent=2)}\n```\n"
        '"label" is "quark" or "gluon"; "quark_probability" is a number from 0 to 1 that is '
        'at least 0.5 exactly when "label" is "quark". For example: '
        '{"label": "gluon", "quark_probability": 0.3}'
    )
