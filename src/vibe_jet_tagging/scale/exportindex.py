"""The jets of an export by custom id, in numpy arrays (about 100 bytes a jet).

An export of millions of jets keeps, per jet, its position, index, truth, key, jet key and
whether it was asked; a reader notes a state per key (answered, failed) in a byte.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator

import numpy as np

__all__ = ["ExportIndex"]

_KEY_BYTES = 32  # a cache key: 16 bytes as hex


class ExportIndex:
    """The jets of an export by custom id: position, index, truth, jet key, whether asked.

    Kept in numpy arrays sorted by key (about 100 bytes a jet), so that millions of jets fit.
    Build it with :meth:`add` jet by jet, then look keys up with :meth:`find`.
    """

    def __init__(self) -> None:
        self._keys = bytearray()
        self._jet_keys = bytearray()
        self._position = array("q")
        self._index = array("q")
        self._truth = array("b")
        self._asked = bytearray()
        self._sorted = False
        self._state = np.zeros(0, dtype=np.uint8)

    def add(
        self,
        position: int,
        key: str,
        jet_key: str,
        index: int | None,
        truth: int | None,
        asked: bool,
    ) -> None:
        """The jet at ``position`` of the exported jets."""
        self._position.append(position)
        self._keys += _key_bytes(key)
        self._jet_keys += _key_bytes(jet_key)
        self._index.append(-1 if index is None else index)
        self._truth.append(-1 if truth is None else truth)
        self._asked.append(asked)
        self._sorted = False

    def _freeze(self) -> None:
        if self._sorted:
            return
        keys = np.frombuffer(self._keys, dtype=f"S{_KEY_BYTES}")
        self.order = np.argsort(keys, kind="stable")
        self.keys = keys[self.order]
        self.jet_keys = np.frombuffer(self._jet_keys, dtype=f"S{_KEY_BYTES}")[self.order]
        self.position = np.frombuffer(self._position, dtype=np.int64)[self.order]
        self.index = np.frombuffer(self._index, dtype=np.int64)[self.order]
        self.truth = np.frombuffer(self._truth, dtype=np.int8)[self.order]
        self.asked = np.frombuffer(self._asked, dtype=np.bool_)[self.order]
        self._state = np.zeros(len(self.keys), dtype=np.uint8)
        self._sorted = True

    def __len__(self) -> int:
        return len(self._index)

    def find(self, key: str) -> slice:
        """The rows of ``key`` in the sorted arrays (empty when unknown)."""
        self._freeze()
        if len(key) != _KEY_BYTES:
            return slice(0, 0)
        k = key.encode("ascii", "replace")
        return slice(
            int(np.searchsorted(self.keys, k, "left")), int(np.searchsorted(self.keys, k, "right"))
        )

    def jet_key(self, key: str) -> str | None:
        """The jet key of custom id ``key``, or ``None`` when the export has no such jet."""
        rows = self.find(key)
        return self.jet_keys[rows.start].decode() if rows.stop > rows.start else None

    def jets(self, key: str) -> list[tuple[int, int | None, int | None]]:
        """``(position, index, truth)`` of each jet with ``key``, in export order."""
        rows = self.find(key)
        return [
            (
                int(self.position[r]),
                None if self.index[r] < 0 else int(self.index[r]),
                None if self.truth[r] < 0 else int(self.truth[r]),
            )
            for r in range(rows.start, rows.stop)
        ]

    def state(self, key: str) -> int:
        """What a reader noted for ``key`` (0 until :meth:`note`; e.g. 1 error, 2 labelled)."""
        rows = self.find(key)
        return int(self._state[rows.start]) if rows.stop > rows.start else 0

    def note(self, key: str, state: int) -> None:
        """Note ``state`` for a known ``key`` (a byte per jet, unlike a set of keys)."""
        rows = self.find(key)
        if rows.stop > rows.start:
            self._state[rows.start] = state

    def unique_keys(self) -> Iterator[tuple[str, bool]]:
        """Each key once, with whether it was asked."""
        self._freeze()
        if not len(self):
            return
        first = np.flatnonzero(np.r_[True, self.keys[1:] != self.keys[:-1]])
        for r in first:
            yield self.keys[r].decode(), bool(self.asked[r])


def _key_bytes(key: str) -> bytes:
    raw = key.encode("ascii")
    if len(raw) != _KEY_BYTES:
        raise ValueError(f"not a cache key: {key!r}")
    return raw
