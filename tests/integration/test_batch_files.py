"""Offline batch files through the tagger: request bodies, answers read back, re-asks, refusals.

Answers come from the emulated server through a stand-in of ``vllm run-batch``
(:mod:`batch_standin`), over real HTTP.
"""

from __future__ import annotations

import json

import pytest

from vibe_jet_tagging import ChatVLLM, JetTagger, TaggingError, Usage, VJTError, load_sample
from vibe_jet_tagging.scale.batchfiles import REASK_SUFFIX, constraint_of, offline_server
from vibe_jet_tagging.tagging.parsing import COMPACT_LABEL_REGEX

from .batch_standin import answer_lines
from .wire import Wire

SAMPLE = load_sample()
JETS = [SAMPLE[i] for i in range(5, 4000, 250)]  # 16 real jets
EXAMPLES = SAMPLE[3000:3400]
COMPARED = ("label", "quark_probability", "parsed_by", "answer", "reasoning", "finish_reason")


def tokens(usage: Usage) -> Usage:
    """Usage but the prefix-cache hits (they depend on the order requests reach the server)."""
    return usage.model_copy(update={"cached_input_tokens": None})


def tagger_for(server, wire: Wire | None = None, *, cache=None, **options) -> JetTagger:
    names = ("reasoning_effort", "max_tokens", "temperature", "seed", "extra_body")
    model_options = {k: options.pop(k) for k in names if k in options}
    if wire is not None:
        model_options["http_async_client"] = wire.client()
    model = ChatVLLM(base_url=server.base_url, **model_options)
    options.setdefault("examples", EXAMPLES)
    return JetTagger(model, cache=cache, **options)


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"reasoning_effort": "high", "temperature": 0.7, "seed": 3, "max_tokens": 4000},
        {"logprobs": True, "template": "zero_shot", "extra_body": {"top_k": 20}},
        {"structured_output": False, "reasoning_effort": "low"},
    ],
)
@pytest.mark.parametrize("server", ["asked", "offline emulated", "regex", "response_format"])
def test_the_exported_body_is_the_body_sent_over_http(emulator, settings, server):
    """The same body and key as over HTTP, with the server asked or declared offline."""
    wire = Wire()
    tagger = tagger_for(emulator, wire, **settings)
    exporter = tagger_for(emulator, **settings)
    if server == "offline emulated":  # declared: what the emulator says it is
        exporter.assume_server(offline_server(emulator.model, emulated=True))
    elif server != "asked":  # a vLLM declared offline; the HTTP side sends to the emulator
        for each in (tagger, exporter):
            each.assume_server(offline_server(emulator.model, constraint=server))
    jet = JETS[3]
    tagger.invoke(jet)
    [sent] = wire.bodies
    [line] = exporter.batch_requests([jet])
    assert line == {
        "custom_id": tagger.key_for(jet),
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": sent,
    }
    if settings.get("structured_output", True):
        regex = server != "response_format"
        assert ("structured_outputs" in sent) is regex
        assert ("response_format" in sent) is not regex
        assert constraint_of(exporter) == ("regex" if regex else "response_format")
    if regex := sent.get("structured_outputs"):
        assert regex == {"regex": COMPACT_LABEL_REGEX}


def test_a_declared_server_is_part_of_the_key(emulator):
    jet = JETS[0]
    keys = set()
    for server in [
        offline_server(emulator.model),
        offline_server(emulator.model, root="/models/gpt-oss"),
        offline_server(emulator.model, constraint="response_format"),
        offline_server(emulator.model, emulated=True),
    ]:
        tagger = tagger_for(emulator)
        tagger.assume_server(server)
        keys.add(tagger.key_for(jet))
        with pytest.raises(ValueError, match="made keys or requests already"):
            tagger.assume_server(server)
    assert len(keys) == 4


def test_answers_read_back_equal_tagging_over_http_and_fill_the_cache(fresh_emulator, tmp_path):
    server = fresh_emulator()
    jets = [*JETS, JETS[0]]  # a repeated jet: one request, two results
    exporter = tagger_for(server, cache=tmp_path / "batch")
    lines = list(exporter.batch_requests(jets))
    assert len(lines) == len(JETS)
    assert server.stats()["requests_total"] == 0  # exporting asks nothing

    answers = answer_lines(lines, server.base_url)
    output = exporter.read_batch_output(answers, jets)
    assert output.missing == 0 and not output.reasks and output.duplicates == 0
    direct = tagger_for(server, cache=None).batch(jets)
    for read, asked in zip(output.results, direct, strict=True):
        assert read.ok
        assert {f: getattr(read, f) for f in COMPARED} == {f: getattr(asked, f) for f in COMPARED}
        assert tokens(read.usage) == tokens(asked.usage) and read.usage.requests == 1
        assert (read.index, read.jet_key, read.key) == (asked.index, asked.jet_key, asked.key)
        assert read.settings == exporter.settings_key
    assert output.results[-1].cached and not output.results[0].cached  # the repeat is a copy

    # The cache now holds every answer: tagging asks the server nothing, and a new export
    # has nothing to ask.
    server.reset_stats()
    again = tagger_for(server, cache=tmp_path / "batch").batch(jets)
    assert server.stats()["requests_total"] == 0
    assert [r.label for r in again] == [r.label for r in output.results]
    assert list(tagger_for(server, cache=tmp_path / "batch").batch_requests(jets)) == []


def test_failed_lines_are_errors_never_labels_and_a_later_answer_wins(fresh_emulator, tmp_path):
    server = fresh_emulator()
    tagger = tagger_for(server, cache=tmp_path / "c")
    lines = list(tagger.batch_requests(JETS))
    ids = [line["custom_id"] for line in lines]
    fail = {ids[0]: "exception", ids[1]: "http500", ids[2]: "malformed", ids[3]: "expired"}
    first = answer_lines(lines, server.base_url, fail)
    output = tagger.read_batch_output(first, JETS)
    kinds = {}
    for i in range(4):
        error = output.results[i]
        assert isinstance(error, TaggingError) and error.result.label is None
        assert "<lines> line" in error.result.error.message
        assert ids[i] not in tagger.cache
        kinds[fail[ids[i]]] = (error.result.error.kind, error.result.error.status)
    assert kinds == {
        "exception": ("bad_request", 400),
        "http500": ("server", 500),
        "malformed": ("server", 200),
        "expired": ("server", None),
    }
    assert all(r.ok for r in output.results[4:])
    assert output.results[3].result.error.message.startswith("no response in <lines> line 4: ")

    # A rerun of the failed lines (another file) gives them labels; the failures are dropped.
    rerun = answer_lines(lines[:4], server.base_url)
    output = tagger.read_batch_output(first + rerun, JETS)
    assert all(r.ok for r in output.results) and output.duplicates == 0
    output = tagger.read_batch_output(rerun + first, JETS)
    assert all(r.ok for r in output.results) and output.duplicates == 4


def test_lines_of_another_export_or_model_are_refused(emulator, tmp_path):
    tagger = tagger_for(emulator)
    other = tagger_for(emulator, template="zero_shot")
    answers = answer_lines(list(other.batch_requests(JETS[:2])), emulator.base_url)
    path = tmp_path / "out.jsonl"
    mine = answer_lines(list(tagger.batch_requests(JETS[:2])), emulator.base_url)
    path.write_text("".join(json.dumps(line) + "\n" for line in mine + answers))
    with pytest.raises(VJTError, match=rf"^{path} line 3: custom_id '{answers[0]['custom_id']}'"):
        tagger.read_batch_output(path, JETS[:2])

    renamed = json.loads(json.dumps(mine[0]))
    renamed["response"]["body"]["model"] = "another/model"
    with pytest.raises(VJTError, match=r"<lines> line 1: answered by model 'another/model'"):
        tagger.read_batch_output([renamed], JETS[:2])
    with pytest.raises(VJTError, match=r"<lines> line 2: not a batch output line"):
        tagger.read_batch_output([json.dumps(mine[1]), "{not json"], JETS[:2])
    request = next(tagger.batch_requests(JETS[:1]))
    with pytest.raises(VJTError, match=r"line 1: not a batch output line \(a request line\)"):
        tagger.read_batch_output([request], JETS[:2])


def test_a_reask_round_sends_what_the_tagger_sends_and_reads_the_same(fresh_emulator, tmp_path):
    # Every answer malformed: over HTTP the tagger re-asks each jet once, then falls back to
    # the regex parser on the first answer.
    server = fresh_emulator(faults={"malformed_json": 1.0})
    wire = Wire()
    direct = tagger_for(server, wire).batch(JETS, return_exceptions=True)
    assert len(wire.bodies) == 2 * len(JETS)

    tagger = tagger_for(server, cache=tmp_path / "c")
    requests = list(tagger.batch_requests(JETS))
    first = answer_lines(requests, server.base_url)
    output = tagger.read_batch_output(first, JETS)
    assert len(output.reasks) == len(JETS) and output.missing == len(JETS)
    assert len(tagger.cache) == 0
    reasks = list(tagger.batch_requests(JETS, reasks=output.reasks))
    assert {line["custom_id"] for line in reasks} == {
        tagger.key_for(jet) + REASK_SUFFIX for jet in JETS
    }
    sent = sorted(json.dumps(body, sort_keys=True) for body in wire.bodies)
    exported = [line["body"] for line in requests + reasks]
    assert sorted(json.dumps(body, sort_keys=True) for body in exported) == sent

    second = answer_lines(reasks, server.base_url)
    done = tagger.read_batch_output(second[::-1] + first, JETS)  # any order of lines
    assert not done.reasks and done.missing == 0
    for read, asked in zip(done.results, direct, strict=True):
        read, asked = getattr(read, "result", read), getattr(asked, "result", asked)
        assert {f: getattr(read, f) for f in COMPARED} == {f: getattr(asked, f) for f in COMPARED}
        assert (read.error, tokens(read.usage)) == (asked.error, tokens(asked.usage))
        assert read.usage.requests == 2

    # A server that answers the re-ask well: the label comes from the re-ask.
    server.configure(faults={"malformed_json": 0.0})
    good = answer_lines(reasks, server.base_url)
    done = tagger_for(server, cache=None).read_batch_output(first + good, JETS)
    assert {r.parsed_by for r in done.results} == {"reask"}
    # The second round alone has nothing to pair with: no result, none invented.
    alone = tagger_for(server, cache=None).read_batch_output(good, JETS)
    assert alone.missing == len(JETS) and alone.orphans == len(JETS)


def test_an_invalid_jet_is_an_input_error_in_its_place(emulator, caplog):
    tagger = tagger_for(emulator)
    broken = SAMPLE[7].constituents.copy()
    broken[0, 0] = float("nan")
    jets = [JETS[0], broken, JETS[1]]
    lines = list(tagger.batch_requests(jets))
    assert len(lines) == 2
    assert "jet 1 not exported" in caplog.text
    output = tagger.read_batch_output(answer_lines(lines, emulator.base_url), jets)
    assert output.results[0].ok and output.results[2].ok
    assert isinstance(output.results[1], ValueError)
    [asked] = tagger.batch([broken], return_exceptions=True)
    assert str(output.results[1]) == str(asked)  # what tagging over HTTP says of it
