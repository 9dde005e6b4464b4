"""Reading a label out of a model's final answer: what the model said, or nothing.

The steps, in order (each result records which one produced it):

1. ``schema``: an answer whose end holds a JSON object (a ``{``) is read as JSON only:
   instructor extracts its last JSON object (also inside prose or a code fence) and validates
   it against :class:`JetLabel`, whose label and ``quark_probability`` must agree (quark
   exactly when the probability is at least 0.5). A truncated answer
   (``finish_reason == "length"``) is reported as truncated, never parsed.
2. ``regex``: a prose answer (no ``{``) gives the label of its explicit decision ("answer:
   1", "therefore gluon", "it is a quark jet", a lone label word or 0/1 ending it); none when
   it hedges, refuses, names both classes without deciding, or only holds stray digits
   ("Step 1", "#1"). See :mod:`.prose`.
3. ``reask``: when either fails, the chain asks the model once more, showing it its answer and
   the error the way instructor does (:func:`reask_messages`); only the answer to that is
   read again (steps 1-2), never the first one.
4. Otherwise :class:`LabelParseError` (:class:`ContradictionError` when the answer's label
   and probability disagree, :class:`TruncatedAnswerError` when it was cut), carrying the
   raw answer. Never a guessed label.

Only the last :data:`TAIL_CHARS` characters of an answer are read, so parsing costs the same
for a 10 MB answer as for a 4 kB one. :class:`~vibe_jet_tagging.tagging.parser.JetLabelParser`
is the same reading as a LangChain output parser.
"""

from .answer import (
    PARSER_VERSION,
    NoDecisionError,
    ParsedLabel,
    ParseStep,
    parse_label,
    read_answer,
    read_label,
    reask_messages,
    regex_label,
    validate_answer,
)
from .errors import ContradictionError, LabelParseError, ParseErrorKind, TruncatedAnswerError
from .prose import TAIL_CHARS
from .reader import prose_decision
from .schema import (
    COMPACT_LABEL_REGEX,
    DIGIT_LABELS,
    SCHEMA_VERSION,
    JetLabel,
    Label,
    format_instructions,
    label_response_format,
)

__all__ = [
    "COMPACT_LABEL_REGEX",
    "DIGIT_LABELS",
    "PARSER_VERSION",
    "SCHEMA_VERSION",
    "TAIL_CHARS",
    "ContradictionError",
    "JetLabel",
    "Label",
    "LabelParseError",
    "NoDecisionError",
    "ParseErrorKind",
    "ParseStep",
    "ParsedLabel",
    "TruncatedAnswerError",
    "format_instructions",
    "label_response_format",
    "parse_label",
    "prose_decision",
    "read_answer",
    "read_label",
    "reask_messages",
    "regex_label",
    "validate_answer",
]
