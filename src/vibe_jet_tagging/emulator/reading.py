"""Reading a jet back out of a prompt, the emulated model's only "understanding".

It reads what :func:`vibe_jet_tagging.jets.formats.render_jet` writes, in every format and option:
particle lists (``1. pt=… dy=… dphi=… pid=…``), markdown tables, compact rows, observables
blocks (``constituent multiplicity: 41``, ``girth: 0.052``) and observables followed by
particles; coordinates relative to the jet axis or absolute; with or without PDG ids; capped
lists whose header states the total (``60 constituents, showing the 20 hardest``). When a
message holds several jets (examples inline), the last one is the one to tag.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = ["JetReading", "read_jet"]

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_HEADER = re.compile(r"^\W*(?P<total>\d+)\s+(?:constituents|particles)\b", re.I)
_KV = re.compile(rf"(?P<key>[A-Za-z_#]+)\s*=\s*(?P<value>{_NUM})")
_OBS = re.compile(
    rf"^\s*(?:[-*]\s*)?(?P<key>[A-Za-z][A-Za-z0-9 ()\-_]*?)\s*[:=]\s*(?P<value>{_NUM})\b"
)
_COLUMNS = {"#", "pt", "dy", "dphi", "y", "phi", "eta", "deta", "pid", "pdgid", "id", "i"}
_SEPARATOR = re.compile(r"^[\s|:\-+]+$")
_MULTIPLICITY_KEYS = (
    "constituent multiplicity",
    "multiplicity",
    "number of constituents",
    "constituents",
    "n_constituents",
)
_GIRTH_KEYS = ("girth", "width", "jet width", "jet girth")
_MAX_CONSECUTIVE_BLANKS = 1


@dataclass(frozen=True)
class JetReading:
    """What the emulated model recovered from the prompt."""

    multiplicity: int
    """Number of constituents: a stated total wins over counted rows."""
    girth: float | None
    """Width: the stated girth, else computed from the shown particles (None if unknown)."""
    shown: int
    """Particle rows read (0 for an observables-only jet)."""
    leading_pt: float | None
    """pt of the hardest shown particle [GeV], when particles are shown."""
    girth_source: str
    """"observables", "particles" or "none"."""


@dataclass
class _Block:
    start: int
    end: int
    total: int | None
    relative: bool | None
    rows: list[dict[str, float]]


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _parse_rows(lines: list[str], start: int) -> tuple[list[dict[str, float]], int]:
    """Rows of a particle listing from ``lines[start:]``; returns them and the end index."""
    rows: list[dict[str, float]] = []
    columns: list[str] | None = None
    blanks = 0
    i = start
    while i < len(lines):
        line = lines[i].strip()
        if not line:
            if rows or columns or blanks >= _MAX_CONSECUTIVE_BLANKS:
                break
            blanks += 1
            i += 1
            continue
        if "pt=" in line.replace(" ", "").lower() and "=" in line:
            row = {m["key"].lower(): float(m["value"]) for m in _KV.finditer(line)}
            if "pt" not in row:
                break
            rows.append(row)
        elif _SEPARATOR.match(line) and "|" in line:
            pass
        else:
            tokens = line.replace("|", " ").split()
            lowered = [t.lower() for t in tokens]
            if tokens and all(t in _COLUMNS for t in lowered):
                columns = lowered
            elif columns and tokens and all(_is_float(t) for t in tokens):
                if len(tokens) != len(columns):
                    break
                rows.append(dict(zip(columns, map(float, tokens), strict=True)))
            else:
                break
        i += 1
    return rows, i


def _particle_blocks(lines: list[str]) -> list[_Block]:
    blocks: list[_Block] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        header = _HEADER.search(line)
        if header:
            rows, end = _parse_rows(lines, i + 1)
            lowered = line.lower()
            relative = True if "relative" in lowered else False if "absolute" in lowered else None
            blocks.append(_Block(i, end, int(header["total"]), relative, rows))
            i = max(end, i + 1)
            continue
        if "pt=" in line.replace(" ", "").lower():  # a listing without a header line
            rows, end = _parse_rows(lines, i)
            if rows:
                blocks.append(_Block(i, end, None, None, rows))
                i = end
                continue
        i += 1
    return blocks


def _width(block: _Block) -> float | None:
    """pt-weighted mean distance of the shown particles to their axis."""
    rows = [r for r in block.rows if r.get("pt", 0.0) > 0]
    if not rows:
        return None
    pts = [r["pt"] for r in rows]
    ykey = next((k for k in ("dy", "deta", "y", "eta") if k in rows[0]), None)
    pkey = next((k for k in ("dphi", "phi") if k in rows[0]), None)
    if ykey is None or pkey is None or any(ykey not in r or pkey not in r for r in rows):
        return None
    ys = [r[ykey] for r in rows]
    phis = [r[pkey] for r in rows]
    total = sum(pts)
    relative = block.relative if block.relative is not None else ykey.startswith("d")
    if relative:  # already measured from the jet axis
        dys, dphis = ys, [_wrap(p) for p in phis]
    else:  # axis: pt-weighted centroid, azimuths taken around the hardest particle
        lead = phis[max(range(len(pts)), key=pts.__getitem__)]
        around = [_wrap(p - lead) for p in phis]
        y_axis = sum(p * y for p, y in zip(pts, ys, strict=True)) / total
        phi_axis = sum(p * a for p, a in zip(pts, around, strict=True)) / total
        dys = [y - y_axis for y in ys]
        dphis = [a - phi_axis for a in around]
    return sum(p * math.hypot(y, d) for p, y, d in zip(pts, dys, dphis, strict=True)) / total


def _wrap(dphi: float) -> float:
    return math.pi - (math.pi - dphi) % (2 * math.pi)


def _observables(lines: list[str], lo: int, hi: int) -> dict[str, float]:
    found: dict[str, float] = {}
    for line in lines[lo:hi]:
        m = _OBS.match(line)
        if not m:
            continue
        key = m["key"].strip().lower()
        if key in _MULTIPLICITY_KEYS:
            found["multiplicity"] = float(m["value"])
        elif key in _GIRTH_KEYS:
            found["girth"] = float(m["value"])
    return found


def read_jet(text: str) -> JetReading | None:
    """Recover the last jet in ``text``; None when there is no jet it can read."""
    lines = text.splitlines()
    blocks = [b for b in _particle_blocks(lines) if b.rows or b.total]
    if blocks:
        last = blocks[-1]
        after = _observables(lines, last.end, len(lines))
        if after:  # an observables-only jet follows the last listing
            block, obs = None, after
        else:
            previous_end = blocks[-2].end if len(blocks) > 1 else 0
            block, obs = last, _observables(lines, previous_end, last.start)
    else:
        block, obs = None, _observables(lines, 0, len(lines))

    multiplicity: float | None = None
    if block is not None and block.total is not None:
        multiplicity = block.total
    elif "multiplicity" in obs:
        multiplicity = obs["multiplicity"]
    elif block is not None:
        multiplicity = len(block.rows)
    girth, source = obs.get("girth"), "observables"
    if girth is None and block is not None:
        girth, source = _width(block), "particles"
    if girth is None:
        source = "none"
    if multiplicity is None or multiplicity < 1:
        return None
    pts = [r["pt"] for r in block.rows if "pt" in r] if block else []
    return JetReading(
        multiplicity=int(multiplicity),
        girth=girth,
        shown=len(block.rows) if block else 0,
        leading_pt=max(pts) if pts else None,
        girth_source=source,
    )
