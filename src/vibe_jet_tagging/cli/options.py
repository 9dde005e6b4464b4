"""The options the commands share, each with its help text and environment variable.

Help is plain text (click's, see ``app.py``): no markup, a ``[`` is a ``[``. Flags have one
name (``--balanced``, no ``--no-balanced``), so help shows them without a type or default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

JetsArg = Annotated[
    str,
    typer.Argument(help="An EnergyFlow-format .npz file, a folder of QG_jets*.npz, or 'sample'."),
]
BaseUrl = Annotated[
    list[str] | None,
    typer.Option(
        help="The vLLM server; repeat it for several servers of the same model, each request "
        "going to the least busy [env VJT_BASE_URL or OPENAI_BASE_URL, comma-separated]."
    ),
]
Model = Annotated[str | None, typer.Option(help="Served model name [env VJT_MODEL].")]
Effort = Annotated[
    str | None,
    typer.Option(
        "--effort",
        "--reasoning-effort",
        help="Reasoning effort: low, medium or high [env VJT_EFFORT].",
    ),
]
Template = Annotated[
    str | None, typer.Option(help="Prompt template name or YAML path [env VJT_TEMPLATE].")
]
Shots = Annotated[int | None, typer.Option(help="Few-shot examples (overrides the template).")]
Concurrency = Annotated[
    int | None, typer.Option(help="Requests in flight at once [env VJT_CONCURRENCY].")
]
Limit = Annotated[int | None, typer.Option(help="Tag only this many jets.")]
Balanced = Annotated[
    bool,
    typer.Option(
        "--balanced", help="With --limit: a seeded balanced quark/gluon subset, not the first N."
    ),
]
Shard = Annotated[
    str | None,
    typer.Option(
        help="K/N: tag only part K of N (K from 0): disjoint contiguous parts that together "
        "cover the jets, e.g. one per Slurm array task (--shard $SLURM_ARRAY_TASK_ID/N)."
    ),
]
Seed = Annotated[int | None, typer.Option(help="Seed of the model, the examples and subsets.")]
Emulate = Annotated[
    bool,
    typer.Option(
        "--emulate",
        help="Start the built-in emulated vLLM server (a physics heuristic, not an LLM).",
    ),
]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the cache.")]
Refresh = Annotated[bool, typer.Option("--refresh", help="Ask again even for cached jets.")]
SharedCache = Annotated[
    bool,
    typer.Option(
        "--shared-cache",
        help="Use the cache folder although others can write to it (another user's, group- "
        "or world-writable, a symlink); refused otherwise [env VJT_SHARED_CACHE].",
    ),
]
MaxTokens = Annotated[
    int | None,
    typer.Option(
        help="Tokens the model may generate per request, reasoning included (default: unset, "
        "the server allows the rest of its context) [env VJT_MAX_TOKENS]."
    ),
]
Timeout = Annotated[
    float | None,
    typer.Option(help="Seconds to wait for one answer (default 600) [env VJT_TIMEOUT]."),
]
MaxRetries = Annotated[
    int | None,
    typer.Option(
        help="Retries of connection errors, timeouts, 429 and 5xx (default 4) "
        "[env VJT_MAX_RETRIES]."
    ),
]
Temperature = Annotated[
    float | None,
    typer.Option(
        help="Sampling temperature, 0 to 2 (default: the server's) [env VJT_TEMPERATURE]."
    ),
]
Trust = Annotated[
    list[Path] | None,
    typer.Option(
        "--trust",
        metavar="FILE",
        help="Take FILE's labelled rows that do not verify as yours (another user's, or an "
        "older vjt's) as imported, marked so wherever they are used; and take FILE even if "
        "others can write it. Repeatable.",
    ),
]
"""Results files the user trusts explicitly (``vjt tag``, ``vjt cache import``)."""
