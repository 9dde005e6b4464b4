"""Reading a label out of a model's final answer: what the model said, or nothing.

**The rule.** The label is the answer's last decision, if nothing after it takes it back. A
decision is a JSON object (validated against :class:`JetLabel`: label and probability must
agree; the label is case-insensitive, and 1/0 with ``digit_labels``), an explicit prose
decision ("Final answer: quark", "final: 1", "the label is **gluon**", "so the answer is 0",
"it is a gluon jet", "\\boxed{0}"), or a lone label or 0/1 that is a whole line (which does
not override an earlier decision of the other class). Anything after the decision that
doubts, retracts or corrects it ("not sure", "may well be", "scratch that", "that is
incorrect", a question), negates it, or names the other class voids it: no label, unless a
later explicit decision gives its own. Reasoning before the decision is never read for a
label; quoted examples (in quotation marks, or after "e.g.", "for example", "format"...)
decide nothing. Every probability stated with or after the decision ("P(quark) = 0.73")
must agree with it. 1 means quark, 0 gluon.

How that is read, and what comes back:

1. ``finish_reason == "length"``: :class:`TruncatedAnswerError`, whatever the text.
2. :mod:`.reader` walks the statements of the answer's end (JSON objects and sentences)
   from the last one back (:mod:`.prose` says what each sentence decides, doubts or names).
3. A JSON decision is validated with instructor (``schema`` step); one that fails is an
   error to re-ask with (its validation error), never searched for a label.
4. A prose decision gives the ``regex`` step, with the probability stated around it.
5. ``reask``: when reading fails, the chain asks the model once more, showing it its answer
   and the error the way instructor does (:func:`reask_messages`); only the answer to that
   is read again, never the first one.
6. Otherwise :class:`LabelParseError` (:class:`ContradictionError` when the answer's label
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
