"""The Ray Data recipe (docs/scaling-dask-ray.md) on a local Ray against the emulated server:
``map_batches`` with :class:`TagBatches`, many requests in flight per actor, every jet
labelled by the server's stated label or a counted error."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vibe_jet_tagging.evaluation.report import JsonlWriter, read_rows
from vibe_jet_tagging.jets.dataset import load_sample
from vibe_jet_tagging.scale.engines import TaggerSpec
from vibe_jet_tagging.scale.engines.ray import TagBatches

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def ray() -> Iterator[Any]:
    """A local Ray (the ray extra), started for this module."""
    ray = pytest.importorskip("ray", reason="the ray extra: pip install '.[ray]'")
    # num_cpus above the machine's 2 cores: with 2, the actors and the data tasks deadlock.
    ray.init(
        num_cpus=4,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        configure_logging=False,
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield ray
    finally:
        ray.shutdown()


async def test_a_batch_becomes_rows_in_its_order(emulator: Any) -> None:
    """What map_batches calls, without Ray: columns in, vjt tag rows (as JSON) out."""
    jets = load_sample().head(6)
    padded = jets.padded()
    padded[2, :, 0] = 0.0  # no constituents: invalid
    spec = TaggerSpec(emulator.model, base_url=emulator.base_url, effort="low")
    tag = TagBatches(spec, source="sample", index_column="i", truth_column="y")
    out = await tag({"jet": padded, "i": np.arange(10, 16), "y": jets.labels})
    assert list(out["index"]) == list(range(10, 16))
    rows = [json.loads(text) for text in out["row"]]
    assert [row["index"] for row in rows] == list(range(10, 16))
    assert [row["truth"] for row in rows] == [int(y) for y in jets.labels]  # type: ignore[union-attr]
    assert rows[2]["error_kind"] == "input" and rows[2]["error"].startswith("sample: jet 12")
    assert list(out["labelled"]) == [row["label"] is not None for row in rows]
    assert sum(out["labelled"]) == 5 and all(row["backend"] == "emulated" for row in rows)
    keys = [spec.tagger().key_for(jet) for jet in jets.jets()]
    assert [row["key"] for i, row in enumerate(rows) if i != 2] == keys[:2] + keys[3:]


@pytest.mark.slow
def test_map_batches_with_a_tagger_per_actor(ray: Any, fresh_emulator: Any, tmp_path: Path) -> None:
    server = fresh_emulator(ttft=0.2, faults={"server_error": 0.05, "non_answer": 0.05})
    jets = load_sample().balanced(200, seed=5)
    padded = jets.padded()
    padded[3, 0, 0] = np.nan  # one jet's data is invalid
    items = [
        {"jet": padded[i], "index": int(jets.indices[i]), "truth": int(jets.labels[i])}  # type: ignore[index]
        for i in range(len(jets))
    ]
    spec = TaggerSpec(
        server.model, base_url=server.base_url, effort="low", max_retries=0, max_concurrency=100
    )
    actors = 2
    tagged = ray.data.from_items(items).map_batches(
        TagBatches,
        fn_constructor_kwargs={"spec": spec, "source": "sample", "reasoning": True},
        batch_size=50,
        concurrency=actors,
    )
    path = tmp_path / "results.jsonl"
    with JsonlWriter(path) as writer:
        for batch in tagged.iter_batches(batch_format="numpy"):
            for line in batch["row"]:
                writer.write(json.loads(line))

    rows = read_rows(path)
    assert sorted(row["index"] for row in rows) == sorted(int(i) for i in jets.indices)
    stated = {a["content"]: a["stated"] for a in server.answers()}
    outcomes: Counter[str] = Counter()
    for row in rows:
        assert row["source"] == "sample" and row["backend"] == "emulated"
        if row["label"] is not None:
            assert row["error"] is None and stated[row["answer"]] == row["label"]
            outcomes["labelled"] += 1
        else:
            assert row["error"], row
            outcomes[row["error_kind"]] += 1
    assert outcomes["input"] == 1 and outcomes["server"] > 0 and outcomes["labelled"] > 150
    bad = next(row for row in rows if row["index"] == int(jets.indices[3]))
    assert bad["error"].startswith("sample: jet ")
    # Many requests in flight per actor, not one (Ray Data LLM's HTTP stage sends one).
    assert server.stats()["max_running"] > actors
