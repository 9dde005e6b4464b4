""":class:`JetLabelParser`: the package's answer reading as a LangChain output parser.

>>> chain = prompt | ChatVLLM(...) | JetLabelParser()          # doctest: +SKIP
>>> chain.invoke({...}).label                                  # doctest: +SKIP
'gluon'

It reads what :func:`~.parsing.read_label` reads: the answer's JSON validated
against :class:`~.parsing.JetLabel` (label and probability must agree), or,
for prose, its explicit decision; a message cut at ``max_tokens`` (``finish_reason ==
"length"`` in its metadata) is an error too. Errors are
:class:`~vibe_jet_tagging.tagging.parsing.LabelParseError`, which is both this package's
:class:`~vibe_jet_tagging.errors.VJTError` and LangChain's ``OutputParserException``, so
``RetryWithErrorOutputParser``, ``OutputFixingParser`` and ``with_fallbacks`` treat it as a
parse failure; its ``reask`` holds the error to show the model when asking again.
"""

from __future__ import annotations

from langchain_core.messages import BaseMessage
from langchain_core.output_parsers import BaseOutputParser
from langchain_core.outputs import ChatGeneration, Generation

from .parsing import ParsedLabel, format_instructions, read_label

__all__ = ["JetLabelParser"]


def _finish_reason(generation: Generation) -> str | None:
    """The finish reason a generation carries: the message's metadata, else generation_info."""
    if isinstance(generation, ChatGeneration):
        finish = (generation.message.response_metadata or {}).get("finish_reason")
        if finish is not None:
            return str(finish)
    finish = (generation.generation_info or {}).get("finish_reason")
    return None if finish is None else str(finish)


class JetLabelParser(BaseOutputParser[ParsedLabel]):
    """Parse a chat model's answer into a :class:`~vibe_jet_tagging.tagging.parsing.ParsedLabel`.

    Raises :class:`~vibe_jet_tagging.tagging.parsing.LabelParseError` (an ``OutputParserException``)
    when the answer states no label, contradicts itself (``ContradictionError``) or was cut
    at ``max_tokens`` (``TruncatedAnswerError``). Reads at most the answer's last
    :data:`~.parsing.TAIL_CHARS` characters, so it is cheap on any answer and
    parses on the calling thread (also in ``ainvoke``).
    """

    def parse(self, text: str) -> ParsedLabel:
        """The label in ``text`` (no finish reason is known for a bare string)."""
        return read_label(text)

    def parse_result(self, result: list[Generation], *, partial: bool = False) -> ParsedLabel:
        """The label in the first generation, a truncated one (finish 'length') refused."""
        generation = result[0]
        return read_label(generation.text, _finish_reason(generation))

    async def aparse_result(
        self, result: list[Generation], *, partial: bool = False
    ) -> ParsedLabel:
        # Bounded work (the answer's tail): no executor hop.
        return self.parse_result(result, partial=partial)

    def read_message(self, message: BaseMessage) -> ParsedLabel:
        """The label in a chat message, with its finish reason (no Runnable machinery)."""
        finish = (message.response_metadata or {}).get("finish_reason")
        return read_label(message.text, None if finish is None else str(finish))

    def get_format_instructions(self) -> str:
        """How to answer: one JSON object following the ``JetLabel`` schema."""
        return format_instructions()

    @property
    def _type(self) -> str:
        return "jet_label"

    def __repr__(self) -> str:
        return "JetLabelParser()" if self.name is None else f"JetLabelParser(name={self.name!r})"
