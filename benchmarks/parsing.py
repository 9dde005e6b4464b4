"""Parsing cost: huge and adversarial answers, and typical ones.

    python benchmarks/parsing.py [--quick]

The answer parser reads at most the answer's last ``TAIL_CHARS`` (4,096) characters, so an
answer of any length costs at most what its tail costs. Measured here:

1. ``huge``: ``read_label`` on answers of 8 kB (issue 11: 8 kB of newlines took 5.5 s with
   the earlier regexes), 1 MB and 10 MB made of adversarial fillers (newlines, "answer is ",
   "1 ", "quark or ", "not ", "I'd say ", "{"...), each without and with a decision at the
   end; the slowest filler per size is the figure that counts.
2. ``scaling``: the reader's walk (:mod:`~vibe_jet_tagging.tagging.parsing.reader`) without
   the tail bound, on 4 kB, 16 kB and 64 kB of each filler: the time grows in proportion to
   the length (linear), not its square.
3. ``typical``: the emulated server's answer styles (JSON, "Final answer: 0", the hedged
   style...), microseconds per answer.

No server is involved: this is the parser alone, on this process's CPU.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable
from typing import Any

from _common import parser, save, table

from vibe_jet_tagging.tagging.parsing import TAIL_CHARS, LabelParseError, read_label
from vibe_jet_tagging.tagging.parsing.reader import read as read_statements

FILLERS = [
    "\n",
    " ",
    "answer is ",
    "**",
    "1 ",
    "quark or ",
    "not ",
    "I'd say ",
    "so, ",
    "the jet is a ",
    "quark-",
    "a ",
    ". ",
    "0, ",
    "{",
    "quark probability ",
    "it's ",
    "n't ",
    "x",
    '{"',
    "e.g. answer: quark ",
    '"answer: 1" ',
    "maybe ",
    "\\boxed{1} ",
]
ENDINGS = ["", "\nFinal answer: gluon"]
TYPICAL = [
    '{"label": "gluon", "quark_probability": 0.23}',
    '```json\n{"label": "quark", "quark_probability": 0.71}\n```\nBased mainly on the '
    "31 constituents.",
    "The jet has 40 constituents.\n\nFinal answer: 0",
    "**Quark**",
    "The jet has 40 constituents and a girth of 0.045, so the answer is 1.",
    "A gluon (0) is not excluded: the width alone would give it about 0.35. But with 40 "
    "constituents against about 54 typical for a gluon, I'll go with quark: 1",
    "I am not sure whether this is a quark or a gluon jet.",
]


def seconds(call: Callable[[], Any], repeat: int) -> float:
    """Median wall time of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def read(text: str) -> None:
    with contextlib.suppress(LabelParseError):
        read_label(text, "stop")


def _no_json(text: str) -> tuple[str, float | None]:
    raise ValueError("not validated here")


def walk(text: str) -> None:
    """The reader's walk over all of ``text`` (no tail cut, JSON not validated)."""
    read_statements(text, _no_json)


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    sizes = [8_000, 1_000_000] if args.quick else [8_000, 1_000_000, 10_000_000]
    repeat = 3 if args.quick else 7

    huge: list[dict[str, Any]] = []
    for size in sizes:
        for filler in FILLERS:
            body = filler * (size // len(filler))
            for ending in ENDINGS:
                text = body + ending
                huge.append(
                    {
                        "size": len(text),
                        "filler": filler,
                        "decision_at_end": bool(ending),
                        "ms": seconds(lambda t=text: read(t), repeat) * 1e3,
                    }
                )
    worst = []
    for size in sizes:
        of_size = [r for r in huge if r["size"] // 1000 == size // 1000]
        worst.append(max(of_size, key=lambda r: r["ms"]))
    rows = [
        [f"{r['size']:,} chars", repr(r["filler"]), r["decision_at_end"], r["ms"]] for r in worst
    ]
    print("1. huge answers: the slowest filler per size")
    print(table(["answer", "slowest filler", "decision at end", "ms per answer"], rows))

    scaling: list[dict[str, Any]] = []
    lengths = [4096, 16384, 65536]
    for filler in FILLERS:
        row: dict[str, Any] = {"filler": filler}
        for n in lengths:
            # The walk itself on n characters (read_label would cut them to TAIL_CHARS).
            texts = [(filler * n)[:n] + ending for ending in ENDINGS]
            row[f"ms_{n}"] = max(seconds(lambda t=t: walk(t), repeat) for t in texts) * 1e3
        row["ratio_64k_4k"] = row["ms_65536"] / max(row["ms_4096"], 1e-9)
        scaling.append(row)
    print("\n2. the reader's walk without its bound: time vs length (16x the length)")
    columns = ["ms_4096", "ms_16384", "ms_65536", "ratio_64k_4k"]
    rows = [[repr(r["filler"]), *(r[c] for c in columns)] for r in scaling]
    print(table(["filler", "4 kB ms", "16 kB ms", "64 kB ms", "64k / 4k"], rows))

    typical = [
        {"answer": text[:48], "us": seconds(lambda t=text: read(t), 200) * 1e6} for text in TYPICAL
    ]
    print("\n3. typical answers")
    print(table(["answer", "us per answer"], [[r["answer"], r["us"]] for r in typical]))

    ratios = sorted(r["ratio_64k_4k"] for r in scaling)
    summary = {
        "tail_chars": TAIL_CHARS,
        "slowest_ms_by_size": {str(r["size"]): r["ms"] for r in worst},
        "scaling_ratio_64k_over_4k_median": statistics.median(ratios),
        "scaling_ratio_64k_over_4k_max": ratios[-1],
        "typical_us_max": max(r["us"] for r in typical),
    }
    print(f"\nsummary: {summary}")
    path = save(
        "parsing",
        {"sizes": sizes, "repeat": repeat, "fillers": FILLERS, "endings": ENDINGS},
        huge,
        scaling=scaling,
        typical=typical,
        summary=summary,
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
