"""Generate quark and gluon jets with Pythia 8 and FastJet (the ``generate`` extra).

The recipe is the one of the EnergyFlow "Pythia8 Quark and Gluon Jets" benchmark (Komiske,
Metodiev, Thaler): pp collisions at 14 TeV, ``qg -> Z(-> nu nu) q`` for quark jets and
``q qbar -> Z(-> nu nu) g`` for gluon jets (c and b hard partons vetoed unless ``with_bc``),
hadronisation and multiparton interactions on, Pythia's default tune; the final-state particles
other than neutrinos are clustered with anti-kT, R = 0.4, and the leading jet is kept when
500 < pT < 550 GeV and |y| < 1.7. The generation-level pT-hat window is 350-800 GeV: a tighter
one (450-650) biases the quark sample toward a too separable multiplicity.

Each jet is stored as EnergyFlow stores it: an ``(M, 4)`` block of ``(pt, y, phi, pdgid)``
rows, zero-padded, not sorted by pt, with ``phi`` kept within pi of the jet axis, the jet axis
itself in ``[0, 2 pi)`` (so constituent azimuths span about ``-0.4 ... 2 pi + 0.4``).

Reproducibility: the jets of each label are produced in chunks of :data:`CHUNK_JETS`; chunk
``k`` of label ``l`` runs a freshly initialised Pythia seeded from ``SeedSequence(seed,
spawn_key=(l, k))`` (a ``Random:seed`` in 1 ... 900,000,000), and the chunks are put together
in chunk order, then shuffled by a permutation drawn from ``SeedSequence(seed,
spawn_key=(2,))``. What is guaranteed: for the same ``(n_jets, seed, with_bc)`` and the same
installed builds of pythia8mc, fastjet, awkward and numpy on the same platform, ``X`` and ``y``
are byte-identical whatever the number of workers and however the chunks are scheduled
(tested with 1 and 2 workers). Not guaranteed: identical jets across Pythia/FastJet versions or
CPU architectures (floating-point details change the event record), nor identical ``.npz``
files (zip members carry timestamps; the arrays inside are identical). Also, the quark (gluon)
jets of a run asking for ``n`` jets are the first ones of a run asking for more with the same
seed; only the final shuffle depends on ``n_jets``.

Workers are separate processes started with the ``spawn`` method (safe with threads, e.g. a
progress bar), one Pythia alive per worker at a time; their standard output (file descriptor 1,
where Pythia and FastJet print banners and messages from C++) goes to ``/dev/null``. A script
calling :func:`generate_jets` must do so under ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import math
import os
import queue
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "CHUNK_JETS",
    "CUTS",
    "PROCESSES",
    "PYTHIA_SETTINGS",
    "generate_jets",
    "save_jets",
]

logger = logging.getLogger(__name__)

CHUNK_JETS = 100
"""Jets per work unit (one fresh Pythia each); fixed so results do not depend on the workers."""
BATCH_EVENTS = 100
"""Events per ``pythia.nextBatch`` call (about 9 % of them give an accepted jet)."""
_MAX_EVENTS_WITHOUT_JET = 20_000
_PYTHIA_SEED_MAX = 900_000_000

PROCESSES: dict[int, str] = {
    1: "WeakBosonAndParton:qg2gmZq",
    0: "WeakBosonAndParton:qqbar2gmZg",
}
"""Pythia process switched on for each label (1 = quark, 0 = gluon)."""

PYTHIA_SETTINGS: tuple[str, ...] = (
    "Beams:eCM = 14000.",
    "WeakZ0:gmZmode = 2",
    "23:onMode = off",
    "23:onIfAny = 12 14 16",
    "PhaseSpace:pTHatMin = 350.",
    "PhaseSpace:pTHatMax = 800.",
    "PartonLevel:MPI = on",
    "HadronLevel:all = on",
    "Print:quiet = on",
    "Random:setSeed = on",
)
"""Settings common to both processes (plus the process switch and ``Random:seed``)."""

CUTS: dict[str, float] = {
    "jet_r": 0.4,
    "jet_pt_min": 500.0,
    "jet_pt_max": 550.0,
    "jet_abs_y_max": 1.7,
}
"""Jet definition (anti-kT radius) and the leading-jet selection."""

_NEUTRINOS = (12, 14, 16)

ProgressCallback = Callable[[int], Any]


@dataclass(frozen=True)
class _Task:
    """One work unit: ``n_jets`` jets of one label from one freshly seeded Pythia."""

    label: int
    chunk: int
    n_jets: int
    pythia_seed: int
    with_bc: bool


def _pythia_seed(seed: int, label: int, chunk: int) -> int:
    """Pythia seed (1 ... 900,000,000) of chunk ``chunk`` of ``label``, derived from ``seed``."""
    state = np.random.SeedSequence(seed, spawn_key=(label, chunk)).generate_state(1, np.uint64)
    return int(state[0] % _PYTHIA_SEED_MAX) + 1


def _tasks(n_jets: int, seed: int, with_bc: bool) -> list[_Task]:
    """The deterministic split of the work: chunks of quark and gluon jets, interleaved."""
    counts = {1: n_jets - n_jets // 2, 0: n_jets // 2}
    per_label = {
        label: [
            _Task(
                label, k, min(CHUNK_JETS, n - k * CHUNK_JETS), _pythia_seed(seed, label, k), with_bc
            )
            for k in range(math.ceil(n / CHUNK_JETS))
        ]
        for label, n in counts.items()
    }
    tasks: list[_Task] = []
    for k in range(max(len(v) for v in per_label.values())):
        tasks.extend(per_label[label][k] for label in (1, 0) if k < len(per_label[label]))
    return tasks


# -- worker side ----------------------------------------------------------------------------

_progress_queue: Any = None


def _init_worker(progress_queue: Any) -> None:
    """Worker initialiser: keep the progress queue, silence C++ printing on stdout (fd 1)."""
    global _progress_queue
    _progress_queue = progress_queue
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


def _make_pythia(label: int, pythia_seed: int) -> Any:
    """A Pythia instance initialised for ``label``'s process, without banner or printing."""
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for line in (*PYTHIA_SETTINGS, f"{PROCESSES[label]} = on", f"Random:seed = {pythia_seed}"):
        if not pythia.readString(line):
            raise RuntimeError(f"Pythia rejected the setting {line!r}")
    if not pythia.init():
        raise RuntimeError(f"Pythia failed to initialise (label {label}, seed {pythia_seed})")
    return pythia


def _select_jets(events: Any, with_bc: bool, jet_def: Any) -> list[NDArray[np.float64]]:
    """Accepted leading jets of a batch of Pythia events, each an ``(n, 4)`` array."""
    import awkward as ak
    import fastjet

    prt = events["prt"]
    absid = abs(prt.id)
    final = prt[(prt.status > 0) & (absid != 12) & (absid != 14) & (absid != 16)]
    # Outgoing parton of the hard process (status -23 once showered): the jet's flavour.
    hard = prt[(prt.status == -23) & ((absid <= 6) | (absid == 21))]
    flavour = ak.to_numpy(ak.fill_none(ak.firsts(abs(hard.id)), 0))

    px, py, pz, e = final.p.px, final.p.py, final.p.pz, final.p.e
    cs = fastjet.ClusterSequence(ak.zip({"px": px, "py": py, "pz": pz, "E": e}), jet_def)
    jets = cs.inclusive_jets()
    cidx = cs.constituent_index()
    jet_pt = np.hypot(jets.px, jets.py)
    lead = ak.argmax(jet_pt, axis=1, keepdims=True)
    lead_jet = ak.firsts(jets[lead])
    lead_pt = ak.to_numpy(ak.fill_none(ak.firsts(jet_pt[lead]), 0.0))
    lead_e = ak.to_numpy(ak.fill_none(lead_jet.E, 1.0))
    lead_pz = ak.to_numpy(ak.fill_none(lead_jet.pz, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        lead_y = 0.5 * np.log((lead_e + lead_pz) / (lead_e - lead_pz))
    accept = (
        (lead_pt > CUTS["jet_pt_min"])
        & (lead_pt < CUTS["jet_pt_max"])
        & (np.abs(lead_y) < CUTS["jet_abs_y_max"])
    )
    if not with_bc:
        accept &= (flavour != 4) & (flavour != 5)
    if not accept.any():
        return []
    sel = np.flatnonzero(accept)
    members = ak.firsts(cidx[lead][sel])
    parts = final[sel][members]
    jet_phi = np.mod(
        np.arctan2(ak.to_numpy(lead_jet.py[sel]), ak.to_numpy(lead_jet.px[sel])), 2 * np.pi
    )

    counts = ak.to_numpy(ak.num(parts))
    flat = ak.flatten(parts)
    fpx, fpy = ak.to_numpy(flat.p.px), ak.to_numpy(flat.p.py)
    fpz, fe = ak.to_numpy(flat.p.pz), ak.to_numpy(flat.p.e)
    pt = np.hypot(fpx, fpy)
    y = 0.5 * np.log((fe + fpz) / (fe - fpz))
    axis = np.repeat(jet_phi, counts)
    dphi = np.arctan2(fpy, fpx) - axis
    phi = axis + (np.pi - np.mod(np.pi - dphi, 2 * np.pi))  # within pi of the jet axis
    pid = ak.to_numpy(flat.id).astype(np.float64)
    rows = np.stack([pt, y, phi, pid], axis=1)
    return np.split(rows, np.cumsum(counts)[:-1])


def _run_task(task: _Task) -> tuple[_Task, NDArray[np.float64], int]:
    """Generate one chunk; returns the task, its padded ``(n, M, 4)`` jets and events tried."""
    import fastjet

    pythia = _make_pythia(task.label, task.pythia_seed)
    jet_def = fastjet.JetDefinition(fastjet.antikt_algorithm, CUTS["jet_r"])
    jets: list[NDArray[np.float64]] = []
    events = 0
    since_last = 0
    while len(jets) < task.n_jets:
        batch = pythia.nextBatch(BATCH_EVENTS)
        n_events = len(batch)
        events += n_events
        since_last += n_events
        new = _select_jets(batch, task.with_bc, jet_def)[: task.n_jets - len(jets)]
        if new:
            since_last = 0
            jets.extend(new)
            if _progress_queue is not None:
                _progress_queue.put(len(new))
        elif since_last >= _MAX_EVENTS_WITHOUT_JET:
            raise RuntimeError(
                f"no jet passed the cuts in {since_last} events (label {task.label}); "
                "check the Pythia settings"
            )
    return task, _pad(jets), events


def _pad(jets: list[NDArray[np.float64]], width: int | None = None) -> NDArray[np.float64]:
    """Stack ``(n_i, 4)`` arrays into a zero-padded ``(len, width, 4)`` array."""
    width = max((len(j) for j in jets), default=0) if width is None else width
    out = np.zeros((len(jets), width, 4), dtype=np.float64)
    for i, j in enumerate(jets):
        out[i, : len(j)] = j
    return out


# -- parent side ----------------------------------------------------------------------------


def _versions() -> dict[str, str | None]:
    """Versions of the packages the generated jets depend on."""
    out: dict[str, str | None] = {}
    for dist in ("pythia8mc", "fastjet", "awkward", "numpy", "vibe-jet-tagging"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    out["python"] = sys.version.split()[0]
    return out


def generate_jets(
    n_jets: int,
    seed: int,
    *,
    workers: int | None = None,
    with_bc: bool = False,
    progress: ProgressCallback | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], dict[str, Any]]:
    """Generate ``n_jets`` jets, half quark and half gluon (the odd one out is a quark).

    Runs one Pythia at a time in each of ``workers`` processes (default: all cores; ``spawn``
    start method), see the module docstring for what the ``seed`` guarantees. ``progress``, if
    given, is called in this process with the number of jets done so far, as workers report.

    Returns ``(X, y, metadata)``: ``X`` of shape ``(n_jets, M, 4)`` (``M`` the largest
    multiplicity), ``y`` float64 labels (1.0 quark, 0.0 gluon) in a seeded random order, and a
    JSON-serialisable dict of the settings and package versions.
    """
    try:
        import fastjet  # noqa: F401
        import pythia8mc  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "generating jets needs the 'generate' extra: pip install 'vibe-jet-tagging[generate]'"
        ) from exc
    import multiprocessing

    if isinstance(n_jets, bool) or int(n_jets) != n_jets or n_jets < 2:
        raise ValueError(f"n_jets must be an integer >= 2, got {n_jets!r}")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    n_jets, seed = int(n_jets), int(seed)
    tasks = _tasks(n_jets, seed, with_bc)
    if workers is not None and (
        isinstance(workers, bool) or int(workers) != workers or workers < 1
    ):
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    n_workers = min(workers or os.cpu_count() or 1, len(tasks))
    logger.info(
        "generating %d jets with seed %d in %d chunks on %d workers",
        n_jets,
        seed,
        len(tasks),
        n_workers,
    )

    ctx = multiprocessing.get_context("spawn")
    progress_queue = ctx.Queue()
    results: dict[tuple[int, int], tuple[NDArray[np.float64], int]] = {}
    done = 0
    start = time.perf_counter()

    def drain(block: bool) -> None:
        nonlocal done
        while True:
            try:
                done += progress_queue.get(timeout=0.2) if block else progress_queue.get_nowait()
            except queue.Empty:
                return
            block = False
            if progress is not None:
                progress(done)

    pool = ProcessPoolExecutor(
        n_workers, mp_context=ctx, initializer=_init_worker, initargs=(progress_queue,)
    )
    pending: set[Future[Any]] = {pool.submit(_run_task, t) for t in tasks}
    try:
        while pending:
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
            for fut in finished:
                task, X, events = fut.result()
                results[(task.label, task.chunk)] = (X, events)
            drain(block=False)
    except BrokenProcessPool as exc:
        pool.shutdown(wait=False, cancel_futures=True)
        raise RuntimeError(
            "a jet generation worker process died before finishing. Workers are started "
            "with the 'spawn' method, which re-imports the main module: a script calling "
            "generate_jets must do so under `if __name__ == '__main__':`"
        ) from exc
    except BaseException:
        # An error in a worker or the progress callback, or Ctrl-C: stop without waiting for
        # the chunks still running.
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            with contextlib.suppress(Exception):
                process.terminate()
        raise
    pool.shutdown(wait=True)
    drain(block=False)
    if progress is not None and done != n_jets:  # some reports may still be in flight
        progress(n_jets)
    elapsed = time.perf_counter() - start

    per_label: dict[int, list[NDArray[np.float64]]] = {1: [], 0: []}
    events = {1: 0, 0: 0}
    for task in tasks:
        X, ev = results[(task.label, task.chunk)]
        per_label[task.label].append(X)
        events[task.label] += ev
    width = max(x.shape[1] for xs in per_label.values() for x in xs)
    blocks = [
        np.pad(x, ((0, 0), (0, width - x.shape[1]), (0, 0)))
        for label in (1, 0)
        for x in per_label[label]
    ]
    X_all = np.concatenate(blocks)
    y_all = np.concatenate(
        [np.full(sum(len(x) for x in per_label[label]), float(label)) for label in (1, 0)]
    )
    order = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2,))).permutation(n_jets)
    X_all, y_all = np.ascontiguousarray(X_all[order]), y_all[order]
    logger.info(
        "generated %d jets in %.1f s (%.1f jets/s)", n_jets, elapsed, n_jets / max(elapsed, 1e-9)
    )
    metadata: dict[str, Any] = {
        "generator": "vibe_jet_tagging.jets.generate.generate_jets",
        "n_jets": n_jets,
        "n_quark": int((y_all == 1).sum()),
        "n_gluon": int((y_all == 0).sum()),
        "seed": seed,
        "with_bc": with_bc,
        "processes": {"quark": PROCESSES[1], "gluon": PROCESSES[0]},
        "pythia_settings": list(PYTHIA_SETTINGS),
        "seeding": "Random:seed per chunk from numpy SeedSequence(seed, spawn_key=(label, chunk))",
        "chunk_jets": CHUNK_JETS,
        "cuts": dict(CUTS),
        "jet_algorithm": "anti-kt (FastJet), E-scheme",
        "particles": "final state, neutrinos excluded",
        "columns": ["pt", "y", "phi", "pdgid"],
        "phi": "within pi of the jet axis; jet axis in [0, 2 pi)",
        "labels": {"1": "quark", "0": "gluon"},
        "events_generated": {"quark": events[1], "gluon": events[0]},
        "versions": _versions(),
    }
    return X_all, y_all, metadata


def save_jets(
    path: str | os.PathLike[str],
    X: NDArray[np.float64],
    y: NDArray[np.floating[Any]] | None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``X`` (float64), ``y`` (float64) and ``meta`` (a JSON string) to a compressed npz.

    The file is in EnergyFlow's quark/gluon format, readable by
    :func:`vibe_jet_tagging.jets.dataset.load_jets` (which exposes ``meta`` as ``dataset.metadata``)
    and by plain ``numpy.load``. The parent folder is created; returns the path written.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"{path}: the output file must end in .npz")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 3 or X.shape[2] != 4:
        raise ValueError(f"X must have shape (N, M, 4), got {X.shape}")
    arrays: dict[str, Any] = {"X": X}
    if y is not None:
        y = np.asarray(y, dtype=np.float64)
        if y.shape != (len(X),):
            raise ValueError(f"y must have shape ({len(X)},), got {y.shape}")
        arrays["y"] = y
    if metadata is not None:
        arrays["meta"] = np.array(json.dumps(metadata, sort_keys=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
    logger.info("wrote %d jets to %s", len(X), path)
    return path
