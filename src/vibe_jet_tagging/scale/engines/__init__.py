"""Tagging with engines that already exist: Dask and Ray Data, one tagger per worker.

- :class:`TaggerSpec`: a tagger's arguments as plain data, built once per worker process
  (a live ``JetTagger`` and its HTTP clients never travel);
- :func:`tag_to_jsonl`: one partition of jets into its own JSONL file, rows as ``vjt tag``'s;
- :mod:`.dask`: ``tag_dataset`` / ``tag_bag`` on a Dask cluster (the ``dask`` extra);
- :mod:`.ray`: ``TagBatches``, the async callable class for Ray Data's ``map_batches``
  (the ``ray`` extra; see ``docs/scaling-dask-ray.md``).

The engine modules are imported by name (``from vibe_jet_tagging.scale.engines.dask import
tag_dataset``), so this package needs neither engine installed.
"""

from __future__ import annotations

from .partition import PartitionSummary, tag_to_jsonl
from .spec import TaggerSpec

__all__ = ["PartitionSummary", "TaggerSpec", "tag_to_jsonl"]
