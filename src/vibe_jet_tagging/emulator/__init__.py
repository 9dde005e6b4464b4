"""An emulated vLLM server serving "gpt-oss", for tests, benchmarks and demos without a GPU.

.. warning::
   **Its answers come from a physics heuristic, not from a language model.** It reads the
   jet's multiplicity and width back out of the prompt, turns them into a quark probability
   (a logistic function calibrated on the quark/gluon physics, plus seeded noise) and wraps
   that number in text shaped like gpt-oss output. Use it to exercise client code (HTTP,
   streaming, retries, concurrency, parsing, token accounting, caching), never to judge how
   well a language model tags jets.

It speaks the OpenAI-compatible HTTP API the way vLLM serves gpt-oss: ``reasoning_effort``,
the reasoning in ``message.reasoning`` (or ``reasoning_content``), usage with reasoning tokens,
``response_format`` JSON schemas, ``max_tokens`` cuts, logprobs, streaming, vLLM-shaped
errors, a bounded batch with a FIFO queue, latency, and injected faults. Start it with
:class:`EmulatedServer` (thread or subprocess), :func:`serve` (blocking) or
``vjt serve --emulate``.
"""

from .config import FAULT_KINDS, LATENCY_PRESETS, EmulatorConfig, FaultRates
from .emulated import EmulatedServer
from .server import serve

__all__ = [
    "FAULT_KINDS",
    "LATENCY_PRESETS",
    "EmulatedServer",
    "EmulatorConfig",
    "FaultRates",
    "serve",
]
