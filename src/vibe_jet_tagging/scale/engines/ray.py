"""Ray Data: :class:`TagBatches`, the async callable class for ``Dataset.map_batches``.

Ray builds one instance per actor (worker) with the :class:`TaggerSpec`; the instance builds
its :class:`~.tagging.tagger.JetTagger` in ``__init__`` and awaits each batch's jets
with up to ``max_concurrency`` requests in flight (``JetTagger.abatch``), on the actor's one
event loop. This module does not import ray (the ``ray`` extra installs it); the recipe is in
``docs/scaling-dask-ray.md``::

    rows = ds.map_batches(TagBatches, fn_constructor_kwargs={"spec": spec},
                          batch_size=256, concurrency=4)

Ray Data LLM's own HTTP stage is not the way: it awaits one request at a time per worker and
fails the whole data set when its retries run out, where a tagger keeps many in flight and
turns every failure into a counted error row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from ...jets.jet import Jet
from ...store.rows import result_row
from .partition import backend_of
from .spec import TaggerSpec

__all__ = ["TagBatches"]


class TagBatches:
    """Tags a batch of jets (a mapping of columns) into result rows, for ``map_batches``.

    Args:
        spec: the tagger to build on the worker.
        source: what the rows record as the jets' data set.
        reasoning: keep the reasoning and the final answer in the rows.
        jet_column, index_column, truth_column: the batch's columns: each jet as an
            ``(n, 4)`` or zero-padded ``(M, 4)`` array, its index in ``source`` and its
            label (1 quark, 0 gluon; the column may be absent).

    Each call returns the columns ``index`` (int64), ``labelled`` (bool) and ``row``: the
    row as ``vjt tag`` writes it, as JSON text (one type for every row and batch, so Ray's
    blocks always share a schema). Write the ``row`` column to a JSONL file, and
    ``vjt evaluate`` reads it. A jet with invalid data is an ``input`` error row.
    """

    def __init__(
        self,
        spec: TaggerSpec,
        *,
        source: str = "ray",
        reasoning: bool = False,
        jet_column: str = "jet",
        index_column: str = "index",
        truth_column: str = "truth",
    ) -> None:
        self.tagger = spec.build()
        self.backend = backend_of(self.tagger)
        self.source = source
        self.reasoning = reasoning
        self.columns = (jet_column, index_column, truth_column)

    async def __call__(self, batch: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The rows of one batch's jets, in the batch's order."""
        jet_column, index_column, truth_column = self.columns
        indices = [int(i) for i in batch[index_column]]
        truths = batch.get(truth_column)
        jets: list[Jet | Exception] = []
        for data, index in zip(batch[jet_column], indices, strict=True):
            try:
                jets.append(Jet.coerce(np.asarray(data), index=index))
            except ValueError as exc:
                jets.append(ValueError(f"{self.source}: {exc}"))
        valid = [(p, jet) for p, jet in enumerate(jets) if isinstance(jet, Jet)]
        outcomes: list[Any] = list(jets)
        results = await self.tagger.abatch([jet for _, jet in valid], return_exceptions=True)
        for (p, _), result in zip(valid, results, strict=True):
            outcomes[p] = result
        rows = [
            result_row(
                outcome,
                index=indices[p],
                truth=None if truths is None or truths[p] is None else int(truths[p]),
                source=self.source,
                backend=self.backend,  # type: ignore[arg-type]
                reasoning=self.reasoning,
            )
            for p, outcome in enumerate(outcomes)
        ]
        return {
            "index": np.array(indices, dtype=np.int64),
            "labelled": np.array([row["label"] is not None for row in rows], dtype=bool),
            "row": np.array([json.dumps(row, allow_nan=False) for row in rows], dtype=object),
        }
