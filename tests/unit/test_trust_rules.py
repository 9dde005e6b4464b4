"""Every rule of the trust modules held by an assertion (the gate, provenance, the cache folder
and the result cache). Written against the survivors of a mutation run
(``mutmut run``: see ``[tool.mutmut]`` in pyproject.toml): each test names what it holds."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import stat
from pathlib import Path

import diskcache
import platformdirs
import pytest
from langchain_core.messages import AIMessage

from vibe_jet_tagging import JetTagger, ResultCache
from vibe_jet_tagging.store import provenance
from vibe_jet_tagging.store.cache import _decode_result
from vibe_jet_tagging.store.folder import (
    JSONOnlyDisk,
    UnsafeCacheEntryError,
    default_cache_dir,
    open_cache,
)
from vibe_jet_tagging.store.provenance import (
    SIGNED,
    ProvenanceKeyError,
    Signer,
    answer_digest,
    default_key_path,
    default_signer,
)
from vibe_jet_tagging.store.rows import result_row
from vibe_jet_tagging.tagging import gate as gate_module
from vibe_jet_tagging.tagging.gate import Asked, OversizedAnswer, RowRefused, row_problem
from vibe_jet_tagging.tagging.parsing import LabelParseError, ParsedLabel
from vibe_jet_tagging.tagging.results import TagError, TagResult, Usage

from .test_gate import ANSWER, gated

KEY = "a" * 32


def message(text: str = ANSWER, **metadata) -> AIMessage:
    return AIMessage(
        text,
        additional_kwargs={"reasoning_content": "because"},
        response_metadata={"finish_reason": "stop", **metadata},
        usage_metadata={"input_tokens": 5, "output_tokens": 3, "total_tokens": 8},
    )


# -- the gate: what an admitted or failed result holds ------------------------------------------


def test_an_admitted_result_holds_what_the_answer_said(tmp_path):
    tagger = gated(tmp_path, ANSWER)
    gate = tagger.gate
    parsed = ParsedLabel(label="gluon", quark_probability=0.2, step="schema")
    logprobs = {"content": [{"token": "gluon", "logprob": -0.1,
                             "top_logprobs": [{"token": "gluon", "logprob": -0.1},
                                              {"token": "quark", "logprob": -2.4}]}]}  # fmt: skip
    got = gate.admit(
        Asked(KEY, "b" * 32, 7),
        parsed,
        message(cache_hit=True, logprobs=logprobs),
        Usage(input_tokens=5),
        server="http://u:secret@host:1/v1",
        store=False,
    )
    assert (got.key, got.jet_key, got.index) == (KEY, "b" * 32, 7)
    assert (got.answer, got.reasoning, got.finish_reason) == (ANSWER, "because", "stop")
    assert got.server == "http://u@host:1/v1" and got.cached is True
    assert got.latency == 0.0 and got.usage.input_tokens == 5
    assert got.logprob_quark_probability is not None and got.logprob_quark_probability < 0.5
    assert (got.model, got.template) == (tagger.model_name, "zero_shot")
    assert got.effort == tagger.reasoning_effort
    assert not gate.admit(Asked(KEY, KEY), parsed, message(), Usage(), store=False).cached
    assert len(tagger.cache) == 0  # store=False: nothing stored
    assert gate.admit(Asked(KEY, KEY), parsed, message(), Usage(), server=None).server is None
    assert gate.admit(Asked(KEY, KEY), parsed, message(), Usage(), latency=1.5).latency == 1.5


def test_the_gate_refuses_a_label_that_contradicts_its_probability(tmp_path):
    gate = gated(tmp_path, ANSWER).gate
    contradiction = ParsedLabel(label="quark", quark_probability=0.2, step="regex")
    with pytest.raises(ValueError, match="contradicts"):
        gate.admit(Asked(KEY, KEY), contradiction, message(), Usage())


def test_a_failed_result_holds_the_answer_and_the_error(tmp_path):
    gate = gated(tmp_path, ANSWER).gate
    error = LabelParseError("no label in the answer: 'hm'", raw="hm")
    got = gate.failed(Asked(KEY, KEY, 3), error, message("hm"), Usage(output_tokens=9))
    assert got.error.message == "no label in the answer: 'hm'" and got.error.raw_answer == "hm"
    assert (got.answer, got.reasoning, got.finish_reason) == ("hm", "because", "stop")
    assert got.latency == 0.0 and got.usage.output_tokens == 9 and got.index == 3
    none = gate.failed(Asked(KEY, KEY), TagError(kind="server", message="x"))
    assert (none.answer, none.reasoning, none.finish_reason) == (None, None, None)
    big = gate.failed(Asked(KEY, KEY), TagError(kind="oversized", message="big"), message("hm"))
    assert (big.answer, big.reasoning, big.finish_reason) == (None, None, None)
    assert gate.failed(Asked(KEY, KEY), error, latency=2.5).latency == 2.5


def test_the_size_bound_is_inclusive(tmp_path):
    gate = gated(tmp_path, ANSWER, max_answer_bytes=len(ANSWER) + len("because")).gate
    gate.check_size(message())  # exactly the bound: read
    with pytest.raises(OversizedAnswer, match="above max_answer_bytes") as big:
        gate.check_size(message(ANSWER + " "))
    assert str(big.value) == big.value.error.message and big.value.error.kind == "oversized"


def test_the_gate_remembers_the_last_keys_it_stored(tmp_path, jet, monkeypatch):
    monkeypatch.setattr(gate_module, "_STORED_KEPT", 2)
    tagger = gated(tmp_path, ANSWER)
    result = tagger.invoke(jet)
    keys = [f"{i:032x}" for i in range(3)]
    for key in keys:
        signed = result.model_copy(update={"key": key})
        signed.signature = tagger.gate.signer.sign(gate_module._signed(signed))
        assert tagger.gate.store(signed)
        assert tagger.gate.stored_since(key)
    assert not tagger.gate.stored_since(result.key)  # the oldest went first
    assert not tagger.gate.stored_since(keys[0])
    assert tagger.gate.stored_since(keys[1]) and tagger.gate.stored_since(keys[2])


def test_an_entry_that_does_not_verify_warns_once_naming_it(tmp_path, jet, caplog):
    tagger = gated(tmp_path, ANSWER)
    result = tagger.invoke(jet)
    tagger.cache.put(result.model_copy(update={"label": "quark", "quark_probability": 0.9}))
    caplog.set_level(logging.DEBUG, logger="vibe_jet_tagging.tagging.gate")
    assert tagger.gate.lookup(result.key, jet) is None
    assert tagger.gate.lookup_many([result.key]) == {}
    said = [
        (r.levelno, r.getMessage()) for r in caplog.records if "does not verify" in r.getMessage()
    ]
    assert [level for level, _ in said] == [logging.WARNING, logging.DEBUG]
    assert said[0][1] == (
        f"cache entry {result.key} does not verify (edited, another user's, or made before "
        "results were signed): treated as a miss"
    )


def test_a_hit_is_served_as_this_jets(tmp_path, labelled_pool):
    tagger = gated(tmp_path, message())
    jet = labelled_pool[0][0]
    result = tagger.invoke(jet)
    moved = type(jet).from_array(jet.constituents, index=42)
    hit = tagger.gate.lookup(result.key, moved)
    assert hit is not None and hit.cached and hit.index == 42
    many = tagger.gate.lookup_many([result.key, "f" * 32])
    assert list(many) == [result.key] and many[result.key].key == result.key
    # A bulk hit holds no reasoning text until asked for it; then it is the stored one.
    assert "reasoning" not in many[result.key].__dict__
    assert many[result.key].reasoning == result.reasoning == "because"


def test_admit_row_refuses_unverified_rows_unless_trusted_and_names_where(tmp_path, jet):
    tagger = gated(tmp_path, ANSWER)
    row = result_row(tagger.invoke(jet), index=0, truth=0, source="s", backend="server")
    edited = {**row, "quark_probability": 0.1}
    with pytest.raises(RowRefused, match=r"^here line 2: the row does not verify .* trust its "
                       r"file explicitly to take it as imported$"):  # fmt: skip
        tagger.gate.admit_row(edited, where="here line 2")
    assert tagger.gate.admit_row(edited, where="w", trusted=True).origin == "imported"
    assert tagger.gate.admit_row(row, where="w").origin == "model"


# -- rows: the exact rules -------------------------------------------------------------------


@pytest.fixture
def row(tmp_path, jet) -> dict:
    return result_row(gated(tmp_path, ANSWER).invoke(jet), index=0, truth=0, source="s",
                      backend="server")  # fmt: skip


def test_row_rules_at_their_boundaries(row):
    assert row_problem({**row, "error": "x"}) == "a row with an error has no label"
    assert row_problem({**row, "quark_probability": 0.0}) is None
    assert row_problem({**row, "label": "quark", "quark_probability": 1.0}) is None
    assert row_problem({**row, "label": "quark", "quark_probability": 1}) is None
    for bad in (float("inf"), float("-inf"), float("nan")):
        assert "is not a number from 0 to 1" in (
            row_problem({**row, "quark_probability": bad}) or ""
        )
    assert row_problem({**row, "parsed_by": "x"}) == (
        "parsed_by 'x' is not one of reask, regex, schema"
    )
    assert row_problem({**row, "settings": 3}) == (
        "no settings key (a row from another tool, or too old to check)"
    )
    assert row_problem({**row, "index": 2**53 - 1}) is None
    assert row_problem({**row, "input_tokens": 2**53 - 1}) is None
    assert "is not a count" in (row_problem({**row, "input_tokens": 2**53}) or "")
    assert row_problem({**row, "input_tokens": None}) is None
    assert row_problem({k: v for k, v in row.items() if k != "origin"}) is None
    assert row_problem({**row, "origin": "imported"}) is None
    assert row_problem({**row, "origin": None}) == "origin None is not model or imported"


# -- provenance ----------------------------------------------------------------------------


def test_the_default_key_is_in_the_users_config_folder(monkeypatch):
    monkeypatch.delenv("VJT_KEY_FILE")
    assert default_key_path() == (
        Path(platformdirs.user_config_dir("vibe-jet-tagging")) / "provenance.key"
    )


def test_one_signer_per_key_file(tmp_path, monkeypatch):
    first = default_signer()
    assert default_signer() is first
    monkeypatch.setenv("VJT_KEY_FILE", str(tmp_path / "other.key"))
    other = default_signer()
    assert other is not first
    assert other.sign({}) != first.sign({})  # made from its own file
    assert (tmp_path / "other.key").exists()


def test_a_signature_is_an_hmac_of_the_compact_json_of_the_signed_fields():
    key = b"k" * 32
    fields = {name: f"v{i}" for i, name in enumerate(SIGNED)}
    payload = json.dumps([fields[n] for n in SIGNED], separators=(",", ":")).encode()
    assert Signer(key).sign(fields) == hmac.new(key, payload, hashlib.sha256).hexdigest()[:32]


def test_an_answer_digest_takes_any_text():
    text = "a lone surrogate \udc80 is kept"
    expected = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16)
    assert answer_digest(text) == expected.hexdigest()


def test_the_key_file_rules_say_what_to_do(tmp_path, monkeypatch):
    folder = tmp_path / "dir.key"
    folder.mkdir()
    with pytest.raises(ProvenanceKeyError, match=r"dir.key: the signing key is not a regular file"):
        _ = Signer(path=folder).key
    path = tmp_path / "k.key"
    path.write_text("ab" * 16 + "\n")  # 16 bytes: the shortest key taken
    path.chmod(0o600)
    assert Signer(path=path).key == b"\xab" * 16
    path.write_text("ab" * 15 + "\n")
    with pytest.raises(ProvenanceKeyError, match="too short"):
        _ = Signer(path=path).key
    path.write_text("ab" * 64 + "\n")  # a long key is read whole
    assert Signer(path=path).key == b"\xab" * 64
    path.chmod(0o604)
    with pytest.raises(ProvenanceKeyError, match=r"mode 604\), so they could sign .* `chmod 600`"):
        _ = Signer(path=path).key
    path.chmod(0o600)
    monkeypatch.setattr(os, "getuid", lambda: os.stat(path).st_uid + 1)
    with pytest.raises(ProvenanceKeyError, match="set VJT_KEY_FILE"):
        _ = Signer(path=path).key


def test_a_new_key_is_made_in_a_new_private_folder(tmp_path):
    path = tmp_path / "a" / "b" / "provenance.key"
    old = os.umask(0)
    try:
        key = Signer(path=path).key
    finally:
        os.umask(old)
    assert len(key) == 32
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert bytes.fromhex(path.read_text().strip()) == key


def test_a_key_made_meanwhile_by_another_process_is_used(tmp_path, monkeypatch):
    path = tmp_path / "provenance.key"
    theirs = b"t" * 32
    real_open = os.open

    def racing(file, flags, *args):
        if flags & os.O_EXCL and not path.exists():  # the other process wins the race
            fd = real_open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            os.write(fd, theirs.hex().encode())
            os.close(fd)
        return real_open(file, flags, *args)

    monkeypatch.setattr(provenance.os, "open", racing)
    assert Signer(path=path).key == theirs


def test_a_key_that_cannot_be_made_says_where(tmp_path, read_only):
    folder = tmp_path / "ro"
    folder.mkdir()
    read_only(folder)
    with pytest.raises(ProvenanceKeyError, match=rf"{folder}/provenance.key: cannot create"):
        _ = Signer(path=folder / "provenance.key").key


# -- the cache folder ----------------------------------------------------------------------


def test_the_json_only_disk_refuses_anything_but_text_saying_what(tmp_path):
    cache = diskcache.Cache(str(tmp_path), disk=JSONOnlyDisk)
    with pytest.raises(TypeError, match="cache keys must be str, got int"):
        cache.set(1, "x")
    with pytest.raises(TypeError, match="cache values must be JSON text, got dict"):
        cache.set("k", {"a": 1})
    cache.set("k", "v")
    assert cache.get("k") == "v"
    with pytest.raises(UnsafeCacheEntryError, match="refusing to unpickle a cache key"):
        cache.disk.get(b"x", False)
    with pytest.raises(UnsafeCacheEntryError, match="refusing to unpickle a cache entry"):
        cache.disk.fetch(diskcache.core.MODE_PICKLE, None, b"x", False)
    big = "x" * 100_000  # stored in a file of its own: fetched, not opened
    cache.set("big", big)
    assert cache.get("big") == big


def test_the_default_cache_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("VJT_CACHE_DIR")
    assert default_cache_dir() == Path(platformdirs.user_cache_dir("vibe-jet-tagging"))
    monkeypatch.setenv("VJT_CACHE_DIR", "~/x")
    assert default_cache_dir() == Path.home() / "x"


def test_an_own_folder_others_can_read_is_made_private(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    cache = open_cache(folder, 123_456, shared=False)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert cache.size_limit == 123_456
    shared = tmp_path / "s"
    shared.mkdir()
    shared.chmod(0o755)
    open_cache(shared, 1 << 20, shared=True)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755  # shared: left as it is


def test_a_cache_that_fails_says_which_and_why(tmp_path, caplog):
    cache = ResultCache(tmp_path / "c")
    cache._give_up("cannot be written", OSError("disk full"))
    assert cache.problem == (
        f"the cache {tmp_path / 'c'} cannot be written (OSError: disk full); going on without it"
    )
    assert not cache.available
    assert [r.getMessage() for r in caplog.records] == [cache.problem]


# -- the result cache ------------------------------------------------------------------------


def result(key: str, **fields) -> TagResult:
    defaults = dict(jet_key="j" * 32, key=key, label="quark", quark_probability=0.8,
                    parsed_by="schema", reasoning="r", model="m")  # fmt: skip
    return TagResult(**{**defaults, **fields})


def test_bulk_reads_cover_more_than_one_query_and_leave_out_expired_entries(tmp_path):
    cache = ResultCache(tmp_path)
    keys = [f"{i:032x}" for i in range(1001)]
    for key in keys:
        assert cache.put(result(key))
    assert set(cache.get_many(keys)) == set(keys)  # 3 queries of at most 500 keys
    text = cache._cache.get(keys[0])
    cache._cache.set(keys[0], text, expire=-1)  # expired: a miss, in bulk as alone
    assert keys[0] not in cache.get_many(keys[:3]) and cache.get(keys[0]) is None


def test_bulk_reads_of_a_cache_that_keeps_statistics_read_key_by_key(tmp_path):
    cache = ResultCache(tmp_path)
    cache.put(result(KEY))
    cache._cache.stats(enable=True)
    assert list(cache.get_many([KEY, "b" * 32])) == [KEY]
    assert cache._cache.stats() == (1, 1)  # one hit, one miss: read one by one


def test_bulk_reads_of_large_entries_and_of_entries_whose_file_went_away(tmp_path, caplog):
    cache = ResultCache(tmp_path)
    big = "long reasoning " * 5000  # stored in a file of its own
    for key in ("a" * 32, "b" * 32, "c" * 32):
        cache.put(result(key, reasoning=big))
    assert {k: r.reasoning for k, r in cache.get_many(["a" * 32, "b" * 32]).items()} == {
        "a" * 32: big,
        "b" * 32: big,
    }
    files = sorted(p for p in tmp_path.rglob("*.val"))
    assert len(files) == 3
    files[0].unlink()  # evicted meanwhile: that one is a miss, the others are read
    assert len(cache.get_many(["a" * 32, "b" * 32, "c" * 32])) == 2


def test_a_stored_result_is_never_marked_cached(tmp_path):
    cache = ResultCache(tmp_path)
    assert cache.put(result(KEY, cached=True))
    assert cache.get(KEY).cached is False


def test_delete_clear_stats_close_and_repr(tmp_path):
    cache = ResultCache(tmp_path / "c")
    cache.put(result(KEY))
    cache.put(result("b" * 32))
    assert repr(cache) == f"ResultCache({str(tmp_path / 'c')!r})"
    stats = cache.stats()
    assert stats["path"] == str(tmp_path / "c") and stats["entries"] == 2
    assert stats["size_bytes"] > 0 and stats["problem"] is None
    assert cache.delete(KEY) and not cache.delete(KEY) and KEY not in cache
    cache.close()
    assert cache.get("b" * 32) is not None  # reopened on use
    assert cache.clear() == 1 and len(cache) == 0
    cache._give_up("cannot be read", OSError("x"))
    assert not cache.delete("b" * 32) and cache.clear() == 0 and len(cache) == 0
    assert cache.stats()["size_bytes"] == 0 and cache.stats()["problem"]
    cache.close()  # no cache: nothing to close


def test_unreadable_entries_warn_once_naming_the_key(tmp_path, caplog):
    cache = ResultCache(tmp_path)
    caplog.set_level(logging.DEBUG, logger="vibe_jet_tagging.store.cache")
    cache._cache.set(KEY, json.dumps({"cache_format": 2, "key": KEY}))
    cache._cache.set("b" * 32, json.dumps({"cache_format": 2, "key": "b" * 32}))
    assert cache.get(KEY) is None and cache.get_many(["b" * 32]) == {}
    said = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert said[0] == (
        logging.WARNING,
        f"cache entry {KEY} is no result of this version, a miss: cache format 2, not 3",
    )
    assert said[1][0] == logging.DEBUG and "b" * 32 in said[1][1]


def test_an_entry_with_its_format_first_or_unknown_fields(tmp_path):
    cache = ResultCache(tmp_path)
    good = json.loads(result(KEY).model_dump_json())
    cache._cache.set(KEY, json.dumps({"cache_format": 3, **good}))  # not last: the slow path
    assert cache.get(KEY) == result(KEY)
    cache._cache.set(KEY, json.dumps({"cache_format": 3, **good, "usage": {"spam": 1}}))
    with pytest.raises(ValueError, match=r"unknown fields \['spam'\]"):
        _decode_result(cache._cache.get(KEY))
    assert cache.get(KEY) is None
    cache._cache.set(KEY, json.dumps([1, 2]))
    with pytest.raises(ValueError, match=r"cache format None, not 3"):
        _decode_result(cache._cache.get(KEY))


# -- what the first mutation run left: failure paths, messages, defaults -----------------------


def test_a_row_without_its_origin_is_this_users_model_answer(row):
    from vibe_jet_tagging.tagging.gate import check_row

    del row["origin"]
    assert check_row(row, where="w", signer=default_signer()).origin == "model"


def test_refresh_given_to_the_tagger_reaches_the_gate(tmp_path, jet):
    tagger = gated(tmp_path, ANSWER, ANSWER)
    tagger.invoke(jet)
    again = gated(tmp_path, ANSWER, refresh=True)
    assert again.gate.refresh is True
    assert not again.invoke(jet).cached


def test_a_failed_result_records_the_effort(tmp_path):
    from vibe_jet_tagging import ChatVLLM

    model = ChatVLLM(base_url="http://127.0.0.1:9/v1", reasoning_effort="low")
    tagger = JetTagger(model, template="zero_shot", cache=None)
    failed = tagger.gate.failed(Asked(KEY, KEY), TagError(kind="server", message="x"))
    assert failed.effort == "low"


def test_the_key_errors_say_exactly_what_to_do(tmp_path, monkeypatch):
    path = tmp_path / "k.key"
    _ = Signer(path=path).key
    path.chmod(0o660)
    with pytest.raises(ProvenanceKeyError) as loose:
        _ = Signer(path=path).key
    assert str(loose.value) == (
        f"{path}: others can read or write the signing key (mode 660), so they could sign "
        "results as you; `chmod 600` it, or remove it to get a new one (earlier results then "
        "no longer verify)"
    )
    path.chmod(0o600)
    uid = os.stat(path).st_uid
    monkeypatch.setattr(os, "getuid", lambda: uid + 1)
    with pytest.raises(ProvenanceKeyError) as other:
        _ = Signer(path=path).key
    assert str(other.value) == (
        f"{path}: the signing key belongs to another user (uid {uid}); use a key of your own "
        "(remove it, or set VJT_KEY_FILE)"
    )


def test_bulk_reads_ask_sqlite_once_per_500_keys(tmp_path, monkeypatch):
    from vibe_jet_tagging.store import cache as cache_module

    cache = ResultCache(tmp_path)
    keys = [f"{i:032x}" for i in range(1001)]
    for key in keys[:3]:
        cache.put(result(key))
    queries = []
    real = cache_module.diskcache_sql.query
    monkeypatch.setattr(
        cache_module.diskcache_sql, "query", lambda *a: queries.append(1) or real(*a)
    )
    assert len(cache.get_many(keys)) == 3
    assert len(queries) == 3


def test_read_failures_give_up_or_miss_saying_which(tmp_path, caplog, monkeypatch):
    import sqlite3

    from vibe_jet_tagging.store import cache as cache_module

    cache = ResultCache(tmp_path)
    cache.put(result(KEY))

    def broken(*args, **kwargs):
        raise OSError("gone")

    monkeypatch.setattr(cache._cache, "get", broken)
    assert cache.get(KEY) is None and cache.available
    assert caplog.records[-1].getMessage() == (
        f"cache entry {KEY} unreadable, treated as a miss: gone"
    )
    monkeypatch.setattr(cache_module.diskcache_sql, "query", broken)
    assert cache.get_many([KEY]) == {} and cache.available
    assert caplog.records[-1].getMessage() == "cache entries unreadable, treated as misses: gone"

    def corrupt(*args, **kwargs):
        raise sqlite3.DatabaseError("file is not a database")

    monkeypatch.setattr(cache_module.diskcache_sql, "query", corrupt)
    assert cache.get_many([KEY]) == {} and not cache.available
    assert cache.problem == (
        f"the cache {tmp_path} cannot be read (DatabaseError: file is not a database); "
        "going on without it"
    )
    other = ResultCache(tmp_path / "o")
    monkeypatch.setattr(other._cache, "get", corrupt)
    assert other.get(KEY) is None and not other.available
    assert "cannot be read (DatabaseError" in (other.problem or "")


def test_a_write_that_fails_says_so(tmp_path, monkeypatch):
    cache = ResultCache(tmp_path)

    def full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(cache._cache, "set", full)
    assert not cache.put(result(KEY))
    assert cache.problem == (
        f"the cache {tmp_path} cannot be written (OSError: No space left on device); going on "
        "without it"
    )


def test_a_cache_that_cannot_be_opened_says_so(tmp_path, caplog):
    (tmp_path / "cache.db").write_bytes(b"not a database " * 1000)
    cache = ResultCache(tmp_path)
    assert (cache.problem or "").startswith(f"the cache {tmp_path} cannot be opened (")
    assert caplog.records[-1].getMessage() == cache.problem


def test_the_default_result_cache_and_a_shared_one(tmp_path, monkeypatch):
    monkeypatch.setenv("VJT_CACHE_DIR", str(tmp_path))
    assert ResultCache().directory == tmp_path / "results"
    assert ResultCache(tmp_path / "s", shared=True).shared is True
    assert ResultCache(tmp_path / "p").shared is False


def test_the_json_only_disk_lists_keys_and_says_why_it_refuses(tmp_path):
    cache = diskcache.Cache(str(tmp_path), disk=JSONOnlyDisk)
    cache.set("k1", "v")
    cache.set("k2", "w" * 100_000)
    assert sorted(cache) == ["k1", "k2"]  # keys read back through the disk's get
    with pytest.raises(UnsafeCacheEntryError) as key:
        cache.disk.get(b"x", False)
    assert str(key.value) == "refusing to unpickle a cache key"
    with pytest.raises(UnsafeCacheEntryError) as entry:
        cache.disk.fetch(diskcache.core.MODE_PICKLE, None, b"x", False)
    assert str(entry.value) == "refusing to unpickle a cache entry"
