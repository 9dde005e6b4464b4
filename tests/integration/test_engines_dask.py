"""Tagging on a Dask LocalCluster against the emulated server: one tagger per worker process,
one results file per partition, every jet labelled or a counted error."""

from __future__ import annotations

import pickle
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dask import bag as db
from dask.distributed import Client, LocalCluster

from vibe_jet_tagging.evaluation.report import build_report, read_rows
from vibe_jet_tagging.jets.dataset import dataset_from_arrays, load_jets, load_sample
from vibe_jet_tagging.jets.generate import save_jets
from vibe_jet_tagging.scale.engines import TaggerSpec
from vibe_jet_tagging.scale.engines.dask import _parts, partition_path, tag_bag, tag_dataset

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def rows_of(out_dir: Path) -> list[dict[str, Any]]:
    return [row for path in sorted(out_dir.glob("part-*.jsonl")) for row in read_rows(path)]


def check_rows(rows: list[dict[str, Any]], answers: list[dict[str, Any]]) -> Counter[str]:
    """Each row a label the server stated, or an error with its kind; outcomes counted."""
    stated = {a["content"]: a["stated"] for a in answers}
    outcomes: Counter[str] = Counter()
    for row in rows:
        if row["label"] is not None:
            assert row["error"] is None
            assert stated[row["answer"]] == row["label"], row  # the server's own label
            outcomes["labelled"] += 1
        else:
            assert row["error"] and row["error_kind"], row
            outcomes[row["error_kind"]] += 1
    return outcomes


@pytest.mark.slow
def test_a_data_set_on_a_process_cluster(fresh_emulator: Any, tmp_path: Path) -> None:
    server = fresh_emulator(ttft=0.2, faults={"server_error": 0.05, "non_answer": 0.05})
    jets = load_sample().balanced(200, seed=3)
    spec = TaggerSpec(
        server.model, base_url=server.base_url, effort="low", max_retries=0, max_concurrency=32
    )
    workers = 2
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=2, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster),
    ):
        summaries = tag_dataset(jets, spec, tmp_path, partition_size=50, reasoning=True)

    assert [s.path for s in summaries] == [str(partition_path(tmp_path, k)) for k in range(4)]
    rows = rows_of(tmp_path)
    assert sorted(row["index"] for row in rows) == sorted(int(i) for i in jets.indices)
    truth = dict(zip(map(int, jets.indices), map(int, jets.labels), strict=True))  # type: ignore[arg-type]
    assert all(row["truth"] == truth[row["index"]] for row in rows)
    assert all(row["source"] == "sample" and row["backend"] == "emulated" for row in rows)
    outcomes = check_rows(rows, server.answers())
    assert outcomes["labelled"] == sum(s.labelled for s in summaries) > 150
    errors = sum((Counter(s.errors) for s in summaries), Counter())
    assert errors == outcomes - Counter(labelled=outcomes["labelled"])
    assert errors["server"] > 0  # the injected HTTP 500s are rows, not lost jets
    # Many requests in flight per worker, not one (a count, not a time).
    assert server.stats()["max_running"] > 2 * workers
    # The partitions' rows together are one run's: evaluated like vjt tag's file.
    report = build_report(rows, load_sample(), n_bootstrap=20)
    assert (report["n_jets"], report["n_labelled"]) == (200, outcomes["labelled"])
    assert report["backend"] == "emulated"
    assert {k: n for k, n in report["errors_by_kind"].items() if n} == dict(errors)


def test_a_bag_with_an_invalid_jet_and_a_rerun_that_resumes(
    fresh_emulator: Any, tmp_path: Path
) -> None:
    server = fresh_emulator(faults={"non_answer": 0.15})
    sample = load_sample().head(60)
    padded = sample.padded()
    padded[7, 0, 0] = np.nan  # one jet's data is invalid
    data = dataset_from_arrays(padded, sample.labels, name="memory")
    items = [
        {"jet": padded[i], "index": int(data.indices[i]), "truth": int(data.labels[i])}  # type: ignore[index]
        for i in range(len(data))
    ]
    spec = TaggerSpec(server.model, base_url=server.base_url, effort="low", reask=False)
    with (
        LocalCluster(
            n_workers=2, processes=False, host="127.0.0.1", protocol="tcp", dashboard_address=None
        ) as cluster,
        Client(cluster),
    ):
        first = tag_bag(db.from_sequence(items, npartitions=3), spec, tmp_path, source="memory")
        asked = server.stats()["requests_total"]
        again = tag_bag(db.from_sequence(items, npartitions=3), spec, tmp_path, source="memory")
        asked_again = server.stats()["requests_total"] - asked
        in_memory = tag_dataset(data, spec, tmp_path / "dataset", partition_size=25)

    rows = rows_of(tmp_path)
    assert sorted(row["index"] for row in rows) == list(range(60))
    bad = next(row for row in rows if row["index"] == 7)
    assert bad["error_kind"] == "input" and bad["error"].startswith("memory: jet 7: non-finite")
    labelled = sum(s.labelled for s in first)
    failed = {k: sum(s.errors.get(k, 0) for s in first) for k in ("input", "parse")}
    assert labelled + sum(failed.values()) == 60 and failed["input"] == 1 and failed["parse"] > 0
    # The rerun keeps every labelled row and asks only for the jets without one.
    assert sum(s.resumed for s in again) == labelled
    assert asked_again == 60 - 1 - labelled
    assert sum(s.labelled for s in again) >= labelled
    # A data set held in memory travels with its tasks: same jets, same outcome for the bad one.
    dataset_rows = rows_of(tmp_path / "dataset")
    assert [s.jets for s in in_memory] == [20, 20, 20]  # 3 near-equal parts
    assert sorted(r["index"] for r in dataset_rows) == list(range(60))
    assert bad["error"].endswith(next(r for r in dataset_rows if r["index"] == 7)["error"])


def test_a_data_set_from_a_file_is_read_by_the_tasks(emulator: Any, tmp_path: Path) -> None:
    sample = load_sample().head(30)
    path = save_jets(tmp_path / "QG_jets.npz", sample.padded(), sample.labels.astype(float))  # type: ignore[union-attr]
    jets = load_jets(path)[5:30]
    parts = _parts(jets, 3)
    assert all(part.jets is None and part.path == str(path.resolve()) for part in parts)
    spec = TaggerSpec(emulator.model, base_url=emulator.base_url, effort="low")
    summaries = tag_dataset(jets, spec, tmp_path / "out", partition_size=9)  # no cluster: threads
    rows = rows_of(tmp_path / "out")
    assert [s.jets for s in summaries] == [8, 8, 9]
    assert sorted(row["index"] for row in rows) == list(range(5, 30))
    assert {row["source"] for row in rows} == {str(path)}
    assert all(row["truth"] == int(sample.labels[row["index"]]) for row in rows)  # type: ignore[index]


def test_a_spec_is_plain_data_and_builds_one_tagger_per_process() -> None:
    spec = TaggerSpec("m", base_url=["http://a:1/v1", "http://b:1/v1"], effort="low")
    copy = pickle.loads(pickle.dumps(spec))
    assert copy == spec and hash(copy) == hash(spec)
    assert copy.tagger() is spec.tagger()
    assert spec.tagger().base_urls == ["http://a:1/v1", "http://b:1/v1"]
    assert spec.tagger().cache is None  # the results files are the record by default
    assert TaggerSpec("m", effort="high").tagger() is not spec.tagger()
    with pytest.raises(ValueError, match="takes no colour"):
        TaggerSpec("m", colour="red")
    with pytest.raises(ValueError, match="examples=JetDataset is not plain data"):
        TaggerSpec("m", examples=load_sample())
    assert "secret" not in repr(TaggerSpec("m", api_key="secret"))
