"""Jet data sets: EnergyFlow quark/gluon files, folders of them, arrays and the bundled sample.

A :class:`JetDataset` is a lazy view: a source (one or more files, or an in-memory array) plus
the positions of its jets in that source. Slicing and index arrays give new views without
copying; jets are read (and validated) when asked for, in batches.

The file format is EnergyFlow's: an ``.npz`` with ``X`` of shape ``(N, M, 4)`` (float64 rows
``(pt, y, phi, pdgid)``, zero-padded: rows with ``pt == 0`` are padding wherever they sit), an
optional ``y`` of ``N`` labels (1 = quark, 0 = gluon, stored as floats) and an optional ``meta``
JSON string (written by :func:`vibe_jet_tagging.generate.save_jets`). Other arrays are ignored.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import threading
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .jets import PID, PT, Jet, jet_observables

__all__ = [
    "SAMPLE_COMMAND",
    "SAMPLE_PATH",
    "JetDataset",
    "dataset_from_arrays",
    "load_jets",
    "load_sample",
]

logger = logging.getLogger(__name__)

SAMPLE_COMMAND = "vjt generate --jets 4000 --seed 2026 -o src/vibe_jet_tagging/assets/qg_sample.npz"
"""The exact command that made the bundled sample (run from the repository root)."""

SAMPLE_PATH = "assets/qg_sample.npz"
"""Where the bundled sample sits inside the package."""

_CACHE_FILES = 2  # decompressed X arrays kept in memory per folder (~450 MB each for EnergyFlow)
_FILE_RE = re.compile(r"^(QG_jets.*?)(?:_(\d+))?\.npz$")
_BAD_NPZ = (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, KeyError)


# -- sources ------------------------------------------------------------------------------


def _check_labels(y: Any, n: int, where: str) -> NDArray[np.int8]:
    """Labels as int8 after checking their shape and that each is 0 or 1."""
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"{where}y has shape {y.shape} but X has {n} jets (expected ({n},))")
    if y.dtype.kind not in "biuf":
        raise ValueError(f"{where}labels must be numbers (1 = quark, 0 = gluon), got {y.dtype}")
    ok = (y == 0) | (y == 1)
    if not ok.all():
        i = int(np.argmin(ok))
        raise ValueError(f"{where}jet {i}: label {y[i].item()!r} is not 1 (quark) or 0 (gluon)")
    return y.astype(np.int8)


def _check_shape(shape: tuple[int, ...], dtype: np.dtype[Any], where: str) -> None:
    """Check that ``X`` is a numeric ``(N, M, 4)`` array."""
    if len(shape) != 3 or shape[2] != 4:
        raise ValueError(
            f"{where}X must have shape (N, M, 4) with columns (pt, y, phi, pdgid), got {shape}"
        )
    if dtype.kind not in "iuf":
        raise ValueError(f"{where}X must hold numbers, got dtype {dtype}")


def _check_rows(rows: NDArray[np.float64], positions: NDArray[np.intp], where: str) -> None:
    """Validate a batch of padded jets; on a bad one raise what :meth:`Jet.from_array` says.

    ``positions`` are the jets' indices in the file (for the message), ``where`` its prefix.
    """
    pt = rows[..., PT]
    pid = rows[..., PID]
    bad = (
        ~np.isfinite(rows).all(axis=(1, 2))
        | (pt < 0).any(axis=1)
        | ~(pt > 0).any(axis=1)
        | ((pid != np.round(pid)) & (pt > 0)).any(axis=1)
    )
    for j in np.flatnonzero(bad):
        try:
            Jet.from_array(rows[j], index=int(positions[j]))
        except ValueError as exc:
            raise ValueError(f"{where}{exc}") from None


class _Source:
    """Where jets come from: ``read`` returns validated padded rows for source positions."""

    name: str
    n: int
    width: int
    labels: NDArray[np.int8] | None
    metadata: dict[str, Any] | None

    def read(self, positions: NDArray[np.intp]) -> NDArray[np.float64]:
        """Padded ``(k, width, 4)`` float64 rows of the jets at ``positions``."""
        raise NotImplementedError

    def locate(self, position: int) -> tuple[str, int]:
        """Error-message prefix (``"file: "`` or ``""``) and in-file index of a position."""
        raise NotImplementedError


class _ArraySource(_Source):
    """Jets already in memory (or memory-mapped from a ``.npy``)."""

    def __init__(
        self,
        X: NDArray[Any],
        labels: NDArray[np.int8] | None,
        name: str,
        *,
        prefix: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.X = X
        self.name = name
        self.n = int(X.shape[0])
        self.width = int(X.shape[1])
        self.labels = labels
        self.metadata = metadata
        self._prefix = prefix

    def read(self, positions: NDArray[np.intp]) -> NDArray[np.float64]:
        rows = np.asarray(self.X[positions], dtype=np.float64)
        _check_rows(rows, positions, self._prefix)
        return rows

    def locate(self, position: int) -> tuple[str, int]:
        return self._prefix, position


@dataclass
class _NpzFile:
    """One ``.npz`` of a folder: its size, width and offset in the folder."""

    path: Path
    n: int
    width: int
    offset: int
    labels: NDArray[np.int8] | None
    metadata: dict[str, Any] | None = field(default=None, repr=False)


def _read_header(zf: zipfile.ZipFile, member: str) -> tuple[tuple[int, ...], np.dtype[Any]]:
    """Shape and dtype of an ``.npy`` member without decompressing its data."""
    with zf.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            shape, _, dtype = np.lib.format._read_array_header(f, version)  # type: ignore[attr-defined]
    return shape, dtype


def _open_npz(path: Path, offset: int) -> _NpzFile:
    """Read the header of ``X``, the labels and the metadata of one file (not ``X`` itself)."""
    where = f"{path}: "
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with zipfile.ZipFile(path) as zf:
            members = set(zf.namelist())
            if "X.npy" not in members:
                found = ", ".join(sorted(m.removesuffix(".npy") for m in members)) or "nothing"
                raise ValueError(f"{where}no array 'X' in the file (found: {found})")
            shape, dtype = _read_header(zf, "X.npy")
        _check_shape(shape, dtype, where)
        with np.load(path, allow_pickle=False) as npz:
            y = npz["y"] if "y" in npz.files else None
            meta_raw = npz["meta"] if "meta" in npz.files else None
    except _BAD_NPZ as exc:
        if isinstance(exc, ValueError) and str(exc).startswith(where):
            raise
        raise ValueError(f"{where}not a readable .npz file ({type(exc).__name__}: {exc})") from None
    labels = None if y is None else _check_labels(y, shape[0], where)
    metadata = None
    if meta_raw is not None:
        try:
            metadata = json.loads(str(meta_raw))
        except json.JSONDecodeError as exc:
            logger.warning("%s: ignoring 'meta', which is not JSON (%s)", path, exc)
    return _NpzFile(path, int(shape[0]), int(shape[1]), offset, labels, metadata)


class _NpzFolderSource(_Source):
    """One or more ``.npz`` files read one at a time; a few decompressed ``X`` are cached."""

    def __init__(self, files: list[_NpzFile], name: str) -> None:
        self.files = files
        self.name = name
        self.n = sum(f.n for f in files)
        self.width = max(f.width for f in files)
        self._offsets = np.array([f.offset for f in files] + [self.n], dtype=np.int64)
        have = [f.labels is not None for f in files]
        if any(have) and not all(have):
            missing = next(f.path for f in files if f.labels is None)
            raise ValueError(f"{missing}: no labels 'y' while other files of {name} have them")
        self.labels = (
            np.concatenate([f.labels for f in files if f.labels is not None]) if all(have) else None
        )
        metas = [f.metadata for f in files]
        if len(files) == 1:
            self.metadata = metas[0]
        else:
            self.metadata = {"files": metas} if any(m is not None for m in metas) else None
        self._cache: OrderedDict[int, NDArray[Any]] = OrderedDict()
        self._lock = threading.Lock()

    def _x(self, k: int) -> NDArray[Any]:
        """The decompressed ``X`` of file ``k`` (cached, least recently used evicted)."""
        with self._lock:
            if k in self._cache:
                self._cache.move_to_end(k)
                return self._cache[k]
            f = self.files[k]
            logger.debug("decompressing X of %s (%d jets)", f.path, f.n)
            try:
                with np.load(f.path, allow_pickle=False) as npz:
                    X = npz["X"]
            except _BAD_NPZ as exc:
                raise ValueError(f"{f.path}: cannot read X ({type(exc).__name__}: {exc})") from None
            while len(self._cache) >= _CACHE_FILES:
                self._cache.popitem(last=False)
            self._cache[k] = X
            return X

    def _file_of(self, positions: NDArray[np.intp]) -> NDArray[np.intp]:
        return np.searchsorted(self._offsets, positions, side="right") - 1

    def read(self, positions: NDArray[np.intp]) -> NDArray[np.float64]:
        out = np.zeros((len(positions), self.width, 4), dtype=np.float64)
        which = self._file_of(positions)
        for k in np.unique(which):  # each file decompressed at most once per call
            f = self.files[k]
            sel = np.flatnonzero(which == k)
            local = positions[sel] - f.offset
            rows = np.asarray(self._x(int(k))[local], dtype=np.float64)
            _check_rows(rows, local, self._prefix(int(k)))
            out[sel, : f.width] = rows
        return out

    def _prefix(self, k: int) -> str:
        return f"{self.files[k].path}: "

    def locate(self, position: int) -> tuple[str, int]:
        k = int(self._file_of(np.array([position]))[0])
        return self._prefix(k), position - self.files[k].offset


# -- the data set ---------------------------------------------------------------------------


class JetDataset:
    """Jets with optional labels (1 = quark, 0 = gluon), read lazily from their source.

    ``len(ds)``; ``ds[i]`` is a validated :class:`Jet` whose ``index`` is its position in the
    source (file, folder or array); ``ds[a:b]``, ``ds[[i, j]]`` and ``ds[mask]`` are new views.
    Iterating yields :class:`Jet` objects, read in batches.
    """

    def __init__(self, source: _Source, indices: NDArray[np.intp] | None = None) -> None:
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
        rows = self._source.read(positions)
        jets = []
        for row, pos in zip(rows, positions, strict=True):
            prefix, local = self._source.locate(int(pos))
            try:
                jet = Jet.from_array(row, index=local)
            except ValueError as exc:  # already caught by read(); kept for safety
                raise ValueError(f"{prefix}{exc}") from None
            jet.index = int(pos)
            jets.append(jet)
        return jets

    def __iter__(self) -> Iterator[Jet]:
        for batch in self.iter_batches(1024, as_jets=True):
            yield from batch

    # -- batches and arrays -----------------------------------------------------------------

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
        ``as_jets``. Jets from a folder are read one file at a time.
        """
        if size < 1:
            raise ValueError(f"batch size must be >= 1, got {size}")
        for start in range(0, len(self), size):
            positions = self._indices[start : start + size]
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

        Raises ``ValueError`` when ``n`` is odd or not positive, the jets are unlabelled, or
        there are fewer than ``n / 2`` jets of either kind.
        """
        if self._labels is None:
            raise ValueError(f"{self.source}: cannot balance unlabelled jets")
        if n < 2 or n % 2:
            raise ValueError(f"a balanced subset needs an even number of jets >= 2, got {n}")
        half = n // 2
        rng = np.random.default_rng(seed)
        chosen = []
        for label, name in ((1, "quark"), (0, "gluon")):
            pool = np.flatnonzero(self._labels == label)
            if len(pool) < half:
                raise ValueError(
                    f"{self.source}: asked for {half} {name} jets but there are only {len(pool)}"
                )
            chosen.append(rng.choice(pool, size=half, replace=False))
        return JetDataset(self._source, self._indices[np.sort(np.concatenate(chosen))])

    def head(self, n: int) -> JetDataset:
        """The first ``n`` jets (all of them if fewer)."""
        return self[: max(int(n), 0)]

    def shard(self, k: int, n: int) -> JetDataset:
        """Part ``k`` of ``n`` (``0 <= k < n``): a contiguous block of about ``len / n`` jets.

        The ``n`` parts are disjoint and cover every jet, in order; blocks keep a folder's
        shards reading few of its files.
        """
        if n < 1 or not 0 <= k < n:
            raise ValueError(f"shard {k}/{n}: need 0 <= K < N (K counts from 0)")
        size = len(self)
        return self[k * size // n : (k + 1) * size // n]


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

    Only the labels and array headers are read now; ``X`` is decompressed when jets are
    first needed, one file at a time (a folder of 2 million jets is never loaded at once).
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
            files.append(_open_npz(f, offset))
            offset += files[-1].n
        logger.info("opened %s: %d files, %d jets", p, len(files), offset)
        return JetDataset(_NpzFolderSource(files, str(p)))
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or folder")
    if p.suffix == ".npy":
        try:
            X = np.load(p, mmap_mode="r", allow_pickle=False)
        except _BAD_NPZ as exc:
            raise ValueError(f"{p}: not a readable .npy file ({exc})") from None
        _check_shape(X.shape, X.dtype, f"{p}: ")
        return JetDataset(_ArraySource(X, None, str(p), prefix=f"{p}: "))
    return JetDataset(_NpzFolderSource([_open_npz(p, 0)], str(p)))


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
    _check_shape(arr.shape, arr.dtype, "")
    labels = None if y is None else _check_labels(y, arr.shape[0], "")
    return JetDataset(_ArraySource(arr, labels, name))


def load_sample() -> JetDataset:
    """The bundled sample: 2,000 quark and 2,000 gluon jets (made by :data:`SAMPLE_COMMAND`).

    Generated with this package's Pythia 8 + FastJet recipe (see
    :mod:`vibe_jet_tagging.generate`); ``source`` is ``"sample"``, ``metadata`` its settings.
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
    _check_shape(X.shape, X.dtype, "sample: ")
    labels = _check_labels(y, X.shape[0], "sample: ")
    return JetDataset(_ArraySource(X, labels, "sample", prefix="sample: ", metadata=meta))
