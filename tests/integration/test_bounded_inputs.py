"""``vjt tag`` on hostile files: a decompression bomb and a forged header, in child processes.

The peak memory of the command is measured by a wrapper process (``getrusage`` of its
children), never by timing. The bomb is written here in pieces: it never exists in memory.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest

from vibe_jet_tagging.jets.dataset import load_sample

# Runs the command given as arguments; prints the peak RSS (kB) of it and its children.
MEASURE = """
import resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, capture_output=True, text=True)
sys.stderr.write(proc.stderr)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(proc.returncode)
"""


def vjt(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``vjt ARGS`` under the measuring wrapper; stdout is the peak RSS in kB."""
    command = [sys.executable, "-m", "vibe_jet_tagging.cli", *map(str, args)]
    return subprocess.run(
        [sys.executable, "-c", MEASURE, *command],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=240,
        check=False,
    )


def write_member(
    zf: zipfile.ZipFile, name: str, shape: tuple[int, ...], chunks: Iterable[bytes]
) -> None:
    """An ``.npy`` member whose header says ``shape`` (float64) and whose data is ``chunks``."""
    header = {"descr": "<f8", "fortran_order": False, "shape": shape}
    with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
        np.lib.format.write_array_header_1_0(f, header)
        for chunk in chunks:
            f.write(chunk)


def zeros(nbytes: int, piece: int = 16 << 20) -> Iterable[bytes]:
    block = bytes(piece)
    while nbytes > 0:
        yield block[: min(nbytes, piece)]
        nbytes -= piece


@pytest.mark.slow
def test_tag_limit_2_on_a_decompression_bomb_stays_small(tmp_path: Path) -> None:
    n, width = 75_000, 1_000  # X: 2.4 GB of float64 once decompressed
    real = load_sample()[:2]
    head = np.zeros((2, width, 4))
    head[:, : real.width] = real.padded()
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        write_member(zf, "X", (n, width, 4), [head.tobytes(), *zeros((n - 2) * width * 32)])
        write_member(zf, "y", (n,), [np.resize(real.labels, n).astype("<f8").tobytes()])
    assert path.stat().st_size < 20e6  # ~10 MB on disk for 2.4 GB of data

    out = tmp_path / "out.jsonl"
    args = ["tag", path, "--emulate", "--limit", "2", "--no-cache", "-o", out]
    proc = vjt(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    peak = int(proc.stdout.split()[-1]) * 1024
    assert peak < 500e6, f"peak RSS {peak / 1e6:.0f} MB for vjt tag --limit 2 on a 2.4 GB bomb"
    assert "2 jets (0 kept from before, 0 from the cache, 2 asked), 0 without label" in proc.stderr


def test_tag_on_a_forged_header_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "forged.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        write_member(zf, "X", (1, 10**9, 4), [bytes(64)])  # claims 32 GB, holds 64 bytes
        write_member(zf, "y", (1,), [np.ones(1).tobytes()])
    assert path.stat().st_size < 1000
    proc = vjt("tag", path, "--emulate", "-o", tmp_path / "out.jsonl", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        f"error: {path}: X is damaged or forged: its header declares shape (1, 1000000000, 4) "
        "float64 (32.0 GB) but the file holds 64 bytes"
    ]
    assert int(proc.stdout.split()[-1]) * 1024 < 500e6
    assert not (tmp_path / "out.jsonl").exists()
