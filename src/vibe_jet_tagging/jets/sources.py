"""Where the jets of a :class:`~vibe_jet_tagging.jets.dataset.JetDataset` come from.

A source returns padded ``(k, M, 4)`` float64 rows for positions: an in-memory (or
memory-mapped) array, or one or more EnergyFlow ``.npz`` files. Files are checked from their
headers when opened (shape, dtype, declared sizes, :data:`MAX_JETS`, :data:`MAX_CONSTITUENTS`)
and their ``X`` is decompressed in blocks of at most 16 MB as rows are asked for, a few blocks
kept: memory is bounded by the batch read, not by the file.
"""

from __future__ import annotations

import json
import logging
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .jet import Jet, bad_rows
from .npz import READ_ERRORS, NpyMember, RowStream, format_size, read_header, read_whole

__all__ = ["MAX_CONSTITUENTS", "MAX_JETS"]

logger = logging.getLogger(__name__)

MAX_JETS = 20_000_000
"""The most jets one file may hold (a folder may hold many such files)."""

MAX_CONSTITUENTS = 100_000
"""The most constituent rows (``M``) per jet a file may declare."""

_BLOCK_BYTES = 16 << 20  # rows of X decompressed together
_CACHE_BLOCKS = 4  # decompressed blocks kept (64 MB at most)
_OPEN_FILES = 2  # files of a folder kept open for reading on
_MAX_META_BYTES = 1 << 20


# -- checks --------------------------------------------------------------------------------------


def check_labels(y: Any, n: int, where: str) -> NDArray[np.int8]:
    """Labels as int8 after checking their shape and that each is 0 or 1."""
    y = np.asarray(y)
    _check_label_shape(y.shape, n, where)
    if y.dtype.kind not in "biuf":
        raise ValueError(f"{where}labels must be numbers (1 = quark, 0 = gluon), got {y.dtype}")
    ok = (y == 0) | (y == 1)
    if not ok.all():
        i = int(np.argmin(ok))
        raise ValueError(f"{where}jet {i}: label {y[i].item()!r} is not 1 (quark) or 0 (gluon)")
    return y.astype(np.int8)


def _check_label_shape(shape: tuple[int, ...], n: int, where: str) -> None:
    if shape != (n,):
        raise ValueError(f"{where}y has shape {shape} but X has {n} jets (expected ({n},))")


def check_shape(shape: tuple[int, ...], dtype: np.dtype[Any], where: str) -> None:
    """Check that ``X`` is a numeric ``(N, M, 4)`` array."""
    if len(shape) != 3 or shape[2] != 4:
        raise ValueError(
            f"{where}X must have shape (N, M, 4) with columns (pt, y, phi, pdgid), got {shape}"
        )
    if dtype.kind not in "iuf":
        raise ValueError(f"{where}X must hold numbers, got dtype {dtype}")


def check_limits(shape: tuple[int, ...], where: str) -> None:
    """Refuse an absurdly large ``X`` (see :data:`MAX_JETS` and :data:`MAX_CONSTITUENTS`)."""
    n, m = shape[0], shape[1]
    if m > MAX_CONSTITUENTS:
        raise ValueError(
            f"{where}X declares {m:,} constituent rows per jet, more than the {MAX_CONSTITUENTS:,}"
            " a jet may have: not a jet file (or a forged one)"
        )
    if n > MAX_JETS:
        raise ValueError(
            f"{where}X declares {n:,} jets, more than the {MAX_JETS:,} one file may hold: "
            "split it into the files of a folder"
        )


def check_rows(rows: NDArray[np.float64], positions: NDArray[np.intp], where: str) -> None:
    """Validate a batch of padded jets; on a bad one raise what :meth:`Jet.from_array` says.

    ``positions`` are the jets' indices in the file (for the message), ``where`` its prefix.
    """
    for j in np.flatnonzero(bad_rows(rows)):
        try:
            Jet.from_array(rows[j], index=int(positions[j]))
        except ValueError as exc:
            raise ValueError(f"{where}{exc}") from None


# -- sources -------------------------------------------------------------------------------------


class Source:
    """Where jets come from: ``read`` returns padded rows for source positions."""

    name: str
    n: int
    width: int
    labels: NDArray[np.int8] | None
    metadata: dict[str, Any] | None

    def read(self, positions: NDArray[np.intp], *, validate: bool = True) -> NDArray[np.float64]:
        """Padded ``(k, width, 4)`` float64 rows of the jets at ``positions``.

        With ``validate``, a bad jet raises ``ValueError`` naming the file and the jet.
        """
        raise NotImplementedError

    def locate(self, position: int) -> tuple[str, int]:
        """Error-message prefix (``"file: "`` or ``""``) and in-file index of a position."""
        raise NotImplementedError


class ArraySource(Source):
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

    def read(self, positions: NDArray[np.intp], *, validate: bool = True) -> NDArray[np.float64]:
        rows = np.asarray(self.X[positions], dtype=np.float64)
        if validate:
            check_rows(rows, positions, self._prefix)
        return rows

    def locate(self, position: int) -> tuple[str, int]:
        return self._prefix, position


@dataclass
class NpzFile:
    """One ``.npz`` of a folder: its ``X`` header, labels and offset in the folder."""

    path: Path
    x: NpyMember
    offset: int
    labels: NDArray[np.int8] | None
    metadata: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return self.x.shape[0]

    @property
    def width(self) -> int:
        return self.x.shape[1]


def open_npz(path: Path, offset: int) -> NpzFile:
    """Check one file from its headers and read its labels and metadata (not ``X``)."""
    where = f"{path}: "
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    y = meta_raw = None
    try:
        with zipfile.ZipFile(path) as zf:
            members = set(zf.namelist())
            if "X.npy" not in members:
                names = sorted(m.removesuffix(".npy") for m in members)
                found = ", ".join(names[:10]) + (f", ... ({len(names)} in all)" * (len(names) > 10))
                found = found or "nothing"
                raise ValueError(f"{where}no array 'X' in the file (found: {found})")
            x = read_header(zf, "X", path)
            check_shape(x.shape, x.dtype, where)
            check_limits(x.shape, where)
            if "y.npy" in members:
                y_header = read_header(zf, "y", path)
                _check_label_shape(y_header.shape, x.shape[0], where)
                y = read_whole(zf, y_header)
            if "meta.npy" in members:
                meta_header = read_header(zf, "meta", path)
                if meta_header.nbytes <= _MAX_META_BYTES:
                    meta_raw = read_whole(zf, meta_header)
                else:
                    logger.warning(
                        "%s: ignoring 'meta' (%s)", path, format_size(meta_header.nbytes)
                    )
    except READ_ERRORS as exc:
        if isinstance(exc, ValueError) and str(exc).startswith(where):
            raise
        raise ValueError(f"{where}not a readable .npz file ({type(exc).__name__}: {exc})") from None
    labels = None if y is None else check_labels(y, x.shape[0], where)
    metadata = None
    if meta_raw is not None:
        try:
            metadata = json.loads(str(meta_raw))
        except json.JSONDecodeError as exc:
            logger.warning("%s: ignoring 'meta', which is not JSON (%s)", path, exc)
    return NpzFile(path, x, offset, labels, metadata)


class NpzFolderSource(Source):
    """One or more ``.npz`` files, whose ``X`` is decompressed in blocks as rows are read.

    Positions read together are read in file order, so a batch costs one forward pass over
    the part of each file it reaches; the last few blocks are kept for the next read.
    """

    def __init__(self, files: list[NpzFile], name: str) -> None:
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
        self._streams: OrderedDict[int, RowStream] = OrderedDict()
        self._blocks: OrderedDict[tuple[int, int], NDArray[Any]] = OrderedDict()
        self._lock = threading.Lock()

    def block_rows(self, k: int) -> int:
        """Jets of file ``k`` decompressed together."""
        return max(1, _BLOCK_BYTES // max(self.files[k].x.row_bytes, 1))

    def _stream(self, k: int) -> RowStream:
        stream = self._streams.get(k)
        if stream is None:
            while len(self._streams) >= _OPEN_FILES:
                self._streams.popitem(last=False)[1].close()
            stream = self._streams[k] = RowStream(self.files[k].x)
            logger.debug("reading X of %s (%d jets)", self.files[k].path, self.files[k].n)
        self._streams.move_to_end(k)
        return stream

    def _block(self, k: int, b: int) -> NDArray[Any]:
        """Block ``b`` of file ``k`` (kept, least recently used evicted)."""
        block = self._blocks.get((k, b))
        if block is None:
            rows = self.block_rows(k)
            block = self._stream(k).read(b * rows, (b + 1) * rows)
            while len(self._blocks) >= _CACHE_BLOCKS:
                self._blocks.popitem(last=False)
            self._blocks[(k, b)] = block
        self._blocks.move_to_end((k, b))
        return block

    def _file_of(self, positions: NDArray[np.intp]) -> NDArray[np.intp]:
        return np.searchsorted(self._offsets, positions, side="right") - 1

    def read(self, positions: NDArray[np.intp], *, validate: bool = True) -> NDArray[np.float64]:
        out = np.zeros((len(positions), self.width, 4), dtype=np.float64)
        which = self._file_of(positions)
        with self._lock:
            for k in np.unique(which):
                f = self.files[k]
                sel = np.flatnonzero(which == k)
                local = positions[sel] - f.offset
                per = self.block_rows(int(k))
                blocks = local // per
                for b in np.unique(blocks):  # ascending: one forward pass over the file
                    here = blocks == b
                    block = self._block(int(k), int(b))
                    out[sel[here], : f.width] = block[local[here] - b * per]
                if validate:
                    check_rows(out[sel], local, self._prefix(int(k)))
        return out

    def _prefix(self, k: int) -> str:
        return f"{self.files[k].path}: "

    def locate(self, position: int) -> tuple[str, int]:
        k = int(self._file_of(np.array([position]))[0])
        return self._prefix(k), position - self.files[k].offset
