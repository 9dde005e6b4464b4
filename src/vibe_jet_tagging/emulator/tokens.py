"""The emulator's tokenizer: a simple, deterministic rule instead of the model's BPE.

A token is one of: a run of letters, a run of up to three digits, or any other single
non-space character. Whitespace belongs to the token that follows it (so the pieces of a text
join back into the text). ``"pt=15.234 GeV"`` is ``pt``, ``=``, ``15``, ``.``, ``234``,
`` GeV``: 6 tokens. The counts land near those of gpt-oss's o200k tokenizer for prose and a
little above them for number-heavy jet listings; they are exact and reproducible, which is what
token accounting tests need. (tiktoken is not used: it downloads its encoding files.)

A chat prompt is :func:`prompt_pieces`: a fixed preamble, then each message framed by four
tokens (start, role, message, end) around its text's pieces.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

__all__ = [
    "MESSAGE_OVERHEAD_TOKENS",
    "PREAMBLE_TOKENS",
    "count_tokens",
    "prompt_pieces",
    "split_tokens",
]

_TOKEN = re.compile(r"\s*(?:[^\W\d_]+|\d{1,3}|\S)")
_CORE = re.compile(r"[^\W\d_]+|\d{1,3}|\S")


def split_tokens(text: str) -> list[str]:
    """Split ``text`` into token pieces whose concatenation is ``text``."""
    pieces = _TOKEN.findall(text)
    tail = len(text) - sum(map(len, pieces))
    if tail:  # trailing whitespace sticks to the last piece
        if pieces:
            pieces[-1] += text[-tail:]
        else:
            return []
    return pieces


def count_tokens(text: str) -> int:
    """Number of tokens in ``text`` under the rule above."""
    return len(_CORE.findall(text))


PREAMBLE_TOKENS = 64
"""Fixed prompt overhead: the harmony format's system preamble."""
MESSAGE_OVERHEAD_TOKENS = 4
"""Framing tokens of each message (start, role, message, end)."""
_PREAMBLE = tuple(f"<|preamble:{i}|>" for i in range(PREAMBLE_TOKENS))


_KEEP_SPLIT = 65536  # longest message text whose split is kept


@lru_cache(maxsize=1024)
def _kept_pieces(text: str) -> tuple[str, ...]:
    return tuple(split_tokens(text))


def _content_pieces(text: str) -> Sequence[str]:
    # Prompts repeat their system message and few-shot examples: split each of them once.
    return _kept_pieces(text) if len(text) <= _KEEP_SPLIT else split_tokens(text)


def _text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and "text" in p)
    return content if isinstance(content, str) else ""


def prompt_pieces(messages: Sequence[dict[str, Any]]) -> list[str]:
    """The prompt's tokens as the emulator counts them: preamble, then each message framed.

    ``len(prompt_pieces(m))`` is the prompt's token count.
    """
    pieces: list[str] = list(_PREAMBLE)
    for message in messages:
        role = str(message.get("role", ""))
        pieces += ("<|start|>", role, "<|message|>")
        pieces += _content_pieces(_text(message.get("content")))
        pieces.append("<|end|>")
    return pieces
