"""Tagging on a Dask cluster: one tagger per worker process, one results file per partition.

Needs the ``dask`` extra (``pip install 'vibe-jet-tagging[dask]'``). Each task gets plain data
(a :class:`TaggerSpec` and its partition's jets, or where to read them), builds its process's
tagger once, and writes its rows to ``out_dir/part-NNNNN.jsonl`` as ``vjt tag`` would. Inside a
task the tagger keeps up to ``max_concurrency`` requests in flight (64 by default), and a worker
with several threads runs several partitions at once: the servers see many requests per worker,
not one. The files merge like shard outputs (``vjt merge`` / ``vjt evaluate``), and a
partition run again (a retried task, a rerun) keeps the rows it already has.

>>> from dask.distributed import Client                          # doctest: +SKIP
>>> client = Client("tcp://scheduler:8786")                      # doctest: +SKIP
>>> spec = TaggerSpec("openai/gpt-oss-120b", base_url=[...])     # doctest: +SKIP
>>> summaries = tag_dataset(load_jets("QG_jets.npz"), spec, "out/", partition_size=2000)
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import numpy as np

from ...jets.dataset import JetDataset, load_jets, load_sample
from ...jets.jet import Jet
from .partition import PartitionSummary, backend_of, tag_to_jsonl
from .spec import TaggerSpec

__all__ = ["partition_path", "tag_bag", "tag_dataset", "tag_items"]


def partition_path(out_dir: str | os.PathLike[str], k: int) -> Path:
    """The results file of partition ``k``."""
    return Path(out_dir) / f"part-{k:05d}.jsonl"


@dataclass
class _DatasetPart:
    """A partition of a data set: jets read on the worker (from a file) or carried along."""

    k: int
    source: str
    indices: np.ndarray
    truths: np.ndarray | None
    path: str | None = None
    """A file or folder (or ``"sample"``) the worker reads the jets from."""
    jets: list[Jet | Exception] | None = None
    """The jets themselves, for a data set that lives in memory."""

    def read(self) -> list[Jet | Exception]:
        if self.jets is not None:
            return self.jets
        dataset = load_sample() if self.path == "sample" else load_jets(str(self.path))
        return list(dataset[self.indices].jets_or_errors())


def _tag_part(part: _DatasetPart, spec: TaggerSpec, out_dir: str, reasoning: bool) -> Any:
    tagger = spec.tagger()
    return tag_to_jsonl(
        tagger,
        part.read(),
        partition_path(out_dir, part.k),
        indices=[int(i) for i in part.indices],
        truths=None if part.truths is None else [int(t) for t in part.truths],
        source=part.source,
        backend=backend_of(tagger),
        reasoning=reasoning,
    )


def _parts(dataset: JetDataset, n: int) -> list[_DatasetPart]:
    """``n`` contiguous partitions (``JetDataset.shard``): by file when the jets are in one."""
    source = dataset.source
    on_disk = source == "sample" or Path(source).exists()
    parts = []
    for k in range(n):
        shard = dataset.shard(k, n)
        parts.append(
            _DatasetPart(
                k,
                source,
                np.asarray(shard.indices),
                None if shard.labels is None else np.asarray(shard.labels),
                path=(source if source == "sample" else str(Path(source).resolve()))
                if on_disk
                else None,
                jets=None if on_disk else list(shard.jets_or_errors()),
            )
        )
    return parts


def tag_dataset(
    dataset: JetDataset,
    spec: TaggerSpec,
    out_dir: str | os.PathLike[str],
    *,
    partition_size: int = 1000,
    reasoning: bool = False,
) -> list[PartitionSummary]:
    """Tag a data set on the current Dask scheduler (a ``Client`` if one is active).

    The jets are cut into contiguous partitions of about ``partition_size``; a data set read
    from files is read by the workers (each its own stretch; the files must be where the
    workers can read them), one in memory travels with the tasks. Returns one summary per
    partition (file, counts), in order. Rerunning with the same ``partition_size`` resumes.
    """
    if partition_size < 1:
        raise ValueError(f"partition_size must be >= 1, got {partition_size}")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    n = max(1, math.ceil(len(dataset) / partition_size))
    tasks = [
        dask.delayed(_tag_part, pure=False)(part, spec, str(out_dir), reasoning)
        for part in _parts(dataset, n)
    ]
    return list(dask.compute(*tasks))


def _item(item: Any, where: str, source: str) -> tuple[Jet | Exception, int, int | None]:
    """A bag item's jet (or why it is invalid, naming ``source`` and the jet), index, truth."""
    if isinstance(item, Mapping):
        index, truth = item.get("index"), item.get("truth", item.get("label"))
        jet = item.get("jet")
    else:
        index, truth, jet = getattr(item, "index", None), None, item
    if index is None:
        raise ValueError(
            f"{where}: no index: give Jets of a JetDataset, or mappings with 'jet' and 'index' "
            "(and 'truth'), so that rows can be merged"
        )
    try:
        jet = Jet.coerce(jet, index=int(index))
    except ValueError as exc:
        jet = ValueError(f"{source}: {exc}")
    return jet, int(index), None if truth is None else int(truth)


def tag_items(
    items: Sequence[Any],
    spec: TaggerSpec,
    path: str | os.PathLike[str],
    *,
    source: str,
    reasoning: bool = False,
) -> PartitionSummary:
    """Tag one partition of a bag into ``path`` (this process's tagger for ``spec``).

    Items are :class:`Jet` objects that know their index (from a :class:`JetDataset`), or
    mappings ``{"jet": array or Jet, "index": int, "truth": 1/0/None}``. For
    ``bag.map_partitions`` or ``client.submit`` when :func:`tag_bag` does not fit.
    """
    parsed = [_item(item, f"{path}: item {i}", source) for i, item in enumerate(items)]
    tagger = spec.tagger()
    return tag_to_jsonl(
        tagger,
        [p[0] for p in parsed],
        path,
        indices=[p[1] for p in parsed],
        truths=[p[2] for p in parsed],
        source=source,
        backend=backend_of(tagger),
        reasoning=reasoning,
    )


def tag_bag(
    bag: Any,
    spec: TaggerSpec,
    out_dir: str | os.PathLike[str],
    *,
    source: str = "bag",
    reasoning: bool = False,
) -> list[PartitionSummary]:
    """Tag every partition of a ``dask.bag.Bag`` of jets, each into its own file.

    Items as for :func:`tag_items`. ``source`` is what the rows record as the jets' data set.
    Returns one summary per partition, in order.
    """
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    tasks = [
        dask.delayed(tag_items, pure=False)(
            part, spec, partition_path(out_dir, k), source=source, reasoning=reasoning
        )
        for k, part in enumerate(bag.to_delayed())
    ]
    return list(dask.compute(*tasks))
