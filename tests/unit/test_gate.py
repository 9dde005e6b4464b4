"""The answer gate's rules, one test each (no network: a scripted chat model)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage

from vibe_jet_tagging import JetTagger, ResultCache, TaggingError
from vibe_jet_tagging.store.provenance import (
    SIGNED,
    ProvenanceKeyError,
    Signer,
    answer_digest,
    default_key_path,
    default_signer,
)
from vibe_jet_tagging.store.rows import result_row
from vibe_jet_tagging.tagging.gate import Asked, RowRefused, check_row, row_problem

from .test_tagger_scripted import scripted

ANSWER = '{"label": "gluon", "quark_probability": 0.2}'


def gated(tmp_path: Path, *answers: str, **options) -> JetTagger:
    options.setdefault("template", "zero_shot")
    options.setdefault("cache", ResultCache(tmp_path / "cache"))
    return JetTagger(scripted(*answers), **options)


def labelled_row(tagger: JetTagger, jet) -> dict:
    return result_row(tagger.invoke(jet), index=0, truth=0, source="sample", backend="server")


# -- what passes is signed, and only a signed result is stored -----------------------------------


def test_an_admitted_answer_is_signed_over_what_makes_it_the_models(tmp_path, jet):
    tagger = gated(tmp_path, ANSWER)
    result = tagger.invoke(jet)
    assert result.signature and result.identity.startswith("chat model ScriptedModel")
    assert result.answer_digest == answer_digest(ANSWER)
    assert result.origin == "model"
    signer = default_signer()
    fields = {name: getattr(result, name) for name in SIGNED} | {"signature": result.signature}
    assert signer.verifies(fields)
    for name, other in (("label", "quark"), ("quark_probability", 0.3), ("key", "0" * 32),
                        ("answer_digest", answer_digest("x")), ("identity", "emulated"),
                        ("origin", "imported"), ("jet_key", "1" * 32), ("settings", "s"),
                        ("parsed_by", "regex")):  # fmt: skip
        assert not signer.verifies({**fields, name: other}), name


def test_only_a_signed_labelled_result_enters_the_cache(tmp_path, jet):
    tagger = gated(tmp_path, ANSWER)
    result = tagger.invoke(jet)
    assert len(tagger.cache) == 1
    tagger.cache.clear()
    assert not tagger.gate.store(result.model_copy(update={"signature": "0" * 32}))
    assert not tagger.gate.store(result.model_copy(update={"signature": None}))
    assert not tagger.gate.store(result.model_copy(update={"label": None}))
    assert len(tagger.cache) == 0
    assert tagger.gate.store(result)
    assert len(tagger.cache) == 1 and tagger.gate.stored_since(result.key)


def test_a_cache_entry_is_served_only_when_it_verifies_for_its_key(tmp_path, jet):
    tagger = gated(tmp_path, ANSWER)
    result = tagger.invoke(jet)
    cache = tagger.cache
    key = result.key
    assert tagger.gate.lookup(key, jet) is not None
    forged = result.model_copy(update={"label": "quark", "quark_probability": 0.9})
    cache.put(forged)  # written beside the gate: refused on the way out
    assert tagger.gate.lookup(key, jet) is None
    assert tagger.gate.lookup_many([key]) == {}
    cache.put(result.model_copy(update={"key": "f" * 32}))  # a good entry under another key
    assert tagger.gate.lookup("f" * 32, jet) is None
    cache.put(result)
    assert tagger.gate.lookup(key, jet) is not None
    tagger.refresh = True  # refresh is decided by the gate for every look-up
    assert tagger.gate.lookup(key, jet) is None and tagger.gate.lookup_many([key]) == {}


def test_refresh_asks_again_for_a_single_jet_and_for_a_batch(tmp_path, jet):
    tagger = gated(tmp_path, ANSWER, ANSWER, ANSWER, ANSWER)
    assert not tagger.invoke(jet).cached
    assert tagger.invoke(jet).cached
    assert tagger.batch([jet])[0].cached
    tagger.refresh = True
    assert not tagger.invoke(jet).cached
    assert not tagger.batch([jet])[0].cached
    assert len(tagger.model.asked) == 3


def test_an_answer_over_the_bound_is_never_parsed_or_kept(tmp_path, jet):
    long = AIMessage(ANSWER, additional_kwargs={"reasoning_content": "x" * 2000})
    tagger = gated(tmp_path, long, max_answer_bytes=1000)
    with pytest.raises(TaggingError) as failed:
        tagger.invoke(jet)
    result = failed.value.result
    assert result.error.kind == "oversized" and result.answer is None and result.reasoning is None
    assert len(tagger.cache) == 0
    assert gated(tmp_path, long, max_answer_bytes=2100).invoke(jet).ok  # the bound, not more


def test_a_failed_result_is_built_in_one_place_with_its_answer(tmp_path, jet):
    tagger = gated(tmp_path, "I cannot say.", "Still cannot.")
    with pytest.raises(TaggingError) as failed:
        tagger.invoke(jet)
    result = failed.value.result
    assert result.error.kind == "parse" and result.answer == "Still cannot."
    assert result.usage.requests == 2 and result.signature is None and result.label is None
    made = tagger.gate.failed(Asked("k" * 32, "j" * 32, 3), failed.value.result.error)
    assert (made.key, made.jet_key, made.index, made.model) == (
        "k" * 32, "j" * 32, 3, tagger.model_name,
    )  # fmt: skip


# -- rows: every rule refuses what it should ----------------------------------------------------


@pytest.fixture
def row(tmp_path, jet) -> dict:
    return labelled_row(gated(tmp_path, ANSWER), jet)


def test_an_untouched_row_verifies(row):
    result = check_row(row, where="f line 1", signer=default_signer())
    assert result.label == "gluon" and result.origin == "model"


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        ({"label": "up"}, "label 'up' is not quark or gluon"),
        ({"label": None}, "label None"),
        ({"error": "boom"}, "a row with an error has no label"),
        ({"quark_probability": 1.5}, "quark_probability 1.5 is not a number from 0 to 1"),
        ({"quark_probability": -0.1}, "is not a number from 0 to 1"),
        ({"quark_probability": "0.2"}, "quark_probability '0.2' is not a number"),
        ({"quark_probability": True}, "quark_probability True is not a number"),
        ({"quark_probability": float("nan")}, "is not a number from 0 to 1"),
        ({"quark_probability": 0.9}, "contradicts quark_probability 0.9"),
        ({"parsed_by": "magic"}, "parsed_by 'magic'"),
        ({"parsed_by": None}, "parsed_by None"),
        ({"key": "short"}, "key 'short' is not a key"),
        ({"key": "G" * 32}, "is not a key"),
        ({"jet_key": None}, "jet_key None is not a key"),
        ({"settings": None}, "no settings key"),
        ({"index": -1}, "index -1 is not a jet index"),
        ({"index": 1e300}, "index 1e+300 is not a jet index"),
        ({"index": True}, "index True is not a jet index"),
        ({"index": 2**53}, "is not a jet index"),
        ({"input_tokens": -3}, "input_tokens -3 is not a count"),
        ({"requests": 1.5}, "requests 1.5 is not a count"),
        ({"origin": "mine"}, "origin 'mine'"),
    ],
)
def test_a_row_with_impossible_values_is_refused_naming_where(row, edit, said):
    edited = {**row, **edit}
    assert said in (row_problem(edited) or "")
    with pytest.raises(RowRefused, match=r"^out.jsonl line 7: "):
        check_row(edited, where="out.jsonl line 7", signer=default_signer(), trusted=True)


def test_a_gluon_row_with_probability_one_half_is_a_contradiction(row):
    assert "contradicts" in (row_problem({**row, "quark_probability": 0.5}) or "")
    assert row_problem({**row, "quark_probability": 0.49}) is None
    assert row_problem({**row, "quark_probability": None}) is None
    assert row_problem({**row, "label": "quark", "quark_probability": 0.5}) is None


def test_an_edited_row_does_not_verify_and_is_taken_only_when_trusted(row):
    signer = default_signer()
    edited = {**row, "quark_probability": 0.1}  # still a consistent gluon: only the key tells
    with pytest.raises(RowRefused, match="does not verify"):
        check_row(edited, where="w", signer=signer)
    taken = check_row(edited, where="w", signer=signer, trusted=True)
    assert taken.origin == "imported" and taken.quark_probability == 0.1
    fields = {name: getattr(taken, name) for name in SIGNED} | {"signature": taken.signature}
    assert signer.verifies(fields)  # signed as imported: it stays marked
    other = Signer(b"k" * 32)
    with pytest.raises(RowRefused, match="does not verify"):
        check_row(row, where="w", signer=other)  # another user's key


def test_a_resumed_row_must_be_this_jets_under_these_settings(tmp_path, row, labelled_pool):
    tagger = gated(tmp_path, ANSWER)
    jet, other = labelled_pool[0][0], labelled_pool[5][0]
    assert tagger.gate.admit_row(row, where="w", jet=jet).label == "gluon"
    with pytest.raises(RowRefused, match="made for another jet or with other settings"):
        tagger.gate.admit_row(row, where="w", jet=other)


# -- the signing key -----------------------------------------------------------------------


def test_the_key_is_made_once_private_and_refused_when_others_could_read_it(tmp_path, monkeypatch):
    path = tmp_path / "cfg" / "provenance.key"
    monkeypatch.setenv("VJT_KEY_FILE", str(path))
    assert default_key_path() == path
    first = Signer(path=path).key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Signer(path=path).key == first  # read back, not made again
    path.chmod(0o640)
    with pytest.raises(ProvenanceKeyError, match="others can read or write"):
        _ = Signer(path=path).key
    path.chmod(0o600)
    link = tmp_path / "link.key"
    link.symlink_to(path)
    with pytest.raises(ProvenanceKeyError, match="cannot read the signing key"):
        _ = Signer(path=link).key
    path.write_text("not hex\n")
    with pytest.raises(ProvenanceKeyError, match="expected hex digits"):
        _ = Signer(path=path).key
    path.write_text("abcd\n")
    with pytest.raises(ProvenanceKeyError, match="too short"):
        _ = Signer(path=path).key


def test_another_users_key_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "provenance.key"
    _ = Signer(path=path).key
    monkeypatch.setattr(os, "getuid", lambda: os.stat(path).st_uid + 1)
    with pytest.raises(ProvenanceKeyError, match="belongs to another user"):
        _ = Signer(path=path).key


def test_a_signature_is_short_hex_and_depends_on_every_signed_field():
    signer = Signer(b"s" * 32)
    fields = {name: f"v-{name}" for name in SIGNED}
    signature = signer.sign(fields)
    assert len(signature) == 32 and int(signature, 16) >= 0
    assert signer.verifies({**fields, "signature": signature})
    assert not signer.verifies({**fields, "signature": None})
    assert not signer.verifies(fields)
    for name in SIGNED:
        assert signer.sign({**fields, name: "changed"}) != signature, name
    assert answer_digest(None) is None
    assert answer_digest("a") != answer_digest("b") and len(answer_digest("a")) == 32


def test_rows_carry_what_the_gate_checks(row):
    for name in ("identity", "answer_digest", "origin", "signature"):
        assert row[name] is not None, name
    json.dumps(row)
