"""Jets: validated constituents, physics observables and a content key.

A jet is an ``(n, 4)`` float64 array of constituents with columns
``(pt [GeV], rapidity y, azimuth phi, PDG id)``, sorted by pt, highest first. This is the
layout of the EnergyFlow quark/gluon data set, whose rows with ``pt == 0`` are padding.

Observables are computed on zero-padded batches ``(N, M, 4)`` at once
(:func:`jet_observables`); :class:`Jet` computes them for one jet with the same code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "OBSERVABLES",
    "Jet",
    "JetLike",
    "jet_observables",
    "wrap_phi",
]

PT, Y, PHI, PID = 0, 1, 2, 3

# Masses [GeV] of the stable final-state particles Pythia leaves (PDG 2024), by |PDG id|.
# Anything else (or a PDG id of 0, when the id was dropped) counts as massless.
_MASSES = {
    11: 0.000511,
    13: 0.105658,
    22: 0.0,
    111: 0.134977,
    130: 0.497611,
    211: 0.139570,
    310: 0.497611,
    321: 0.493677,
    2112: 0.939565,
    2212: 0.938272,
    3112: 1.197449,
    3122: 1.115683,
    3222: 1.189370,
    3312: 1.321710,
    3322: 1.314860,
    3334: 1.672450,
}
# Electrically charged among them (the sign of the PDG id carries the sign of the charge).
_CHARGED = np.array([11, 13, 211, 321, 2212, 3112, 3222, 3312, 3334], dtype=np.int64)
_MASS_IDS = np.array(sorted(_MASSES), dtype=np.int64)
_MASS_VALUES = np.array([_MASSES[i] for i in sorted(_MASSES)], dtype=np.float64)

OBSERVABLES: tuple[str, ...] = (
    "pt",
    "rapidity",
    "phi",
    "mass",
    "multiplicity",
    "charged_multiplicity",
    "girth",
    "ptd",
    "leading_fraction",
    "top3_fraction",
    "top5_fraction",
)
"""Names of the observables :func:`jet_observables` returns, in a fixed order."""

JetLike = Any
"""What :meth:`Jet.coerce` accepts: a :class:`Jet`, an ``(n, 4)`` or zero-padded ``(M, 4)``
array, or a mapping with ``pt``, ``y`` (or ``rapidity``), ``phi`` and optionally ``pdgid``."""


def wrap_phi(dphi: ArrayLike) -> NDArray[np.float64]:
    """Wrap azimuthal differences into ``(-pi, pi]``."""
    wrapped = np.pi - np.mod(np.pi - np.asarray(dphi, dtype=np.float64), 2 * np.pi)
    return wrapped


def _masses(pid: NDArray[np.float64]) -> NDArray[np.float64]:
    ids = np.abs(pid).astype(np.int64)
    pos = np.clip(np.searchsorted(_MASS_IDS, ids), 0, len(_MASS_IDS) - 1)
    return np.where(_MASS_IDS[pos] == ids, _MASS_VALUES[pos], 0.0)


def jet_observables(constituents: ArrayLike) -> dict[str, NDArray[np.float64]]:
    """Observables of a batch of zero-padded jets, shape ``(N, M, 4)`` (or one jet ``(M, 4)``).

    Rows with ``pt == 0`` are padding and ignored wherever they sit. Definitions, with
    constituents ``i`` of transverse momentum ``pt_i``, rapidity ``y_i``, azimuth ``phi_i``:

    - ``pt``, ``rapidity``, ``phi``, ``mass``: of the jet four-momentum, the sum of the
      constituents' four-momenta ``(m_T cosh y, pt cos phi, pt sin phi, m_T sinh y)`` with
      ``m_T = sqrt(pt^2 + m^2)`` and ``m`` the PDG mass of the particle (massless when the id is
      unknown or 0). ``phi`` lies in ``(-pi, pi]``.
    - ``multiplicity``: number of constituents; ``charged_multiplicity``: those with an
      electrically charged PDG id (e, mu, pi, K, p, Sigma+-, Xi-, Omega-).
    - ``girth``: ``sum_i pt_i * dR_i / pt_jet`` with ``dR_i`` the distance to the jet axis in
      ``(y, phi)``, the azimuthal difference wrapped into ``(-pi, pi]``.
    - ``ptd``: ``sqrt(sum_i pt_i^2) / sum_i pt_i``.
    - ``leading_fraction``, ``top3_fraction``, ``top5_fraction``: pt of the hardest 1, 3 or 5
      constituents over ``sum_i pt_i``.

    Returns a dict of ``(N,)`` arrays (scalars' arrays of shape ``()`` for one jet), keyed by
    :data:`OBSERVABLES`.
    """
    x = np.asarray(constituents, dtype=np.float64)
    single = x.ndim == 2
    if single:
        x = x[None]
    if x.ndim != 3 or x.shape[-1] != 4:
        raise ValueError(f"expected jets of shape (N, M, 4), got {x.shape}")
    pt, y, phi, pid = (x[..., c] for c in (PT, Y, PHI, PID))
    real = pt > 0
    pt = np.where(real, pt, 0.0)
    mt = np.sqrt(pt**2 + _masses(pid) ** 2) * real
    e = (mt * np.cosh(y)).sum(-1)
    px = (pt * np.cos(phi)).sum(-1)
    py = (pt * np.sin(phi)).sum(-1)
    pz = (mt * np.sinh(y)).sum(-1)
    jet_pt = np.hypot(px, py)
    jet_y = 0.5 * np.log((e + pz) / np.maximum(e - pz, 1e-300))
    jet_phi = np.arctan2(py, px)
    jet_mass = np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))

    dy = y - jet_y[:, None]
    dphi = wrap_phi(phi - jet_phi[:, None])
    dr = np.hypot(dy, dphi) * real
    sum_pt = pt.sum(-1)
    safe_sum = np.where(sum_pt > 0, sum_pt, 1.0)
    sorted_pt = -np.sort(-pt, axis=-1)
    charged = np.isin(np.abs(pid).astype(np.int64), _CHARGED) & real

    out = {
        "pt": jet_pt,
        "rapidity": jet_y,
        "phi": jet_phi,
        "mass": jet_mass,
        "multiplicity": real.sum(-1).astype(np.float64),
        "charged_multiplicity": charged.sum(-1).astype(np.float64),
        "girth": (pt * dr).sum(-1) / np.where(jet_pt > 0, jet_pt, 1.0),
        "ptd": np.sqrt((pt**2).sum(-1)) / safe_sum,
        "leading_fraction": sorted_pt[:, :1].sum(-1) / safe_sum,
        "top3_fraction": sorted_pt[:, :3].sum(-1) / safe_sum,
        "top5_fraction": sorted_pt[:, :5].sum(-1) / safe_sum,
    }
    if single:
        return {k: v[0] for k, v in out.items()}
    return out


def _where(index: int | None) -> str:
    return "" if index is None else f"jet {index}: "


def bad_rows(rows: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Which jets of a padded ``(k, M, 4)`` block :meth:`Jet.from_array` would refuse."""
    pt = rows[..., PT]
    pid = rows[..., PID]
    real = pt > 0
    bad: NDArray[np.bool_] = (
        ~np.isfinite(rows).all(axis=(1, 2))
        | (pt < 0).any(axis=1)
        | ~real.any(axis=1)
        | ((pid != np.round(pid)) & real).any(axis=1)
    )
    return bad


def _jet_or_error(row: Any, index: int | None) -> Jet | ValueError:
    try:
        return Jet.from_array(row, index=index)
    except ValueError as exc:
        return exc


class Jet:
    """One jet's constituents, validated and sorted by pt (highest first).

    Build one with :meth:`from_array` (an ``(n, 4)`` array, or an EnergyFlow row block whose
    ``pt == 0`` rows are padding), :meth:`from_mapping`, or :meth:`coerce` (any of these).
    The constituents array is read-only.
    """

    def __init__(self, constituents: NDArray[np.float64], *, index: int | None = None) -> None:
        """Wrap an already canonical array; use :meth:`from_array` for anything else."""
        self._constituents = constituents
        self._constituents.flags.writeable = False
        self.index = index

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_array(cls, data: ArrayLike, *, index: int | None = None) -> Jet:
        """Validate ``(n, 4)`` constituents, drop padding rows (``pt == 0``), sort by pt.

        Raises ``ValueError`` naming the problem (prefixed by ``jet {index}:`` when an index
        is given): wrong shape or column count, non-finite values, negative pt, non-integral
        PDG id, no constituents.
        """
        where = _where(index)
        if isinstance(data, np.ndarray) and data.dtype.kind == "c":
            raise ValueError(f"{where}constituents are complex numbers, not real ones")
        try:
            x = np.array(data, dtype=np.float64)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"{where}constituents are not a numeric array: {exc}") from None
        if x.ndim != 2:
            raise ValueError(
                f"{where}expected an (n, 4) array of constituents, got shape {x.shape}"
            )
        if x.shape[1] != 4:
            raise ValueError(
                f"{where}expected 4 columns (pt, y, phi, pdgid), got {x.shape[1]} columns"
            )
        if not np.isfinite(x).all():
            row = int(np.argwhere(~np.isfinite(x))[0, 0])
            raise ValueError(f"{where}non-finite value (nan or inf) in constituent row {row}")
        if (x[:, PT] < 0).any():
            row = int(np.argmax(x[:, PT] < 0))
            raise ValueError(f"{where}negative pt {x[row, PT]:g} in constituent row {row}")
        x = x[x[:, PT] > 0]
        if len(x) == 0:
            raise ValueError(f"{where}no constituents (every row has pt == 0)")
        pid = x[:, PID]
        if (pid != np.round(pid)).any():
            bad = pid[pid != np.round(pid)][0]
            raise ValueError(f"{where}PDG id must be an integer, got {bad:g}")
        x += 0.0  # turn -0.0 into 0.0 so equal jets have equal bytes
        # Sort by pt descending; ties broken by the other columns so row order never matters.
        order = np.lexsort((x[:, PID], x[:, PHI], x[:, Y], -x[:, PT]))
        return cls(np.ascontiguousarray(x[order]), index=index)

    @classmethod
    def from_rows(
        cls, rows: NDArray[np.float64], indices: Sequence[int | None] | None = None
    ) -> list[Jet | ValueError]:
        """The jets of a padded ``(k, M, 4)`` block, validated and sorted together.

        Each is the :class:`Jet` that :meth:`from_array` builds from its row block, or in its
        place the ``ValueError`` that :meth:`from_array` raises (``indices``: the jets'
        indices, for the jets and the messages). Many times faster than one call per jet.
        """
        rows = np.asarray(rows, dtype=np.float64)
        if indices is None:
            indices = [None] * len(rows)
        if rows.ndim != 3 or rows.shape[2] != 4 or rows.shape[1] == 0:
            return [_jet_or_error(row, index) for row, index in zip(rows, indices, strict=True)]
        bad = bad_rows(rows)
        pt = rows[..., PT]
        order = np.argsort(-pt, axis=-1, kind="stable")  # padding rows (pt == 0) go last
        counts = (pt > 0).sum(axis=1).tolist()
        # Equal pts are ordered by the other columns too: those few jets go one by one.
        ranked = np.take_along_axis(pt, order, axis=1)
        tied = ((ranked[:, 1:] == ranked[:, :-1]) & (ranked[:, 1:] > 0)).any(axis=1)
        alone = (bad | tied).tolist()
        block = rows + 0.0  # -0.0 turned into 0.0, as from_array does
        out: list[Jet | ValueError] = []
        for j, (n, index) in enumerate(zip(counts, indices, strict=True)):
            if alone[j]:
                out.append(_jet_or_error(rows[j], index))
                continue
            out.append(cls(block[j].take(order[j, :n], axis=0), index=index))  # a new array
        return out

    @classmethod
    def from_mapping(cls, data: Mapping[str, ArrayLike], *, index: int | None = None) -> Jet:
        """Build from columns: ``pt``, ``y`` (or ``rapidity``), ``phi``, optional ``pdgid``."""
        where = _where(index)
        try:
            y = data["y"] if "y" in data else data["rapidity"]
            given = [data["pt"], y, data["phi"]]
        except KeyError as exc:
            raise ValueError(
                f"{where}a jet mapping needs 'pt', 'y' (or 'rapidity') and 'phi'; "
                f"missing {exc.args[0]!r}"
            ) from None
        pid = data.get("pdgid", data.get("pid"))
        try:
            cols = [np.atleast_1d(np.asarray(c, dtype=np.float64)) for c in given]
            cols.append(
                np.zeros_like(cols[0])
                if pid is None
                else np.atleast_1d(np.asarray(pid, dtype=np.float64))
            )
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"{where}jet columns are not numeric: {exc}") from None
        if len({c.shape for c in cols}) != 1:
            shapes = ", ".join(str(c.shape) for c in cols)
            raise ValueError(f"{where}jet columns differ in length: {shapes}")
        return cls.from_array(np.stack(cols, axis=1), index=index)

    @classmethod
    def coerce(cls, data: JetLike, *, index: int | None = None) -> Jet:
        """Return ``data`` as a :class:`Jet`, whatever supported form it comes in."""
        if isinstance(data, Jet):
            return data
        if isinstance(data, Mapping):
            if "jet" in data:
                return cls.coerce(data["jet"], index=index)
            return cls.from_mapping(data, index=index)
        return cls.from_array(data, index=index)

    # -- data -----------------------------------------------------------------------------

    @property
    def constituents(self) -> NDArray[np.float64]:
        """The ``(n, 4)`` read-only array ``(pt, y, phi, pdgid)``, pt descending."""
        return self._constituents

    def __len__(self) -> int:
        return len(self._constituents)

    def __repr__(self) -> str:
        obs = self.observables
        where = "" if self.index is None else f"index={self.index}, "
        return (
            f"Jet({where}n={len(self)}, pt={obs['pt']:.1f} GeV, "
            f"y={obs['rapidity']:.2f}, mass={obs['mass']:.1f} GeV)"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Jet):
            return NotImplemented
        return self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    @cached_property
    def key(self) -> str:
        """Stable content hash (hex) of the canonical constituents.

        The same for any padding length or row order of the input; different when any value
        differs. The cache is keyed on it.
        """
        digest = hashlib.blake2b(self._constituents.astype("<f8").tobytes(), digest_size=16)
        return digest.hexdigest()

    # -- observables ----------------------------------------------------------------------

    @cached_property
    def observables(self) -> dict[str, float]:
        """All observables of :func:`jet_observables`, as floats."""
        return {k: float(v) for k, v in jet_observables(self._constituents).items()}

    @property
    def pt(self) -> float:
        """Transverse momentum of the jet four-momentum [GeV]."""
        return self.observables["pt"]

    @property
    def rapidity(self) -> float:
        """Rapidity of the jet four-momentum."""
        return self._axis[0]

    @property
    def phi(self) -> float:
        """Azimuth of the jet four-momentum, in ``(-pi, pi]``."""
        return self._axis[1]

    @cached_property
    def _axis(self) -> tuple[float, float]:
        """The jet's rapidity and azimuth alone, as :func:`jet_observables` computes them
        (the same operations, so the same bits): all a prompt's relative coordinates need."""
        if "observables" in self.__dict__:
            return self.observables["rapidity"], self.observables["phi"]
        x = self._constituents
        pt, y, phi = x[:, PT], x[:, Y], x[:, PHI]
        mt = np.sqrt(pt**2 + _masses(x[:, PID]) ** 2)
        e, pz = (mt * np.cosh(y)).sum(), (mt * np.sinh(y)).sum()
        px, py = (pt * np.cos(phi)).sum(), (pt * np.sin(phi)).sum()
        return float(0.5 * np.log((e + pz) / max(e - pz, 1e-300))), float(np.arctan2(py, px))

    @property
    def mass(self) -> float:
        """Invariant mass of the jet [GeV], PDG masses for the constituents."""
        return self.observables["mass"]

    @property
    def multiplicity(self) -> int:
        """Number of constituents."""
        return len(self._constituents)

    @property
    def charged_multiplicity(self) -> int:
        """Number of electrically charged constituents (by PDG id)."""
        return int(self.observables["charged_multiplicity"])

    @property
    def girth(self) -> float:
        """``sum_i pt_i dR_i / pt_jet``, dR to the jet axis."""
        return self.observables["girth"]

    @property
    def ptd(self) -> float:
        """pT dispersion ``sqrt(sum pt_i^2) / sum pt_i``."""
        return self.observables["ptd"]

    def relative_coordinates(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Constituent ``(y - y_jet, phi - phi_jet)``, the azimuth wrapped into ``(-pi, pi]``."""
        c = self._constituents
        return c[:, Y] - self.rapidity, wrap_phi(c[:, PHI] - self.phi)
