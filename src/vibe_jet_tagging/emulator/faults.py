"""Injected faults: which request gets one, and what it does to an answer.

Each valid chat request takes the next number of a per-server counter; the fault is decided by
one uniform draw from ``random.Random(f"{seed}:{number}")`` against the stacked rates of
:class:`~vibe_jet_tagging.emulator.config.FaultRates`. So N requests get exactly the same number
of faults of each kind for a given seed, whatever order they arrive in, and a retry (a new
request, a new number) can succeed where the first attempt failed.
"""

from __future__ import annotations

import random

from .config import FAULT_KINDS, FaultRates
from .model import Completion
from .tokens import split_tokens

__all__ = ["decide_fault", "malform", "malformed_body", "truncate"]


def decide_fault(rates: FaultRates, seed: int, number: int) -> str | None:
    """The fault of request ``number`` (None for no fault)."""
    if rates.total <= 0:
        return None
    u = random.Random(f"{seed}:{number}").random()
    edge = 0.0
    for kind in FAULT_KINDS:
        edge += getattr(rates, kind)
        if u < edge:
            return kind
    return None


def malform(completion: Completion) -> None:
    """Replace the answer by broken JSON: cut before the last value, or not JSON at all."""
    text = completion.content_text
    start = text.find("{")
    if start >= 0 and "}" in text[start:]:
        body = text[start : text.rindex("}") + 1]
    elif completion.label is not None:
        body = f'{{"label": "{completion.label}", "quark_probability": 0.5}}'
    else:
        body = '{"label": "'
    if completion.rng.random() < 0.5 and ": " in body:
        broken = body[: body.rindex(": ") + 2]  # {"label": "quark", "quark_probability":
    else:
        broken = body.replace('"', "'")[:-1] + ",}"  # {'label': 'quark', ...,}
    completion.content = split_tokens(broken)
    completion.decisions = {}


def truncate(completion: Completion) -> None:
    """Cut the answer to about half its tokens (the server then reports finish 'length')."""
    keep = len(completion.content) // 2
    completion.content = completion.content[:keep]
    completion.decisions = {i: t for i, t in completion.decisions.items() if i < keep}


_MALFORMED_BODIES = (
    ("<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"),
    ('{"id": "chatcmpl-1", "object": "chat.comp', "application/json"),
    ('{"object": "error", "message": "overloaded", "code": 503}', "application/json"),
    ('{"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "choices": []}',
     "application/json"),
)  # fmt: skip


def malformed_body(number: int) -> tuple[str, str]:
    """The body and content type of a ``malformed_body`` fault: HTTP 200 but no chat
    completion (an HTML page, JSON cut short, an error object, no choices), by turns."""
    return _MALFORMED_BODIES[number % len(_MALFORMED_BODIES)]
