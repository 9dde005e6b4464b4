"""Jet data sets: EnergyFlow quark/gluon files, folders of them, arrays and the bundled sample.

A :class:`JetDataset` is a lazy view: a source (one or more files, or an in-memory array) plus
the positions of its jets in that source. Slicing and index arrays give new views without
copying; jets are read (and validated) when asked for, in batches.

The file format is EnergyFlow's: an ``.npz`` with ``X`` of shape ``(N, M, 4)`` (float64 rows
``(pt, y, phi, pdgid)``, zero-padded: rows with ``pt == 0`` are padding wherever they sit), an
optional ``y`` of ``N`` labels (1 = quark, 0 = gluon, stored as floats) and an optional ``meta``
JSON string (written by :func:`vibe_jet_tagging.jets.generate.save_jets`). Other arrays are ignored.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .jet import Jet, jet_observables
from .npz import READ_ERRORS
from .sources import (
    ArraySource,
    NpzFolderSource,
    Source,
    check_labels,
    check_limits,
    check_shape,
    open_npz,
)

__all__ = [
    "SAMPLE_COMMAND",
    "SAMPLE_PATH",
    "JetDataset",
    "dataset_from_arrays",
    "load_jets",
    "load_sample",
]

logger = logging.getLogger(__name__)

SAMPLE_COMMAND = (
    "vjt generate --jets 4000 --seed 2026 -o src/vibe_jet_tagging/jets/assets/qg_sample.npz"
)
"""The exact command that made the bundled sample (run from the repository root)."""

SAMPLE_PATH = "jets/assets/qg_sample.npz"
"""Where the bundled sample sits inside the package."""

_FILE_RE = re.compile(r"^(QG_jets.*?)(?:_(\d+))?\.npz$")
_BATCH_BYTES = 32 << 20  # a batch of padded jets holds at most this much (unless one jet does)


# -- the data set ---------------------------------------------------------------------------


class JetDataset:
    """Jets with optional labels (1 = quark, 0 = gluon), read lazily from their source.

    ``len(ds)``; ``ds[i]`` is a validated :class:`Jet` whose ``index`` is its position in the
    source (file, folder or array); ``ds[a:b]``, ``ds[[i, j]]`` and ``ds[mask]`` are new views.
    Iterating yields :class:`Jet` objects, read in batches.
    """

    def __init__(self, source: Source, indices: NDArray[np.intp] | None = None) -> None:
        """Wrap a source; ``indices`` (positions in the source) default to all of it."""
        self._source = source
        if indices is None:
            indices = np.arange(source.n, dtype=np.intp)
        self._indices = np.asarray(indices, dtype=np.intp)
        self._indices.flags.writeable = False
        self._labels: NDArray[np.int8] | None = None
        if source.labels is not None:
            self._labels = source.labels[self._indices]
            self._labels.flags.writeable = False

    # -- description ------------------------------------------------------------------------

    @property
    def source(self) -> str:
        """The path the jets came from, or ``"sample"`` / ``"array"``."""
        return self._source.name

    @property
    def labels(self) -> NDArray[np.int8] | None:
        """Labels (1 = quark, 0 = gluon) as a read-only int8 array, or None if unlabelled."""
        return self._labels

    @property
    def indices(self) -> NDArray[np.intp]:
        """Positions of the jets in the source (read-only)."""
        return self._indices

    @property
    def metadata(self) -> dict[str, Any] | None:
        """The file's ``meta`` JSON (generation settings); ``{"files": [...]}`` for a folder."""
        return self._source.metadata

    @property
    def width(self) -> int:
        """``M``, the padded number of constituent rows per jet."""
        return self._source.width

    def __len__(self) -> int:
        return len(self._indices)

    def __repr__(self) -> str:
        n = len(self)
        size = f"{n} jets" if n == self._source.n else f"{n} of {self._source.n} jets"
        if self._labels is not None:
            nq = int(self._labels.sum())
            size += f": {nq} quark, {n - nq} gluon"
        else:
            size += ", unlabelled"
        return f"JetDataset({size}; source={self.source!r})"

    # -- indexing ---------------------------------------------------------------------------

    @overload
    def __getitem__(self, key: int | np.integer[Any]) -> Jet: ...
    @overload
    def __getitem__(self, key: slice | Sequence[int] | NDArray[Any]) -> JetDataset: ...

    def __getitem__(self, key: Any) -> Jet | JetDataset:
        """A :class:`Jet` for an integer; a new view for a slice, index array or boolean mask."""
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            i = int(key)
            if not -len(self) <= i < len(self):
                raise IndexError(f"jet {i} out of range for a data set of {len(self)} jets")
            return self._jets(self._indices[[i]])[0]
        if isinstance(key, slice):
            return JetDataset(self._source, self._indices[key])
        arr = np.asarray(key)
        if arr.dtype == bool:
            if arr.shape != (len(self),):
                raise IndexError(f"boolean mask of shape {arr.shape} for {len(self)} jets")
            return JetDataset(self._source, self._indices[arr])
        if arr.size == 0:
            return JetDataset(self._source, self._indices[:0])
        if arr.dtype.kind not in "iu" or arr.ndim != 1:
            raise TypeError(
                f"index a JetDataset with an int, slice, int array or mask, not {key!r}"
            )
        if arr.max() >= len(self) or arr.min() < -len(self):
            raise IndexError(f"index out of range for a data set of {len(self)} jets")
        return JetDataset(self._source, self._indices[arr])

    def _jets(self, positions: NDArray[np.intp]) -> list[Jet]:
        """Validated jets at source ``positions``, each knowing its position."""
        jets = []
        for jet in self.read_jets(positions):
            if isinstance(jet, ValueError):
                raise jet
            jets.append(jet)
        return jets

    def read_jets(self, positions: NDArray[np.intp]) -> list[Jet | ValueError]:
        """The jets at source ``positions``, or the error saying why one cannot be read."""
        rows = self._source.read(positions, validate=False)
        out = Jet.from_rows(rows, positions.tolist())
        for j, jet in enumerate(out):
            if isinstance(jet, ValueError):  # said again with the file and its index there
                prefix, local = self._source.locate(int(positions[j]))
                try:
                    Jet.from_array(rows[j], index=local)
                except ValueError as exc:
                    out[j] = ValueError(f"{prefix}{exc}")
        return out

    def __iter__(self) -> Iterator[Jet]:
        for batch in self.iter_batches(1024, as_jets=True):
            yield from batch

    def jets_or_errors(self, size: int = 1024) -> Iterator[Jet | ValueError]:
        """Every jet in order, or in its place the ``ValueError`` saying why it is invalid.

        Unlike iterating, a jet with bad data (a NaN, a negative pt, no constituents) does not
        stop the others. The errors name the file and the jet.
        """
        step = self._batch_size(size)
        for start in range(0, len(self), step):
            yield from self.read_jets(self._indices[start : start + step])

    # -- batches and arrays -----------------------------------------------------------------

    def _batch_size(self, size: int) -> int:
        """``size``, or fewer jets when that many padded jets would pass :data:`_BATCH_BYTES`."""
        if size < 1:
            raise ValueError(f"batch size must be >= 1, got {size}")
        return max(1, min(size, _BATCH_BYTES // max(self.width * 32, 1)))

    @overload
    def iter_batches(
        self, size: int = ..., *, as_jets: Literal[False] = ...
    ) -> Iterator[NDArray[np.float64]]: ...
    @overload
    def iter_batches(self, size: int = ..., *, as_jets: Literal[True]) -> Iterator[list[Jet]]: ...

    def iter_batches(
        self, size: int = 4096, *, as_jets: bool = False
    ) -> Iterator[NDArray[np.float64]] | Iterator[list[Jet]]:
        """Consecutive batches of at most ``size`` jets, in order.

        Padded ``(k, M, 4)`` float64 arrays (validated), or lists of :class:`Jet` when
        ``as_jets``. A batch of very wide jets (large ``M``) holds fewer than ``size``, so that
        it stays under 32 MB. Jets from files are decompressed as the batches reach them.
        """
        step = self._batch_size(size)
        for start in range(0, len(self), step):
            positions = self._indices[start : start + step]
            yield self._jets(positions) if as_jets else self._source.read(positions)

    def padded(self) -> NDArray[np.float64]:
        """All jets as one in-memory ``(N, M, 4)`` float64 array (zero-padded, validated)."""
        if len(self) == 0:
            return np.zeros((0, self.width, 4), dtype=np.float64)
        return np.concatenate(list(self.iter_batches(65536)))

    to_numpy = padded

    def jets(self) -> list[Jet]:
        """All jets as a list of :class:`Jet`."""
        return list(self)

    def observables(self, batch_size: int = 8192) -> dict[str, NDArray[np.float64]]:
        """:func:`~vibe_jet_tagging.jets.jet_observables` of every jet: dict of ``(N,)`` arrays."""
        parts = [jet_observables(b) for b in self.iter_batches(batch_size)]
        if not parts:
            return {k: np.zeros(0) for k in jet_observables(np.zeros((1, 1, 4)))}
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    # -- subsets ----------------------------------------------------------------------------

    def balanced(self, n: int, seed: int = 0) -> JetDataset:
        """A seeded random subset of ``n / 2`` quark and ``n / 2`` gluon jets, in data-set order.

        Subsets with the same seed nest: ``balanced(120, s)`` holds every jet of
        ``balanced(100, s)`` (each kind is taken from the front of one seeded shuffle), so a
        subset can grow without losing the jets already tagged. Raises ``ValueError`` when
        ``n`` is odd or not positive, the jets are unlabelled, or there are fewer than
        ``n / 2`` jets of either kind.
        """
        if self._labels is None:
            raise ValueError(f"{self.source}: cannot balance unlabelled jets")
        if n < 2 or n % 2:
            raise ValueError(f"a balanced subset needs an even number of jets >= 2, got {n}")
        half = n // 2
        chosen = []
        for label, name in ((1, "quark"), (0, "gluon")):
            pool = np.flatnonzero(self._labels == label)
            if len(pool) < half:
                raise ValueError(
                    f"{self.source}: asked for {half} {name} jets but there are only {len(pool)}"
                )
            order = np.random.default_rng([seed, label]).permutation(len(pool))
            chosen.append(pool[order[:half]])
        return JetDataset(self._source, self._indices[np.sort(np.concatenate(chosen))])

    def shard(self, k: int, n: int) -> JetDataset:
        """Part ``k`` (0-based) of ``n`` contiguous, near-equal parts of this data set.

        The ``n`` parts are disjoint and together hold every jet once, in order; the same
        ``(k, n)`` always gives the same jets. Contiguous parts let each task of an array job
        (``k = $SLURM_ARRAY_TASK_ID``) read only its own stretch of the files.
        """
        if n < 1 or not 0 <= k < n:
            raise ValueError(f"shard {k} of {n}: need n >= 1 and 0 <= k < n")
        size = len(self)
        return self[k * size // n : (k + 1) * size // n]

    def head(self, n: int) -> JetDataset:
        """The first ``n`` jets (all of them if fewer)."""
        return self[: max(int(n), 0)]


# -- loading --------------------------------------------------------------------------------


def _natural_key(name: str) -> list[str | int]:
    """Sort key putting ``QG_jets.npz`` before ``QG_jets_1.npz`` before ``QG_jets_10.npz``."""
    parts: list[str | int] = re.split(r"(\d+)", name)
    for i in range(1, len(parts), 2):
        parts[i] = int(parts[i])
    return parts


def _folder_files(folder: Path) -> list[Path]:
    """The ``QG_jets*.npz`` files of one data set in ``folder``, in natural order."""
    files = sorted(
        (p for p in folder.iterdir() if p.is_file() and _FILE_RE.match(p.name)),
        key=lambda p: _natural_key(p.name),
    )
    if not files:
        raise FileNotFoundError(f"{folder}: no QG_jets*.npz files in this folder")
    families = sorted({_FILE_RE.match(p.name).group(1) for p in files})  # type: ignore[union-attr]
    if len(families) > 1:
        raise ValueError(
            f"{folder}: holds several data sets ({', '.join(families)}); they must not be "
            "mixed: pass one file, or a folder with one data set"
        )
    return files


def load_jets(path: str | os.PathLike[str]) -> JetDataset:
    """Open an EnergyFlow-format ``.npz``, a folder of ``QG_jets*.npz`` files, or a ``.npy``.

    Only the labels and array headers are read now, and the sizes the headers declare are
    checked against the file (a forged or absurd shape is refused before anything is
    decompressed). ``X`` is decompressed in blocks as jets are read, so memory follows the
    batch read, not the file (a folder of 2 million jets, or a decompression bomb, is never
    loaded at once).
    Folder files are taken in natural order (``QG_jets.npz``, ``QG_jets_1.npz``, ...,
    ``QG_jets_19.npz``) and may differ in ``M``. A ``.npy`` holds ``X`` only (memory-mapped,
    unlabelled). Never downloads anything.

    Raises ``FileNotFoundError`` for a missing path and ``ValueError`` for a malformed file,
    both naming the file (and the jet for a bad label).
    """
    p = Path(path)
    if p.is_dir():
        offset = 0
        files = []
        for f in _folder_files(p):
            files.append(open_npz(f, offset))
            offset += files[-1].n
        logger.info("opened %s: %d files, %d jets", p, len(files), offset)
        return JetDataset(NpzFolderSource(files, str(p)))
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or folder")
    if p.suffix == ".npy":
        try:
            X = np.load(p, mmap_mode="r", allow_pickle=False)
        except READ_ERRORS as exc:
            raise ValueError(f"{p}: not a readable .npy file ({exc})") from None
        check_shape(X.shape, X.dtype, f"{p}: ")
        check_limits(X.shape, f"{p}: ")
        return JetDataset(ArraySource(X, None, str(p), prefix=f"{p}: "))
    return JetDataset(NpzFolderSource([open_npz(p, 0)], str(p)))


def _stack_jets(jets: Sequence[ArrayLike]) -> NDArray[np.float64]:
    """Zero-pad a list of ``(n_i, 4)`` arrays into ``(N, max n_i, 4)``."""
    arrays = []
    for i, j in enumerate(jets):
        try:
            arrays.append(np.asarray(j, dtype=np.float64))
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"jet {i}: not a numeric array: {exc}") from None
    for i, a in enumerate(arrays):
        if a.ndim != 2 or a.shape[1] != 4:
            raise ValueError(f"jet {i}: expected an (n, 4) array, got shape {a.shape}")
    out = np.zeros((len(arrays), max((len(a) for a in arrays), default=0), 4))
    for i, a in enumerate(arrays):
        out[i, : len(a)] = a
    return out


def dataset_from_arrays(
    X: ArrayLike | Sequence[ArrayLike], y: ArrayLike | None = None, *, name: str = "array"
) -> JetDataset:
    """A data set over in-memory jets: an ``(N, M, 4)`` array or a list of ``(n_i, 4)`` arrays.

    ``y`` holds labels 1 (quark) / 0 (gluon), as ints, bools or floats. Shapes and labels are
    checked now; each jet when read.
    """
    try:
        if isinstance(X, (list, tuple)) and X and np.ndim(X[0]) == 2:
            try:
                arr = np.asarray(X, dtype=np.float64)
            except ValueError:  # ragged: different numbers of constituents
                arr = _stack_jets(X)
        else:
            arr = np.asarray(X, dtype=np.float64)
    except (TypeError, OverflowError) as exc:
        raise ValueError(f"X is not a numeric array: {exc}") from None
    check_shape(arr.shape, arr.dtype, "")
    labels = None if y is None else check_labels(y, arr.shape[0], "")
    return JetDataset(ArraySource(arr, labels, name))


def load_sample() -> JetDataset:
    """The bundled sample: 2,000 quark and 2,000 gluon jets (made by :data:`SAMPLE_COMMAND`).

    Generated with this package's Pythia 8 + FastJet recipe (see
    :mod:`vibe_jet_tagging.jets.generate`); ``source`` is ``"sample"``, ``metadata`` its settings.
    """
    resource = resources.files("vibe_jet_tagging").joinpath(SAMPLE_PATH)
    try:
        data = resource.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"the bundled sample {SAMPLE_PATH} is missing from the package; make it with "
            f"`{SAMPLE_COMMAND}`"
        ) from None
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        X, y = npz["X"], npz["y"]
        meta = json.loads(str(npz["meta"])) if "meta" in npz.files else None
    check_shape(X.shape, X.dtype, "sample: ")
    labels = check_labels(y, X.shape[0], "sample: ")
    return JetDataset(ArraySource(X, labels, "sample", prefix="sample: ", metadata=meta))
