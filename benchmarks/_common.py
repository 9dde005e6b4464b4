"""Shared pieces of the benchmarks: jets, the server's CPU, result files, tables.

Every benchmark talks to the emulated vLLM server (a physics heuristic, not a language model)
running in a child process (``EmulatedServer(process=True)``), so the client measured here and
the server never share a GIL.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, overload

import numpy as np

from vibe_jet_tagging.jets import PT, Jet
from vibe_jet_tagging.jets.dataset import JetDataset, dataset_from_arrays, load_sample

RESULTS = Path(__file__).resolve().parent / "results"


class PerturbedJets(Sequence[Jet]):
    """``n`` distinct jets made from the bundled sample, built when read (nothing held).

    Jet ``i`` is sample jet ``(offset + i) % 4000`` with every pt scaled by
    ``1 + 1e-6 * (offset + i)``, so each has its own content key (and cache key) while it
    looks like a real quark or gluon jet to the emulated server.
    """

    def __init__(self, n: int, offset: int = 0) -> None:
        sample = load_sample()
        self._rows = sample.padded()
        self._labels = np.asarray(sample.labels)
        self.n = n
        self.offset = offset

    def __len__(self) -> int:
        return self.n

    @overload
    def __getitem__(self, i: int) -> Jet: ...
    @overload
    def __getitem__(self, i: slice) -> list[Jet]: ...

    def __getitem__(self, i: int | slice) -> Jet | list[Jet]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.n))]
        if not 0 <= i < self.n:
            raise IndexError(i)
        k = self.offset + i
        rows = self._rows[k % len(self._rows)].copy()
        rows[:, PT] *= 1 + 1e-6 * k
        return Jet.from_array(rows, index=i)

    def dataset(self) -> JetDataset:
        """All ``n`` jets as a :class:`JetDataset` over one padded array, as a physicist's file
        gives them (the same jets, built as ``abatch`` reads them: a block at a time)."""
        k = self.offset + np.arange(self.n)
        rows = self._rows[k % len(self._rows)]
        rows[:, :, PT] *= (1 + 1e-6 * k)[:, None]
        return dataset_from_arrays(rows, self._labels[k % len(self._labels)])

    def label(self, i: int) -> int:
        """The truth label of jet ``i`` (1 quark, 0 gluon)."""
        return int(self._labels[(self.offset + i) % len(self._labels)])

    def __iter__(self) -> Iterator[Jet]:
        for i in range(self.n):
            yield self[i]


def server_cpu(pid: int) -> float:
    """User plus system CPU seconds of process ``pid`` so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_pid(server: Any) -> int:
    """The pid of an ``EmulatedServer(process=True)``."""
    proc = server._proc
    assert proc is not None, "the server must run in a process"
    return int(proc.pid)


def sdk_payload(tagger: Any, jet: Jet) -> dict[str, Any]:
    """The chain's request for ``jet`` as an ``AsyncOpenAI`` user passes it to ``create``.

    The chain's own payload (:func:`vibe_jet_tagging._compat.langchain.request_payload`:
    messages, constraint, effort, limits);
    ``ChatVLLM`` hands the messages to the SDK in ``extra_body`` (sparing the SDK's walk of
    them), which a bare SDK user does not do: they go back into ``messages`` here.
    """
    from vibe_jet_tagging._compat.langchain import request_payload

    payload = request_payload(tagger.model, tagger.prompt.messages(jet), **tagger.client.options())
    extra = dict(payload.pop("extra_body", None) or {})
    payload["messages"] = extra.pop("messages", None) or payload["messages"]
    if extra:
        payload["extra_body"] = extra
    return payload


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far [MB] (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        cpu = platform.processor()
    versions = {}
    for package in ("openai", "langchain-core", "langchain-openai", "httpx", "aiohttp"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "load_average_at_start": os.getloadavg(),
        "versions": versions,
    }


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with ``--quick`` (smaller sizes, for a smoke run)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    return p


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain fixed-width table."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value == 0 or 0.01 <= abs(value) < 1e5:
            return f"{value:.3g}" if abs(value) < 10 else f"{value:,.1f}"
        return f"{value:.3g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def save(name: str, params: dict[str, Any], rows: list[dict[str, Any]], **extra: Any) -> Path:
    """Write ``benchmarks/results/<name>.json`` (``results/quick/`` with ``--quick``)."""
    folder = RESULTS / "quick" if "--quick" in sys.argv[1:] else RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    doc = {
        "benchmark": name,
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": machine(),
        "params": params,
        "rows": rows,
        **extra,
    }
    path.write_text(json.dumps(doc, indent=2, default=float) + "\n")
    return path
