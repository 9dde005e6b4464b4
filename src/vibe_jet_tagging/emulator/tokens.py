"""The emulator's tokenizer: a simple, deterministic rule instead of the model's BPE.

A token is one of: a run of letters, a run of up to three digits, or any other single
non-space character. Whitespace belongs to the token that follows it (so the pieces of a text
join back into the text). ``"pt=15.234 GeV"`` is ``pt``, ``=``, ``15``, ``.``, ``234``,
`` GeV``: 6 tokens. The counts land near those of gpt-oss's o200k tokenizer for prose and a
little above them for number-heavy jet listings; they are exact and reproducible, which is what
token accounting tests need. (tiktoken is not used: it downloads its encoding files.)
"""

from __future__ import annotations

import re

__all__ = ["count_tokens", "split_tokens"]

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
