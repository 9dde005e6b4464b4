"""The disk caches: JSON only, corruption is a miss, safe across processes."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import pickle
import sqlite3
import stat

import pytest
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration

from vibe_jet_tagging.store.cache import (
    CACHE_FORMAT,
    DiskLLMCache,
    ResultCache,
    UnsafeCacheEntryError,
    UnsafeCacheError,
    default_cache_dir,
    stored_modes,
)
from vibe_jet_tagging.tagging.results import TagError, TagResult, Usage

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


# -- whose folder it is -------------------------------------------------------------------------


def _planted(directory) -> None:
    """A cache folder someone filled with a (flipped) result under key "k"."""
    cache = ResultCache(directory)
    assert cache.put(make_result("k", label="gluon", quark_probability=0.1))
    cache.close()


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o722, 0o702])
def test_a_folder_others_can_write_is_refused_unless_shared(tmp_path, mode):
    folder = tmp_path / "c"
    _planted(folder)
    folder.chmod(mode)
    with pytest.raises(UnsafeCacheError) as refused:
        ResultCache(folder)
    message = str(refused.value)
    assert "\n" not in message
    assert str(folder) in message and f"mode {mode:o}" in message
    assert "chmod 700" in message and "--shared-cache" in message
    with pytest.raises(UnsafeCacheError):
        DiskLLMCache(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == mode  # refused: not even touched
    shared = ResultCache(folder, shared=True)
    assert shared.get("k").label == "gluon"  # the user said it is shared: used as it is
    assert stat.S_IMODE(folder.stat().st_mode) == mode


def test_a_symlinked_folder_is_refused_unless_shared(tmp_path):
    real = tmp_path / "real"
    _planted(real)
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(UnsafeCacheError, match="symlink") as refused:
        ResultCache(link)
    assert str(real) in str(refused.value)
    assert ResultCache(link, shared=True).get("k") is not None
    assert ResultCache(real).get("k") is not None  # the folder itself is the user's own


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="chown needs root")
def test_a_folder_of_another_user_is_refused_unless_shared(tmp_path):
    folder = tmp_path / "c"
    _planted(folder)
    os.chown(folder, 65534, 65534)  # nobody: "another local user"
    with pytest.raises(UnsafeCacheError, match=r"belongs to another user \(uid 65534"):
        ResultCache(folder)
    assert ResultCache(folder, shared=True).get("k") is not None


def test_a_new_folder_is_private_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        cache = ResultCache(tmp_path / "a" / "b")
    finally:
        os.umask(old)
    assert cache.put(make_result("k"))
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o700


def test_entries_of_another_format_or_with_unknown_fields_are_misses(tmp_path):
    cache = ResultCache(tmp_path)
    result = make_result("k", reasoning="short")
    assert cache.put(result)
    stored = json.loads(cache._cache.get("k"))
    assert stored["cache_format"] == CACHE_FORMAT
    assert cache.get("k") == result

    def planted(**changes):
        entry = {**stored, **changes}
        cache._cache.set("k", json.dumps({k: v for k, v in entry.items() if v is not None}))
        return cache.get("k")

    # What this package wrote before the format was recorded (a TagResult as JSON).
    cache._cache.set("k", result.model_dump_json())
    assert cache.get("k") is None
    assert planted(cache_format=1) is None
    assert planted(cache_format=CACHE_FORMAT + 1) is None
    assert planted(verified_by="someone") is None
    assert planted(usage={**stored["usage"], "discount": 1}) is None
    assert planted(cache_format=CACHE_FORMAT) == result  # the real thing still hits


def test_bulk_reads_give_what_single_reads_give(tmp_path):
    cache = ResultCache(tmp_path)
    results = [make_result(f"k{i}", reasoning=f"r{i}") for i in range(700)]  # two queries
    results.append(make_result("large", reasoning="z" * 100_000))  # in a file of its own
    for result in results:
        assert cache.put(result)
    stored = json.loads(cache._cache.get("k1"))
    # Entries of another layout, or not results of this version, read as get reads them.
    cache._cache.set("k1", json.dumps({"cache_format": CACHE_FORMAT, **stored}))
    cache._cache.set("k2", json.dumps({**stored, "usage": {**stored["usage"], "x": 1}}))
    cache._cache.set("k3", json.dumps({**stored, "cache_format": CACHE_FORMAT + 1}))
    with sqlite3.connect(tmp_path / "cache.db") as db:
        db.execute("UPDATE Cache SET mode = ? WHERE key = 'k4'", (MODE_PICKLE,))
    keys = [r.key for r in results] + ["missing", "k0"]
    found = cache.get_many(keys)
    assert found == {k: hit for k in keys if (hit := cache.get(k)) is not None}
    assert set(found) == {r.key for r in results} - {"k2", "k3", "k4"}
    assert found["k1"] == results[1] and found["large"] == results[-1]
    found["k0"].index = 7  # each read gives objects of its own
    assert cache.get_many(["k0"])["k0"].index is None


# -- a cache that cannot be used ----------------------------------------------------------------


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("vibe_jet_tagging.store.")]


def test_a_corrupt_database_leaves_the_cache_unused_with_one_warning(tmp_path, caplog):
    (tmp_path / "cache.db").write_bytes(b"not a database " * 1000)
    cache = ResultCache(tmp_path)
    assert not cache.available
    assert cache.get("k") is None and not cache.put(make_result("k"))
    assert len(cache) == 0 and "k" not in cache and cache.clear() == 0
    [warning] = _warnings(caplog)
    assert warning == cache.problem
    assert str(tmp_path) in warning and "not a database" in warning
    assert "going on without it" in warning and "\n" not in warning
    assert cache.stats()["problem"] == warning


def test_a_full_disk_sets_the_cache_aside_after_one_warning(tmp_path, caplog):
    cache = ResultCache(tmp_path)
    assert cache.put(make_result("k0"))
    connection = cache._cache._con
    pages = connection.execute("PRAGMA page_count").fetchone()[0]
    connection.execute(f"PRAGMA max_page_count = {pages}")  # SQLite: "database or disk is full"
    assert not cache.put(make_result("k1", reasoning="x" * 20_000))
    assert not cache.available
    for i in range(2, 6):
        assert not cache.put(make_result(f"k{i}"))
        assert cache.get(f"k{i}") is None
    [warning] = _warnings(caplog)
    assert "cannot be written" in warning and "full" in warning


def test_a_read_only_folder_leaves_the_cache_unused_with_one_warning(tmp_path, caplog, read_only):
    folder = tmp_path / "c"
    folder.mkdir(mode=0o700)
    read_only(folder)
    cache = ResultCache(folder)
    assert not cache.available
    assert cache.get("k") is None and not cache.put(make_result("k"))
    [warning] = _warnings(caplog)
    assert str(folder) in warning and "cannot be opened" in warning


def test_a_folder_given_with_a_tilde_is_in_the_home_folder(tmp_path, monkeypatch):
    """`~` in a folder (as a config file or an unexpanded VJT_CACHE_DIR gives it) is the home
    folder, for both caches, never a folder named `~` in the working directory."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    results = ResultCache("~/results")
    assert results.directory == tmp_path / "home" / "results"
    assert results.put(make_result("k"))
    assert ResultCache(tmp_path / "home" / "results").get("k") is not None
    assert DiskLLMCache("~/llm").directory == tmp_path / "home" / "llm"
    monkeypatch.setenv("VJT_CACHE_DIR", "~/vjt")
    assert default_cache_dir() == tmp_path / "home" / "vjt"
    assert not (tmp_path / "~").exists()
