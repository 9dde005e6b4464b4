"""Bounded reading of ``.npz`` files: forged headers, absurd shapes, decompression bombs, blocks.

The hostile files are built here, in ``tmp_path``: a zip member is written in pieces, so a
file that decompresses to hundreds of megabytes never exists in the test's memory.
"""

from __future__ import annotations

import logging
import re
import tracemalloc
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest

from vibe_jet_tagging.jets import Jet
from vibe_jet_tagging.jets.dataset import load_jets


def write_member(
    zf: zipfile.ZipFile, name: str, shape: tuple[int, ...], chunks: Iterable[bytes], dtype="<f8"
) -> None:
    """An ``.npy`` member whose header says ``shape`` and whose data is ``chunks``, streamed."""
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
        np.lib.format.write_array_header_1_0(f, header)
        for chunk in chunks:
            f.write(chunk)


def zeros(nbytes: int, piece: int = 16 << 20) -> Iterable[bytes]:
    block = bytes(piece)
    while nbytes > 0:
        yield block[: min(nbytes, piece)]
        nbytes -= piece


def jet_rows(width: int, seed: int) -> np.ndarray:
    """One padded jet of ``width`` rows, at most 20 of them real."""
    rng = np.random.default_rng(seed)
    k = min(width, 20)
    rows = np.zeros((width, 4))
    rows[:k] = np.column_stack(
        [rng.uniform(1, 50, k), rng.normal(0, 0.1, k), rng.normal(1, 0.1, k), np.full(k, 211)]
    )
    return rows


def write_bomb(path: Path, n: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` jets of ``width`` rows, all padding but the first two and the last: a bomb.

    Returns the three real jets (first two, last).
    """
    first, last = np.stack([jet_rows(width, 0), jet_rows(width, 1)]), jet_rows(width, 2)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        middle = zeros((n - 3) * width * 32)
        write_member(zf, "X", (n, width, 4), [first.tobytes(), *middle, last.tobytes()])
        write_member(zf, "y", (n,), [(np.arange(n) % 2).astype("<f8").tobytes()])
    return first, last


# -- checked from the headers -----------------------------------------------------------------


def test_a_forged_header_is_refused_before_anything_is_decompressed(tmp_path: Path) -> None:
    path = tmp_path / "forged.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        write_member(zf, "X", (2, 10**9, 4), [jet_rows(2, 0).tobytes()])  # claims 64 GB
        write_member(zf, "y", (2,), [np.array([1.0, 0.0]).tobytes()])
    assert path.stat().st_size < 1000
    with pytest.raises(ValueError, match="forged") as info:
        load_jets(path)
    assert str(info.value) == (
        f"{path}: X is damaged or forged: its header declares shape (2, 1000000000, 4) float64 "
        "(64.0 GB) but the file holds 64 bytes"
    )


def test_forged_labels_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "forged_y.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        write_member(zf, "X", (2, 2, 4), [np.stack([jet_rows(2, 0)] * 2).tobytes()])
        write_member(zf, "y", (3 * 10**9,), [np.array([1.0, 0.0]).tobytes()])
    with pytest.raises(ValueError, match="^" + re.escape(f"{path}: y is damaged or forged")):
        load_jets(path)


def test_absurd_shapes_are_refused_in_one_line(tmp_path: Path, monkeypatch) -> None:
    from vibe_jet_tagging.jets import sources

    assert sources.MAX_CONSTITUENTS == 100_000
    wide = tmp_path / "wide.npz"
    np.savez_compressed(wide, X=np.zeros((1, 100_001, 4)))
    with pytest.raises(ValueError, match="per jet") as info:
        load_jets(wide)
    assert str(info.value) == (
        f"{wide}: X declares 100,001 constituent rows per jet, more than the 100,000 a jet may "
        "have: not a jet file (or a forged one)"
    )
    np.save(tmp_path / "wide.npy", np.zeros((1, 100_001, 4)))
    with pytest.raises(ValueError, match="constituent rows per jet"):
        load_jets(tmp_path / "wide.npy")

    monkeypatch.setattr(sources, "MAX_JETS", 5)
    many = tmp_path / "many.npz"
    np.savez_compressed(many, X=np.zeros((6, 2, 4)))
    with pytest.raises(ValueError, match="^" + re.escape(f"{many}: X declares 6 jets, more than")):
        load_jets(many)

    crowded = tmp_path / "crowded.npz"
    np.savez(crowded, **{f"a{i:03d}": np.zeros(1) for i in range(500)})
    with pytest.raises(ValueError, match="no array") as info:
        load_jets(crowded)
    assert str(info.value) == (
        f"{crowded}: no array 'X' in the file (found: a000, a001, a002, a003, a004, a005, a006, "
        "a007, a008, a009, ... (500 in all))"
    )

    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, X=np.zeros((2, 2, 4)), y=np.array([1, "a"], dtype=object))
    with pytest.raises(ValueError, match=re.escape(f"{pickled}: y holds Python objects")):
        load_jets(pickled)


def test_oversized_metadata_is_ignored(tmp_path: Path, caplog) -> None:
    path = tmp_path / "meta.npz"
    X = jet_rows(3, 0)[None]
    np.savez_compressed(path, X=X, y=np.ones(1), meta=np.array("x" * (1 << 20)))
    with caplog.at_level(logging.WARNING):
        ds = load_jets(path)
    assert ds.metadata is None
    assert f"{path}: ignoring 'meta' (4.2 MB)" in caplog.text
    np.testing.assert_array_equal(ds.padded(), X)


# -- read in blocks ---------------------------------------------------------------------------


def test_a_decompression_bomb_costs_memory_for_the_rows_read_only(tmp_path: Path) -> None:
    n, width = 50_000, 250  # 400 MB of X in a ~2 MB file
    path = tmp_path / "bomb.npz"
    first, last = write_bomb(path, n, width)
    assert path.stat().st_size < 5e6

    tracemalloc.start()
    try:
        ds = load_jets(path)
        assert len(ds) == n
        jets = list(ds[:2])
        end = ds[-1]  # decompresses through the whole member, a block at a time
        again = ds[0]  # before the stream's position: read from the start again
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100e6, f"peak {peak / 1e6:.0f} MB while reading a 400 MB member"
    assert jets == [Jet.from_array(first[0]), Jet.from_array(first[1])]
    assert end == Jet.from_array(last) and end.index == n - 1
    assert again == jets[0]
    with pytest.raises(ValueError, match=re.escape(f"{path}: jet 2: no constituents")):
        ds[2]


@pytest.mark.parametrize("compressed", [True, False])
def test_reads_in_any_order_equal_the_whole_array(tmp_path: Path, monkeypatch, compressed) -> None:
    from vibe_jet_tagging.jets import sources

    monkeypatch.setattr(sources, "_BLOCK_BYTES", 3 * 7 * 32)  # blocks of 3 jets of M = 7
    folder = tmp_path / "qg"
    folder.mkdir()
    arrays = []
    for k, (n, m) in enumerate([(10, 7), (4, 5), (9, 7)]):
        X = np.stack([jet_rows(m, 10 * k + i) for i in range(n)])
        X[:, :, 1] += np.arange(n)[:, None] + 100 * k  # every jet different
        save = np.savez_compressed if compressed else np.savez
        save(folder / (f"QG_jets_{k}.npz" if k else "QG_jets.npz"), X=X, y=np.arange(n) % 2)
        padded = np.zeros((n, 7, 4))
        padded[:, :m] = X
        arrays.append(padded)
    whole = np.concatenate(arrays)
    ds = load_jets(folder)
    rng = np.random.default_rng(0)
    orders = [np.arange(23), np.arange(23)[::-1], rng.permutation(23), rng.integers(0, 23, 40)]
    for order in orders:
        np.testing.assert_array_equal(ds[order].padded(), whole[order])
        assert [j.index for j in ds[order]] == order.tolist()
    for i in rng.permutation(23):  # one jet at a time, back and forth over blocks and files
        assert ds[int(i)] == Jet.from_array(whole[i])
    assert len(ds._source._blocks) <= 4 and len(ds._source._streams) <= 2


def test_fortran_ordered_x_is_read(tmp_path: Path) -> None:
    X = np.asfortranarray(np.stack([jet_rows(6, i) for i in range(5)]))
    path = tmp_path / "fortran.npz"
    np.savez_compressed(path, X=X)
    np.testing.assert_array_equal(load_jets(path)[[4, 1]].padded(), X[[4, 1]])


def test_damaged_x_fails_the_jets_after_the_damage_once(tmp_path: Path, monkeypatch) -> None:
    from vibe_jet_tagging.jets import sources
    from vibe_jet_tagging.jets.npz import RowStream

    monkeypatch.setattr(sources, "_BLOCK_BYTES", 50 * 20 * 32)  # blocks of 50 jets
    X = np.stack([jet_rows(20, i) for i in range(1000)])
    path = tmp_path / "damaged.npz"
    np.savez_compressed(path, X=X, y=np.arange(1000) % 2)
    data = bytearray(path.read_bytes())
    at = int(len(data) * 0.7)  # inside X, around jet 700
    data[at : at + 50] = bytes(b ^ 0xFF for b in data[at : at + 50])
    path.write_bytes(bytes(data))
    reads: list[tuple[int, int]] = []
    read = RowStream._read
    monkeypatch.setattr(RowStream, "_read", lambda s, a, b: reads.append((a, b)) or read(s, a, b))

    ds = load_jets(path)
    assert ds[0] == Jet.from_array(X[0])  # before the damage: read
    with pytest.raises(ValueError, match="^" + re.escape(f"{path}: cannot read X (")):
        ds[999]
    attempts = len(reads)
    for i in (999, 990, 950):  # the same block or later: fails at once, nothing decompressed
        with pytest.raises(ValueError, match=re.escape(f"{path}: cannot read X")):
            ds[i]
    assert len(reads) == attempts
    assert ds[120] == Jet.from_array(X[120])  # before the damage, still readable
