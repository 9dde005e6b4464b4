"""Arrays inside ``.npz`` files, read with bounded memory.

An ``.npz`` is a zip of ``.npy`` members. :func:`read_header` checks a member's shape and dtype
from its ``.npy`` header against the size the zip directory declares, before anything is
decompressed, so a forged header (a 1 kB file claiming gigabytes) is refused at once.
:class:`RowStream` then reads rows of a member in pieces, decompressing only up to the last row
asked for: a decompression bomb costs time to skip, never memory. ``np.load(mmap_mode=...)``
cannot do this inside a zip file.
"""

from __future__ import annotations

import math
import threading
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray

__all__ = ["READ_ERRORS", "NpyMember", "RowStream", "format_size", "read_header", "read_whole"]

READ_ERRORS = (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, KeyError)
"""What reading a damaged zip or ``.npy`` can raise."""

MAX_WHOLE_BYTES = 256 << 20
"""The largest member read in one piece (labels, metadata, a Fortran-ordered array)."""


def format_size(n: int) -> str:
    """A byte count for people: ``"1.2 kB"``, ``"2.4 GB"``."""
    for scale, unit in ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


@dataclass(frozen=True)
class NpyMember:
    """What the header of one ``.npy`` member of a zip says (checked against the zip)."""

    path: Path
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    fortran_order: bool
    offset: int  # bytes of the .npy header: the data starts there

    @property
    def nbytes(self) -> int:
        """Bytes of the array's data."""
        return math.prod(self.shape) * self.dtype.itemsize

    @property
    def row_bytes(self) -> int:
        """Bytes of one entry along the first axis."""
        return math.prod(self.shape[1:]) * self.dtype.itemsize

    @property
    def where(self) -> str:
        """Error-message prefix naming the file and the array."""
        return f"{self.path}: {self.name}"


def _open(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[BinaryIO, int, tuple[Any, ...]]:
    """The open member positioned at its data, the header length and (shape, order, dtype)."""
    f = zf.open(info)
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            header = np.lib.format.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):  # 3.0 differs from 2.0 only in the header's encoding
            header = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"unknown .npy format version {version}")
        return f, f.tell(), header  # type: ignore[return-value]
    except BaseException:
        f.close()
        raise


def read_header(zf: zipfile.ZipFile, name: str, path: Path) -> NpyMember:
    """Shape and dtype of member ``name`` (``"X"`` for ``X.npy``), without reading its data.

    Raises ``ValueError`` naming the file and the array when the member holds Python objects,
    or when the data the header declares does not match the member's size in the zip
    directory (a damaged or forged file).
    """
    info = zf.getinfo(f"{name}.npy")
    f, offset, (shape, fortran_order, dtype) = _open(zf, info)
    f.close()
    member = NpyMember(path, name, tuple(int(s) for s in shape), dtype, fortran_order, offset)
    if dtype.hasobject:
        raise ValueError(f"{member.where} holds Python objects, which are never unpickled")
    held = info.file_size - offset
    if member.nbytes != held:
        raise ValueError(
            f"{member.where} is damaged or forged: its header declares shape {member.shape} "
            f"{dtype} ({format_size(member.nbytes)}) but the file holds {format_size(held)}"
        )
    return member


def read_whole(zf: zipfile.ZipFile, member: NpyMember) -> NDArray[Any]:
    """The whole array of a small member (at most :data:`MAX_WHOLE_BYTES`)."""
    if member.nbytes > MAX_WHOLE_BYTES:
        raise ValueError(
            f"{member.where} holds {format_size(member.nbytes)}, more than the "
            f"{format_size(MAX_WHOLE_BYTES)} read at once"
        )
    with zf.open(f"{member.name}.npy") as f:
        array: np.ndarray = np.lib.format.read_array(f, allow_pickle=False)
        return array


class RowStream:
    """Rows (entries along the first axis) of one member, decompressed on demand.

    :meth:`read` decompresses forward from where the last read stopped, skipping rows not
    asked for in pieces of at most 16 MB; a read before that point starts the member over.
    Memory is the rows returned plus a fixed buffer, whatever the size of the member.
    Thread-safe; :meth:`close` releases the file.
    """

    def __init__(self, member: NpyMember) -> None:
        if member.fortran_order and member.nbytes > MAX_WHOLE_BYTES:
            raise ValueError(
                f"{member.where} is stored in Fortran order ({format_size(member.nbytes)}), "
                "which cannot be read in pieces: save it in C order (np.ascontiguousarray)"
            )
        self.member = member
        self._zf: zipfile.ZipFile | None = None
        self._f: BinaryIO | None = None
        self._whole: NDArray[Any] | None = None
        # A failed read of rows ..stop means the damage lies before stop: any read reaching
        # that far fails at once with the same error, instead of decompressing up to it again.
        self._failed: tuple[int, str] | None = None
        self._lock = threading.Lock()

    def read(self, start: int, stop: int) -> NDArray[Any]:
        """Rows ``start:stop`` (in the member's dtype; read-only).

        Raises ``ValueError`` naming the file and the array when the data is damaged.
        """
        m = self.member
        stop = min(stop, m.shape[0])
        if start >= stop:
            return np.zeros((0, *m.shape[1:]), dtype=m.dtype)
        with self._lock:
            if self._failed is not None and stop >= self._failed[0]:
                raise ValueError(self._failed[1])
            try:
                return self._read(start, stop)
            except READ_ERRORS as exc:
                self._close()
                message = str(exc)
                if not (isinstance(exc, ValueError) and message.startswith(m.where)):
                    message = f"{m.path}: cannot read {m.name} ({type(exc).__name__}: {exc})"
                self._failed = (stop, message)
                raise ValueError(message) from None

    def _read(self, start: int, stop: int) -> NDArray[Any]:
        m = self.member
        if m.fortran_order:
            if self._whole is None:
                with zipfile.ZipFile(m.path) as zf:
                    self._whole = read_whole(zf, m)
            return self._whole[start:stop]
        if self._f is None:
            self._zf = zipfile.ZipFile(m.path)
            self._f, offset, _ = _open(self._zf, self._zf.getinfo(f"{m.name}.npy"))
            if offset != m.offset:
                raise ValueError(f"{m.where}: the file changed while it was read")
        self._f.seek(m.offset + start * m.row_bytes)  # forward: decompress and skip
        want = (stop - start) * m.row_bytes
        data = self._f.read(want)
        if len(data) != want:
            raise ValueError(
                f"{m.where} ends after {format_size(m.offset + start * m.row_bytes + len(data))}"
                f" of the {format_size(m.offset + m.nbytes)} its header declares (damaged)"
            )
        return np.frombuffer(data, dtype=m.dtype).reshape((stop - start, *m.shape[1:]))

    def _close(self) -> None:
        for handle in (self._f, self._zf):
            if handle is not None:
                handle.close()
        self._f = self._zf = None

    def close(self) -> None:
        """Close the file (a later read opens it again)."""
        with self._lock:
            self._close()
            self._whole = None
