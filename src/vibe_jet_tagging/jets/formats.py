"""Jets rendered as text for a prompt.

Five formats, each with the same options (:class:`JetFormat`):

- ``particles``: one line per constituent, ``pt=… y=… phi=… pid=…``
- ``table``: a markdown table
- ``compact``: whitespace-separated rows under a one-line header
- ``observables``: the jet's observables only, one ``name: value`` per line
- ``observables+particles``: the observables, then the particle list

Every format that shows particles starts with a line stating the total number of
constituents and, when capped, how many are shown. The cap defaults to
:data:`DEFAULT_MAX_PARTICLES`, more than a quark or gluon jet at LHC energies has, so that a
malformed jet of a million constituents never makes a prompt of a million lines.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .jet import PHI, PID, PT, Jet, Y

__all__ = ["DEFAULT_MAX_PARTICLES", "FORMAT_NAMES", "FormatName", "JetFormat", "render_jet"]

FormatName = Literal["particles", "table", "compact", "observables", "observables+particles"]
FORMAT_NAMES: tuple[str, ...] = FormatName.__args__  # type: ignore[attr-defined]

DEFAULT_MAX_PARTICLES = 200
"""Particles shown per jet unless a format says otherwise (part of the prompt's fingerprint)."""

# Observables shown to the model, with their printed names and units.
_OBSERVABLE_LINES = (
    ("pt", "jet pt", "GeV"),
    ("rapidity", "jet rapidity", ""),
    ("mass", "jet mass", "GeV"),
    ("multiplicity", "constituent multiplicity", ""),
    ("charged_multiplicity", "charged multiplicity", ""),
    ("girth", "girth", ""),
    ("ptd", "pT dispersion (pTD)", ""),
    ("leading_fraction", "leading constituent pt fraction", ""),
    ("top3_fraction", "top-3 constituents pt fraction", ""),
    ("top5_fraction", "top-5 constituents pt fraction", ""),
)
_INTEGER_OBSERVABLES = {"multiplicity", "charged_multiplicity"}
_PDGID_ONLY = {"charged_multiplicity"}  # needs the PDG id to be known


class JetFormat(BaseModel):
    """How a jet is written into a prompt."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: FormatName = "particles"
    decimals: int = Field(3, ge=0, le=8, description="decimals of every real number")
    relative: bool = Field(
        True, description="coordinates relative to the jet axis (dy, dphi) instead of (y, phi)"
    )
    pdgid: bool = Field(
        False,
        description="show the PDG id of each particle (generator truth a detector does not give)",
    )
    max_particles: int | None = Field(
        DEFAULT_MAX_PARTICLES,
        ge=1,
        description="show at most this many (hardest) particles, stating the total; None: all",
    )

    def render(self, jet: Jet) -> str:
        """Render ``jet`` in this format."""
        return render_jet(jet, self)


def _particle_columns(jet: Jet, fmt: JetFormat) -> tuple[list[str], list[list[str]], str]:
    names, header, rows = _columns(jet, fmt)
    spec = f".{fmt.decimals}f"
    cells = [[format(v, spec) for v in row] for row in rows]
    if fmt.pdgid:
        pids = jet.constituents[: len(rows), PID].tolist()
        cells = [[*row, str(int(pid))] for row, pid in zip(cells, pids, strict=True)]
        return [*names, "pid"], cells, header
    return list(names), cells, header


def _observables_text(jet: Jet, fmt: JetFormat) -> str:
    obs = jet.observables
    d = fmt.decimals
    lines = []
    for key, label, unit in _OBSERVABLE_LINES:
        if key in _PDGID_ONLY and not fmt.pdgid:
            continue
        value = f"{int(obs[key])}" if key in _INTEGER_OBSERVABLES else f"{obs[key]:.{d}f}"
        lines.append(f"{label}: {value}{' ' + unit if unit else ''}")
    return "\n".join(lines)


def _columns(
    jet: Jet, fmt: JetFormat
) -> tuple[tuple[str, str, str], str, list[tuple[float, float, float]]]:
    """The names, header and ``(pt, y or dy, phi or dphi)`` rows (Python floats) of the
    particles shown, without ``pdgid``."""
    c = jet.constituents
    shown = c if fmt.max_particles is None else c[: fmt.max_particles]
    if fmt.relative:
        dy, dphi = jet.relative_coordinates()
        ys, phis = dy[: len(shown)], dphi[: len(shown)]
        names = ("pt", "dy", "dphi")
    else:
        ys, phis = shown[:, Y], shown[:, PHI]
        names = ("pt", "y", "phi")
    n, m = len(c), len(shown)
    frame = "relative to the jet axis" if fmt.relative else "absolute"
    if m < n:
        header = f"{n} constituents, showing the {m} hardest (pt in GeV, coordinates {frame}):"
    else:
        header = f"{n} constituents, hardest first (pt in GeV, coordinates {frame}):"
    rows = list(zip(shown[:, PT].tolist(), ys.tolist(), phis.tolist(), strict=True))
    return names, header, rows


def _particle_lines(jet: Jet, fmt: JetFormat) -> str:
    """The ``particles`` format without ``pdgid``, one format string per line: the same text
    as the general path below at a third of its CPU (the prompt of every jet asked)."""
    names, header, rows = _columns(jet, fmt)
    d = fmt.decimals
    line = f"{{}}. {names[0]}={{:.{d}f}} {names[1]}={{:.{d}f}} {names[2]}={{:.{d}f}}".format
    return "\n".join([header, *(line(i, *row) for i, row in enumerate(rows, 1))])


def _compact_lines(jet: Jet, fmt: JetFormat) -> str:
    """The ``compact`` format without ``pdgid``, one format string per line (the same text as
    the general path below)."""
    names, header, rows = _columns(jet, fmt)
    d = fmt.decimals
    line = f"{{:.{d}f}} {{:.{d}f}} {{:.{d}f}}".format
    return "\n".join([header, " ".join(names), *(line(*row) for row in rows)])


def render_jet(jet: Jet, fmt: JetFormat | None = None) -> str:
    """Render ``jet`` as text in format ``fmt`` (default: particle list)."""
    fmt = fmt or JetFormat()
    if fmt.name == "observables":
        return _observables_text(jet, fmt)
    if fmt.name == "particles" and not fmt.pdgid:
        return _particle_lines(jet, fmt)
    if fmt.name == "compact" and not fmt.pdgid:
        return _compact_lines(jet, fmt)
    return _render_columns(jet, fmt)


def _render_columns(jet: Jet, fmt: JetFormat) -> str:
    """Every particle format, from the columns of :func:`_particle_columns` (the reference
    the one-format-string-per-line paths are tested against)."""
    names, rows, header = _particle_columns(jet, fmt)
    if fmt.name == "table":
        lines = [header, "| # | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        lines += [f"| {i} | " + " | ".join(r) + " |" for i, r in enumerate(rows, 1)]
    elif fmt.name == "compact":
        lines = [header, " ".join(names)] + [" ".join(r) for r in rows]
    else:
        lines = [header] + [
            f"{i}. " + " ".join(f"{k}={v}" for k, v in zip(names, r, strict=True))
            for i, r in enumerate(rows, 1)
        ]
    text = "\n".join(lines)
    if fmt.name == "observables+particles":
        text = _observables_text(jet, fmt) + "\n\n" + text
    return text
