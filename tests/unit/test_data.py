"""Loading EnergyFlow-format files and folders, data set views, subsets and errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from vibe_jet_tagging.jets import Jet, jet_observables
from vibe_jet_tagging.jets.dataset import JetDataset, dataset_from_arrays, load_jets, load_sample
from vibe_jet_tagging.jets.generate import save_jets


def make_jets(n: int, m: int, seed: int, *, first_pt: float = 0.0) -> np.ndarray:
    """EnergyFlow-like jets: (n, m, 4) float64, random multiplicities, padding rows anywhere.

    Jet i's hardest constituent has pt ``first_pt + i + 100`` so tests can tell jets apart.
    """
    rng = np.random.default_rng(seed)
    X = np.zeros((n, m, 4))
    for i in range(n):
        k = int(rng.integers(2, m + 1))
        rows = rng.choice(m, size=k, replace=False)  # real rows scattered among padding
        X[i, rows, 0] = rng.uniform(1.0, 50.0, size=k)
        X[i, rows[0], 0] = first_pt + i + 100.0
        X[i, rows, 1] = rng.normal(0.0, 0.2, size=k)
        X[i, rows, 2] = rng.normal(3.0, 0.2, size=k)
        X[i, rows, 3] = rng.choice([22.0, 211.0, -211.0, 2112.0], size=k)
    return X


def leading_pt(jet: Jet) -> float:
    return float(jet.constituents[0, 0])


@pytest.fixture
def qg_file(tmp_path: Path) -> Path:
    """One file in EnergyFlow's exact format: float labels, an extra array, padding inside."""
    X = make_jets(10, 8, seed=1)
    y = np.array([1, 0, 0, 1, 0, 1, 0, 0, 1, 0], dtype=np.float64)
    path = tmp_path / "QG_jets.npz"
    np.savez_compressed(path, X=X, y=y, extra=np.arange(3))
    return path


@pytest.fixture
def qg_folder(tmp_path: Path) -> Path:
    """A folder of four files with different M, whose natural order is not lexicographic."""
    folder = tmp_path / "qg"
    folder.mkdir()
    specs = [
        ("QG_jets.npz", 3, 4),
        ("QG_jets_1.npz", 2, 7),
        ("QG_jets_2.npz", 1, 3),
        ("QG_jets_10.npz", 2, 5),
    ]
    start = 0
    for k, (name, n, m) in enumerate(specs):
        X = make_jets(n, m, seed=10 + k, first_pt=start)
        y = (np.arange(start, start + n) % 2).astype(np.float64)
        np.savez_compressed(folder / name, X=X, y=y)
        start += n
    return folder


# -- one file -------------------------------------------------------------------------------


def test_load_energyflow_file(qg_file: Path) -> None:
    ds = load_jets(qg_file)
    raw = np.load(qg_file)
    assert len(ds) == 10
    assert ds.source == str(qg_file)
    assert ds.labels is not None
    assert ds.labels.dtype == np.int8
    assert ds.labels.tolist() == raw["y"].astype(int).tolist()
    assert ds.metadata is None
    jet = ds[3]
    assert isinstance(jet, Jet)
    assert jet.index == 3
    assert jet == Jet.from_array(raw["X"][3])
    assert len(jet) == int((raw["X"][3, :, 0] > 0).sum())
    assert ds[-1].index == 9
    assert ds.padded().shape == (10, 8, 4)
    np.testing.assert_array_equal(ds.padded(), raw["X"])
    with pytest.raises(IndexError):
        ds[10]


def test_observables_match_the_batch_function(qg_file: Path) -> None:
    ds = load_jets(qg_file)
    expected = jet_observables(np.load(qg_file)["X"])
    got = ds.observables(batch_size=3)  # several batches, concatenated in order
    assert set(got) == set(expected)
    for name, values in expected.items():
        np.testing.assert_allclose(got[name], values)
    assert got["multiplicity"].tolist() == [len(j) for j in ds]


def test_views_are_lazy_and_compose(qg_file: Path) -> None:
    ds = load_jets(qg_file)
    sub = ds[2:8]
    assert isinstance(sub, JetDataset)
    assert sub.indices.tolist() == [2, 3, 4, 5, 6, 7]
    assert sub._source is ds._source  # no copy of the data
    picked = sub[[4, 0, -1]]
    assert picked.indices.tolist() == [6, 2, 7]
    assert [j.index for j in picked] == [6, 2, 7]
    assert picked.labels.tolist() == [ds.labels[6], ds.labels[2], ds.labels[7]]
    assert [leading_pt(j) for j in picked] == [106.0, 102.0, 107.0]
    mask = ds.labels == 1
    quarks = ds[mask]
    assert quarks.indices.tolist() == [0, 3, 5, 8]
    assert set(quarks.labels.tolist()) == {1}
    assert len(ds[5:5]) == 0
    assert ds[5:5].padded().shape == (0, 8, 4)
    assert "6 of 10 jets" in repr(sub)
    assert repr(ds) == f"JetDataset(10 jets: 4 quark, 6 gluon; source={str(qg_file)!r})"
    with pytest.raises(IndexError):
        ds[[0, 10]]


def test_iter_batches_in_order(qg_file: Path) -> None:
    ds = load_jets(qg_file)[1:]
    batches = list(ds.iter_batches(4))
    assert [len(b) for b in batches] == [4, 4, 1]
    np.testing.assert_array_equal(np.concatenate(batches), np.load(qg_file)["X"][1:])
    jet_batches = list(ds.iter_batches(4, as_jets=True))
    assert [j.index for b in jet_batches for j in b] == list(range(1, 10))
    with pytest.raises(ValueError, match="batch size"):
        list(ds.iter_batches(0))


def test_balanced_subset(qg_file: Path) -> None:
    ds = load_jets(qg_file)  # 4 quark, 6 gluon
    sub = ds.balanced(6, seed=3)
    assert len(sub) == 6
    assert int(sub.labels.sum()) == 3
    assert sub.indices.tolist() == sorted(sub.indices.tolist())
    assert sub.indices.tolist() == ds.balanced(6, seed=3).indices.tolist()
    subsets = {tuple(ds.balanced(6, seed=s).indices.tolist()) for s in range(10)}
    assert len(subsets) > 1  # the seed matters
    with pytest.raises(ValueError, match="asked for 5 quark jets but there are only 4"):
        ds.balanced(10)
    with pytest.raises(ValueError, match="even number"):
        ds.balanced(5)
    with pytest.raises(ValueError, match="unlabelled"):
        dataset_from_arrays(make_jets(4, 3, seed=0)).balanced(2)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_balanced_subsets_with_the_same_seed_nest(seed: int) -> None:
    ds = load_sample()  # 2,000 quark and 2,000 gluon jets
    smaller: set[int] = set()
    for n in (2, 10, 100, 120, 1000, 4000):
        sub = ds.balanced(n, seed=seed)
        chosen = set(sub.indices.tolist())
        assert len(chosen) == n and int(sub.labels.sum()) == n // 2
        assert smaller <= chosen  # growing a subset keeps every jet already in it
        smaller = chosen
    assert set(ds.balanced(100, seed=seed).indices) != set(ds.balanced(100, seed=seed + 1).indices)
    view = ds[ds.indices % 3 == 0]  # nesting holds on any view too
    assert set(view.balanced(40, seed).indices) <= set(view.balanced(60, seed).indices)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 13])
def test_shards_are_disjoint_complete_and_stable(qg_folder: Path, n: int) -> None:
    ds = load_jets(qg_folder)  # 8 jets in 4 files
    parts = [ds.shard(k, n) for k in range(n)]
    assert np.concatenate([p.indices for p in parts]).tolist() == ds.indices.tolist()
    assert np.concatenate([p.labels for p in parts]).tolist() == ds.labels.tolist()
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    again = load_jets(qg_folder)  # the same file opened again: the same parts
    assert [again.shard(k, n).indices.tolist() for k in range(n)] == [
        p.indices.tolist() for p in parts
    ]
    for p in parts:  # each part reads its own jets
        assert [leading_pt(j) - 100 for j in p] == p.indices.tolist()


def test_shards_of_a_view_and_bad_parts() -> None:
    ds = load_sample().balanced(1000, seed=2)
    parts = [ds.shard(k, 7) for k in range(7)]
    assert sorted(np.concatenate([p.indices for p in parts]).tolist()) == ds.indices.tolist()
    assert sum(len(p) for p in parts) == 1000
    for k, n in [(-1, 3), (3, 3), (0, 0)]:
        with pytest.raises(ValueError, match=f"shard {k} of {n}"):
            ds.shard(k, n)


def test_jets_or_errors_reads_past_a_bad_jet(qg_folder: Path) -> None:
    path = qg_folder / "QG_jets_1.npz"
    X, y = np.load(path)["X"], np.load(path)["y"]
    X[1, 2] = [2.0, np.nan, 0.2, 22.0]
    np.savez_compressed(path, X=X, y=y)
    ds = load_jets(qg_folder)
    out = list(ds.jets_or_errors(size=3))
    assert len(out) == 8
    assert isinstance(out[4], ValueError)
    assert str(out[4]) == f"{path}: jet 1: non-finite value (nan or inf) in constituent row 2"
    assert [j.index for i, j in enumerate(out) if i != 4] == [0, 1, 2, 3, 5, 6, 7]
    with pytest.raises(ValueError, match="jet 1: non-finite"):
        list(ds)  # iterating still stops at it


def test_batches_of_wide_jets_hold_fewer_jets(monkeypatch) -> None:
    from vibe_jet_tagging.jets import dataset as data

    monkeypatch.setattr(data, "_BATCH_BYTES", 10 * 6 * 32)  # 10 padded jets of M = 6
    ds = dataset_from_arrays(make_jets(25, 6, seed=0))
    assert [len(b) for b in ds.iter_batches(100)] == [10, 10, 5]
    assert [len(b) for b in ds.iter_batches(4)] == [4] * 6 + [1]
    assert [len(b) for b in ds.iter_batches(100, as_jets=True)] == [10, 10, 5]
    np.testing.assert_array_equal(ds.padded(), np.concatenate(list(ds.iter_batches(7))))


# -- folders --------------------------------------------------------------------------------


def test_folder_in_natural_order_with_different_widths(qg_folder: Path) -> None:
    ds = load_jets(qg_folder)
    assert len(ds) == 8
    # Natural order: QG_jets, _1, _2, _10; each file's jets carry their global position.
    assert [leading_pt(j) - 100 for j in ds] == list(range(8))
    assert [j.index for j in ds] == list(range(8))
    assert ds.labels.tolist() == [i % 2 for i in range(8)]
    X = ds.padded()
    assert X.shape == (8, 7, 4)
    np.testing.assert_array_equal(X[5:6, :3], np.load(qg_folder / "QG_jets_2.npz")["X"])
    np.testing.assert_array_equal(X[6:8, :5], np.load(qg_folder / "QG_jets_10.npz")["X"])
    assert not X[6:8, 5:].any()
    assert ds[6] == Jet.from_array(np.load(qg_folder / "QG_jets_10.npz")["X"][0])


def test_folder_reads_x_lazily_one_file_at_a_time(qg_folder: Path) -> None:
    ds = load_jets(qg_folder)
    source = ds._source
    assert not source._blocks and not source._streams  # only labels and headers were read
    ds.observables()
    assert len(source._blocks) <= 4 and len(source._streams) <= 2
    assert list(source._streams) == [2, 3]  # the last two files stay open
    assert list(source._blocks) == [(0, 0), (1, 0), (2, 0), (3, 0)]  # (file, block)
    _ = ds[0]  # from the kept block: nothing opened again
    assert list(source._streams) == [2, 3]
    assert list(source._blocks)[-1] == (0, 0)  # least recently used first
    assert len(ds[6:7].padded()) == 1


def test_folder_with_two_data_sets_is_refused(qg_folder: Path) -> None:
    save_jets(qg_folder / "QG_jets_withbc_0.npz", make_jets(2, 3, seed=0), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match=re.escape(f"{qg_folder}: holds several data sets")):
        load_jets(qg_folder)


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no QG_jets"):
        load_jets(tmp_path)


# -- errors ---------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match=re.escape(f"{path}: no such file")):
        load_jets(path)


def _write(path: Path, **arrays: np.ndarray) -> Path:
    np.savez_compressed(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"jets": np.zeros((2, 3, 4))}, "no array 'X' in the file (found: jets)"),
        ({"X": np.zeros((2, 3))}, "X must have shape (N, M, 4)"),
        (
            {"X": np.zeros((2, 3, 5))},
            "X must have shape (N, M, 4) with columns (pt, y, phi, pdgid), got (2, 3, 5)",
        ),
        ({"X": np.zeros((2, 3, 4)), "y": np.zeros(3)}, "y has shape (3,) but X has 2 jets"),
        (
            {"X": np.zeros((3, 3, 4)), "y": np.array([1.0, 0.0, 0.5])},
            "jet 2: label 0.5 is not 1 (quark) or 0 (gluon)",
        ),
        ({"X": np.zeros((2, 3, 4)), "y": np.array([1.0, np.nan])}, "jet 1: label"),
    ],
)
def test_malformed_files_are_named(
    tmp_path: Path, arrays: dict[str, np.ndarray], message: str
) -> None:
    path = _write(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="^" + re.escape(f"{path}: {message}")):
        load_jets(path)


def test_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.npz"
    path.write_bytes(b"this is not a zip file at all")
    with pytest.raises(ValueError, match=re.escape(f"{path}: not a readable .npz file")):
        load_jets(path)
    truncated = tmp_path / "truncated.npz"
    np.savez_compressed(truncated, X=make_jets(50, 20, seed=0))
    truncated.write_bytes(truncated.read_bytes()[:300])
    with pytest.raises(ValueError, match=re.escape(str(truncated))):
        load_jets(truncated).padded()
    # Damage inside X's compressed data: the header and labels read, X itself does not.
    damaged = tmp_path / "damaged.npz"
    X = np.random.default_rng(0).uniform(1.0, 2.0, (200, 30, 4))
    np.savez_compressed(damaged, X=X, y=np.ones(200))
    data = bytearray(damaged.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 50] = bytes(b ^ 0xFF for b in data[middle : middle + 50])
    damaged.write_bytes(bytes(data))
    ds = load_jets(damaged)
    assert len(ds) == 200
    with pytest.raises(ValueError, match=re.escape(f"{damaged}: cannot read X")):
        ds.padded()


def test_bad_jet_is_named_by_file_and_index(qg_folder: Path) -> None:
    path = qg_folder / "QG_jets_1.npz"
    X, y = np.load(path)["X"], np.load(path)["y"]
    X[1, 2] = [-3.0, 0.1, 0.2, 22.0]
    np.savez_compressed(path, X=X, y=y)
    ds = load_jets(qg_folder)
    expected = f"{path}: jet 1: negative pt -3 in constituent row 2"
    assert ds[3].index == 3  # the good jets of the file still load
    for read in (lambda: ds[4], ds.padded, ds.observables, lambda: list(ds)):
        with pytest.raises(ValueError, match="^" + re.escape(expected)):
            read()
    X[1, 2] = [2.0, np.nan, 0.2, 22.0]
    np.savez_compressed(path, X=X, y=y)
    with pytest.raises(ValueError, match=re.escape(f"{path}: jet 1: non-finite value")):
        load_jets(qg_folder)[4]


def test_empty_jet_is_an_error(tmp_path: Path) -> None:
    X = make_jets(3, 4, seed=0)
    X[2] = 0.0
    path = _write(tmp_path / "QG_jets.npz", X=X)
    ds = load_jets(path)
    assert ds.labels is None
    assert len(ds[:2].padded()) == 2
    with pytest.raises(ValueError, match=re.escape(f"{path}: jet 2: no constituents")):
        ds.padded()


def test_labels_in_some_files_only(qg_folder: Path) -> None:
    _write(qg_folder / "QG_jets_3.npz", X=make_jets(2, 3, seed=0))
    with pytest.raises(ValueError, match=re.escape("QG_jets_3.npz: no labels 'y'")):
        load_jets(qg_folder)


# -- metadata, arrays, npy --------------------------------------------------------------------


def test_metadata_round_trip(tmp_path: Path) -> None:
    X = make_jets(4, 5, seed=2)
    y = np.array([1.0, 0.0, 1.0, 0.0])
    meta = {"seed": 7, "cuts": {"jet_pt_min": 500.0}, "versions": {"numpy": np.__version__}}
    path = save_jets(tmp_path / "out" / "jets.npz", X, y, meta)
    raw = np.load(path)
    assert raw["X"].dtype == np.float64
    assert raw["y"].dtype == np.float64
    assert raw["meta"].dtype.kind == "U"  # a plain string: no pickle needed
    ds = load_jets(path)
    assert ds.metadata == meta
    np.testing.assert_array_equal(ds.padded(), X)
    assert ds.labels.tolist() == [1, 0, 1, 0]
    # In a folder, every file's metadata is kept in order.
    folder = tmp_path / "folder"
    save_jets(folder / "QG_jets.npz", X, y, meta)
    save_jets(folder / "QG_jets_1.npz", X, y, None)
    assert load_jets(folder).metadata == {"files": [meta, None]}
    with pytest.raises(ValueError, match=r"must end in \.npz"):
        save_jets(tmp_path / "jets.txt", X, y)


def test_dataset_from_arrays() -> None:
    X = make_jets(4, 5, seed=4)
    ds = dataset_from_arrays(X, [True, False, False, True])
    assert ds.source == "array"
    assert ds.labels.tolist() == [1, 0, 0, 1]
    assert ds[2] == Jet.from_array(X[2])
    ragged = dataset_from_arrays([X[0][X[0, :, 0] > 0], X[1][X[1, :, 0] > 0][:2]], [1, 0])
    assert ragged[0] == Jet.from_array(X[0])
    assert len(ragged[1]) == 2
    with pytest.raises(ValueError, match="y has shape"):
        dataset_from_arrays(X, [1, 0])
    with pytest.raises(ValueError, match=r"X must have shape \(N, M, 4\)"):
        dataset_from_arrays(np.zeros((4, 4)))
    X[1, :, 0] *= -1
    with pytest.raises(ValueError, match=r"^jet 1: negative pt"):
        dataset_from_arrays(X)[1]


def test_npy_is_memory_mapped(tmp_path: Path) -> None:
    X = make_jets(5, 6, seed=5)
    path = tmp_path / "jets.npy"
    np.save(path, X)
    ds = load_jets(path)
    assert isinstance(ds._source.X, np.memmap)
    assert ds.labels is None
    np.testing.assert_array_equal(ds[1:3].padded(), X[1:3])
    assert "unlabelled" in repr(ds)
