"""Why an answer gave no label: :class:`LabelParseError` and its kinds."""

from __future__ import annotations

from typing import ClassVar, Literal

from langchain_core.exceptions import OutputParserException

from ...errors import VJTError

__all__ = ["ContradictionError", "LabelParseError", "ParseErrorKind", "TruncatedAnswerError"]

ParseErrorKind = Literal["parse", "truncated", "contradiction"]


class LabelParseError(VJTError, OutputParserException):
    """The answer holds no label. Carries the raw answer; nothing ever guesses one.

    Also a LangChain :class:`~langchain_core.exceptions.OutputParserException` (so retry and
    fixing parsers and ``with_fallbacks`` treat it as a parse failure), with ``llm_output``
    set to the raw answer. ``reask`` is the error to show the model when asking it again
    (``None`` when asking again with the same budget cannot help, as for a truncated answer).
    """

    kind: ClassVar[ParseErrorKind] = "parse"

    def __init__(self, message: str, *, raw: str, reask: Exception | None = None) -> None:
        # Not OutputParserException.__init__: it appends a troubleshooting URL to the message.
        ValueError.__init__(self, message)
        self.raw = raw
        self.reask = reask
        self.llm_output: str | None = raw
        self.observation: str | None = None if reask is None else str(reask)
        self.send_to_llm = False

    @property
    def truncated(self) -> bool:
        """Whether the server cut the answer at ``max_tokens``."""
        return self.kind == "truncated"

    def __reduce__(self) -> tuple[object, ...]:
        return _rebuild, (type(self), str(self), self.raw)


def _rebuild(cls: type[LabelParseError], message: str, raw: str) -> LabelParseError:
    return cls(message, raw=raw)


class TruncatedAnswerError(LabelParseError):
    """The server stopped at ``max_tokens`` (``finish_reason == "length"``)."""

    kind: ClassVar[ParseErrorKind] = "truncated"


class ContradictionError(LabelParseError):
    """The answer's label and quark probability disagree (quark needs a probability >= 0.5)."""

    kind: ClassVar[ParseErrorKind] = "contradiction"
