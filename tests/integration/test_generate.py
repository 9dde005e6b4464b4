"""Pythia + FastJet generation: reproducibility, the cuts, the format (needs the extra)."""

from __future__ import annotations

import multiprocessing
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")

from vibe_jet_tagging.jets import jet_observables
from vibe_jet_tagging.jets.dataset import load_jets
from vibe_jet_tagging.jets.generate import _tasks, generate_jets, save_jets

pytestmark = pytest.mark.generate

NEUTRINOS = {12, 14, 16}


@pytest.fixture(scope="module")
def six() -> tuple[np.ndarray, np.ndarray, dict]:
    return generate_jets(6, 11, workers=2)


@pytest.mark.slow
def test_same_seed_same_jets_whatever_the_workers(six: tuple[np.ndarray, np.ndarray, dict]) -> None:
    X, y, _ = six
    X1, y1, _ = generate_jets(6, 11, workers=1)
    np.testing.assert_array_equal(X, X1)
    np.testing.assert_array_equal(y, y1)
    X2, _, _ = generate_jets(6, 12, workers=2)
    assert X2.shape != X.shape or not np.array_equal(X2, X)


def test_jets_pass_the_cuts_and_hold_no_neutrinos(six: tuple[np.ndarray, np.ndarray, dict]) -> None:
    X, y, meta = six
    assert X.dtype == np.float64
    assert X.ndim == 3
    assert X.shape[0] == 6
    assert X.shape[2] == 4
    assert sorted(y.tolist()) == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    obs = jet_observables(X)
    assert ((obs["pt"] > 500) & (obs["pt"] < 550)).all(), obs["pt"]
    assert (np.abs(obs["rapidity"]) < 1.7).all(), obs["rapidity"]
    real = X[..., 0] > 0
    pids = np.abs(X[..., 3][real]).astype(int)
    assert not set(pids.tolist()) & NEUTRINOS
    assert (pids > 0).all()
    assert real.sum(axis=1).min() >= 2
    assert real[:, -1].any()  # padded to the largest multiplicity, no more
    # phi within pi of the jet axis, which lies in [0, 2 pi)
    axis = np.mod(obs["phi"], 2 * np.pi)
    assert (np.abs(X[..., 2] - axis[:, None])[real] <= np.pi).all()
    assert meta["n_quark"] == 3
    assert meta["n_gluon"] == 3
    assert meta["seed"] == 11
    assert meta["versions"]["pythia8mc"]


def test_the_work_split_does_not_depend_on_anything_but_the_request() -> None:
    tasks = _tasks(250, 5, with_bc=False)
    assert [(t.label, t.chunk, t.n_jets) for t in tasks] == [
        (1, 0, 100),
        (0, 0, 100),
        (1, 1, 25),
        (0, 1, 25),
    ]
    assert len({t.pythia_seed for t in tasks}) == 4
    assert all(1 <= t.pythia_seed <= 900_000_000 for t in tasks)
    # The seed of a chunk does not depend on how many jets are asked for.
    assert [t.pythia_seed for t in _tasks(1000, 5, with_bc=False)[:4]] == [
        t.pythia_seed for t in tasks
    ]
    assert [t.pythia_seed for t in _tasks(250, 6, with_bc=False)] != [t.pythia_seed for t in tasks]


def test_progress_is_reported() -> None:
    seen: list[int] = []
    generate_jets(4, 3, workers=2, progress=seen.append)
    assert seen
    assert seen == sorted(seen)
    assert seen[-1] == 4


def test_save_and_load_round_trip(six: tuple[np.ndarray, np.ndarray, dict], tmp_path: Path) -> None:
    X, y, meta = six
    ds = load_jets(save_jets(tmp_path / "jets.npz", X, y, meta))
    np.testing.assert_array_equal(ds.padded(), X)
    assert ds.labels.tolist() == y.astype(int).tolist()
    assert ds.metadata == meta


def test_cli_generate(tmp_path: Path) -> None:
    out = tmp_path / "jets.npz"
    code = "import sys; from vibe_jet_tagging.cli import main; sys.exit(main())"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "generate",
            "--jets",
            "4",
            "--seed",
            "1",
            "-o",
            str(out),
            "-w",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    # The result on stdout, the progress on stderr; Pythia's and FastJet's banners stay out.
    [line] = proc.stdout.splitlines()
    assert line.startswith("wrote 4 jets (2 quark, 2 gluon")
    assert "wrote" not in proc.stderr
    ds = load_jets(out)
    assert len(ds) == 4
    assert ds.metadata["seed"] == 1


def test_a_failing_progress_callback_stops_the_workers_at_once() -> None:
    def fail(done: int) -> None:
        raise KeyError("callback failed")

    with pytest.raises(KeyError, match="callback failed"):
        generate_jets(400, 1, workers=2, progress=fail)  # about 30 s if it ran to the end
    # The workers were stopped (terminated), not left to finish their chunks: no clock.
    workers = multiprocessing.active_children()
    for worker in workers:
        worker.join()
        # The pool's own thread may reap a worker first (our join then sees no status): its
        # exit code lands a moment later. No deadline: pytest-timeout catches a hang.
        while worker.exitcode is None:
            time.sleep(0.01)
    assert all(w.exitcode == -signal.SIGTERM for w in workers), [w.exitcode for w in workers]
    assert not multiprocessing.active_children()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_jets": 1, "seed": 0}, "n_jets must be an integer >= 2"),
        ({"n_jets": 4, "seed": -1}, "seed must be a non-negative integer"),
        ({"n_jets": 4, "seed": 0, "workers": 0}, "workers must be an integer >= 1"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_jets(**kwargs)
