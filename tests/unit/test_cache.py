"""The disk caches: JSON only, corruption is a miss, safe across processes."""

from __future__ import annotations

import multiprocessing as mp
import pickle
import sqlite3
import stat

import pytest
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration

from vibe_jet_tagging.cache import DiskLLMCache, ResultCache, UnsafeCacheEntryError, stored_modes
from vibe_jet_tagging.results import TagError, TagResult, Usage

MODE_PICKLE = 4


def make_result(key: str, **fields) -> TagResult:
    defaults = dict(
        jet_key="j" + key,
        key=key,
        label="quark",
        quark_probability=0.8,
        parsed_by="schema",
        reasoning="many words " * 500,
        usage=Usage(input_tokens=700, output_tokens=300, requests=1),
        model="m",
    )
    return TagResult(**{**defaults, **fields})


def test_round_trip_and_folder_mode(tmp_path):
    cache = ResultCache(tmp_path / "c")
    result = make_result("k1")
    assert cache.put(result)
    assert cache.get("k1") == result
    assert cache.get("missing") is None
    assert stat.S_IMODE((tmp_path / "c").stat().st_mode) == 0o700
    assert cache.stats()["entries"] == 1


def test_failures_are_never_stored(tmp_path):
    cache = ResultCache(tmp_path)
    failed = make_result("k", label=None, error=TagError(kind="parse", message="no label"))
    assert not cache.put(failed)
    assert "k" not in cache


def test_nothing_on_disk_is_a_pickle(tmp_path):
    cache = ResultCache(tmp_path)
    cache.put(make_result("small", reasoning="short"))
    cache.put(make_result("large", reasoning="x" * 100_000))  # goes to a file of its own
    assert stored_modes(tmp_path) and MODE_PICKLE not in stored_modes(tmp_path)
    with pytest.raises(TypeError):
        cache._cache.set("k", {"a": 1})  # would be pickled by diskcache's default disk
    for path in tmp_path.rglob("*.val"):
        assert not path.read_bytes().startswith(b"\x80")  # pickle protocol header


def test_a_planted_pickle_is_refused_not_executed(tmp_path):
    cache = ResultCache(tmp_path)
    cache.put(make_result("k"))

    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('pickle executed')",))

    with sqlite3.connect(tmp_path / "cache.db") as db:
        db.execute(
            "UPDATE Cache SET mode = ?, value = ? WHERE key = 'k'",
            (MODE_PICKLE, pickle.dumps(Boom())),
        )
    assert cache.get("k") is None  # refused and treated as a miss
    with pytest.raises(UnsafeCacheEntryError):
        cache._cache.get("k")


def test_corrupted_entry_is_a_miss(tmp_path):
    cache = ResultCache(tmp_path)
    cache.put(make_result("k", reasoning="short"))
    text = cache._cache.get("k")
    cache._cache.set("k", text[: len(text) // 2])  # half-written JSON
    assert cache.get("k") is None
    cache._cache.set("k", '{"label": "quark"}')  # valid JSON, not a result
    assert cache.get("k") is None
    cache.put(make_result("big", reasoning="y" * 100_000))
    [value_file] = list(tmp_path.rglob("*.val"))
    value_file.write_text('{"jet_key": "jbig", "ke')
    assert cache.get("big") is None


def _writer(directory: str, start: int, n: int) -> None:
    cache = ResultCache(directory)
    for i in range(start, start + n):
        assert cache.put(make_result(f"k{i}", reasoning=f"r{i}"))


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), s, 150)) for s in (0, 150)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    cache = ResultCache(tmp_path)
    assert len(cache) == 300
    assert all(cache.get(f"k{i}").reasoning == f"r{i}" for i in range(300))


def test_langchain_cache_round_trip_marks_hits(tmp_path):
    cache = DiskLLMCache(tmp_path)
    message = AIMessage(
        content="{}",
        additional_kwargs={"reasoning_content": "hmm"},
        usage_metadata={"input_tokens": 5, "output_tokens": 7, "total_tokens": 12},
    )
    cache.update("prompt", "llm", [ChatGeneration(message=message)])
    [hit] = cache.lookup("prompt", "llm")
    assert hit.message.additional_kwargs["reasoning_content"] == "hmm"
    assert hit.message.usage_metadata["output_tokens"] == 7
    assert hit.message.response_metadata["cache_hit"] is True
    assert cache.lookup("prompt", "other llm") is None
    assert MODE_PICKLE not in stored_modes(tmp_path)
    cache.clear()
    assert cache.lookup("prompt", "llm") is None
