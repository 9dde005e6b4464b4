"""Every door an answer can come in by, forged as an attacker or an accident would forge it.

Each test reproduces one of the breaks issue 20 measured on an earlier main and shows that
nothing gets through the gate: no foreign, forged or edited label becomes a result, a cache
entry or a kept row. ``vjt`` runs in-process (``main``) against emulated servers on loopback,
so another user can be faked (the uid the results files are checked against) without root.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from vibe_jet_tagging import JetTagger, ResultCache, TaggingError, VJTError
from vibe_jet_tagging.cli import main
from vibe_jet_tagging.emulator import EmulatedServer
from vibe_jet_tagging.jets.dataset import load_sample
from vibe_jet_tagging.store import folder as folder_module

from .batch_standin import answer_lines
from .model_standin import MODEL, WEIGHTS, ModelStandIn

SAMPLE = load_sample()
JETS = [SAMPLE[i] for i in range(8)]
REAL = f"model {MODEL} (weights {WEIGHTS})"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tag_args(url: str, out: Path, *more: str, limit: int = 6) -> list[str]:
    return ["tag", "sample", "--limit", str(limit), "--template", "zero_shot",
            "--base-url", url, "-o", str(out), *more]  # fmt: skip


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def model_cache(root: Path) -> ResultCache | None:
    folder = root / "results"
    return ResultCache(folder) if folder.exists() else None


# -- 1. batch output: a refused file leaves nothing behind -----------------------------------------


def test_a_refused_batch_output_stores_nothing(emulator, tmp_path):
    tagger = JetTagger(base_url=emulator.base_url, template="zero_shot", cache=tmp_path / "c")
    lines = answer_lines(list(tagger.batch_requests(JETS)), emulator.base_url)
    assert len(lines) == 8
    evil = [dict(line) for line in lines]
    evil[-1] = json.loads(json.dumps(lines[-1]))
    evil[-1]["response"]["body"]["model"] = "evil/model"
    with pytest.raises(VJTError, match=r"<lines> line 8: answered by model 'evil/model'"):
        tagger.read_batch_output(evil, JETS)
    assert len(tagger.cache) == 0

    cut = tmp_path / "out.jsonl"
    text = "".join(json.dumps(line) + "\n" for line in lines)
    cut.write_text(text[: -len(json.dumps(lines[-1])) // 2 - 1])  # the last line cut short
    with pytest.raises(VJTError, match=rf"{cut} line 8: not a batch output line"):
        tagger.read_batch_output(cut, JETS)
    assert len(tagger.cache) == 0

    emulator.reset_stats()
    assert all(r.ok and not r.cached for r in tagger.batch(JETS))  # asked, not served
    assert emulator.stats()["requests_total"] == 8


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda body: body.pop("model"), "answered by no model"),
        (lambda body: body["usage"].update(completion_tokens=-5), "completion_tokens -5"),
        (lambda body: body.update(usage="lots"), "usage is not an object"),
    ],
)
def test_a_batch_line_without_a_model_or_with_impossible_usage_is_refused(
    emulator, tmp_path, change, said
):
    tagger = JetTagger(base_url=emulator.base_url, template="zero_shot", cache=tmp_path / "c")
    lines = answer_lines(list(tagger.batch_requests(JETS[:3])), emulator.base_url)
    change(lines[1]["response"]["body"])
    with pytest.raises(VJTError, match=rf"line 2: .*{said}"):
        tagger.read_batch_output(lines, JETS[:3])
    assert len(tagger.cache) == 0


def test_vjt_batch_import_of_a_refused_file_stores_nothing(emulator, tmp_path, capsys):
    folder, cache = tmp_path / "batch", tmp_path / "cache"
    os.environ["VJT_CACHE_DIR"] = str(cache)  # the fixture restores it
    code = main(["batch", "export", "sample", "--limit", "8", "-o", str(folder), "--template",
                 "zero_shot", "--emulated"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    requests = [json.loads(line) for line in (folder / "requests-00000.jsonl").open()]
    lines = answer_lines(requests, emulator.base_url)
    lines[-1]["response"]["body"]["model"] = "evil/model"
    output = folder / "out.jsonl"
    write(output, lines)
    capsys.readouterr()
    code = main(["batch", "import", str(output), "-o", str(tmp_path / "r.jsonl")])
    assert code == 2
    assert "line 8: answered by model 'evil/model'" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "r.jsonl").exists()
    emulated = ResultCache(cache / "results-emulated")
    assert len(emulated) == 0


# -- 2. vjt cache import: only rows that verify, all or nothing ------------------------------------


@pytest.fixture
def tagged(emulator, tmp_path, capsys) -> Path:
    """A results file of 6 jets from ``vjt tag`` against the emulated server."""
    out = tmp_path / "tagged.jsonl"
    assert main(tag_args(emulator.base_url, out)) == 0, capsys.readouterr().err
    capsys.readouterr()
    return out


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        ({"label": "quark", "quark_probability": 0.99}, "does not verify"),
        ({"label": "quark", "quark_probability": 0.01}, "contradicts quark_probability"),
        ({"parsed_by": "magic"}, "parsed_by 'magic'"),
        ({"index": 1e300}, "is not a jet index"),
    ],
)
def test_cache_import_refuses_an_edited_row_and_stores_nothing(
    tagged, tmp_path, capsys, monkeypatch, edit, said
):
    rows = read(tagged)
    rows[3].update(edit)
    write(tagged, rows)
    fresh = tmp_path / "fresh-cache"
    monkeypatch.setenv("VJT_CACHE_DIR", str(fresh))
    assert main(["cache", "import", str(tagged)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"{tagged} line 4: " in line and said in line, line
    for folder in ("results", "results-emulated"):  # rows 1-3 were fine: still none stored
        assert not (fresh / folder).exists() or len(ResultCache(fresh / folder)) == 0


def test_cache_import_takes_a_foreign_file_only_when_trusted_and_marks_it(
    tagged, tmp_path, capsys, monkeypatch, emulator
):
    rows = read(tagged)
    for row in rows:  # another user's key signed these: this user's does not verify them
        row["signature"] = "0" * 32
    write(tagged, rows)
    fresh = tmp_path / "fresh-cache"
    monkeypatch.setenv("VJT_CACHE_DIR", str(fresh))
    assert main(["cache", "import", str(tagged)]) == 2
    assert "does not verify" in one_error_line(capsys.readouterr().err)
    assert main(["cache", "import", "--trust", str(tagged)]) == 0
    assert "6 of them marked imported" in capsys.readouterr().err
    again = tmp_path / "again.jsonl"
    assert main(tag_args(emulator.base_url, again)) == 0
    served = read(again)
    assert all(row["cached"] and row["origin"] == "imported" for row in served)


# -- 3. a server that joins late is verified before its answers count ------------------------------


def test_a_server_down_at_the_start_is_read_before_it_answers(emulator, tmp_path, caplog):
    late_port = free_port()
    with ModelStandIn(emulator.base_url) as real:
        tagger = JetTagger(
            base_url=[real.base_url, f"http://127.0.0.1:{late_port}/v1"],
            template="zero_shot",
            cache=tmp_path / "c",
            max_retries=3,
        )
        assert tagger.settings_key  # reads both: the second is down
        with EmulatedServer(port=late_port) as late:
            late.reset_stats()
            results = tagger.batch([SAMPLE[i] for i in range(40)])
            assert late.stats()["requests_total"] == 0  # GET /v1/models only
        assert all(r.ok and r.identity == REAL for r in results)
        assert real.chat_requests == 40
    assert f"127.0.0.1:{late_port}/v1 is set aside for the rest of the run" in caplog.text
    assert "emulated server" in caplog.text


def test_a_server_replaced_between_two_requests_is_read_again(emulator, tmp_path):
    port = free_port()
    with ModelStandIn(emulator.base_url, port=port) as real:
        tagger = JetTagger(base_url=real.base_url, template="zero_shot", cache=None,
                           max_retries=0)  # fmt: skip
        assert tagger.invoke(JETS[0]).identity == REAL
    with EmulatedServer(port=port) as emulated:
        with pytest.raises(TaggingError) as failed:
            tagger.invoke(JETS[1])  # over a new connection: read first, found to be another
        assert emulated.stats()["requests_total"] == 1  # it answered; the answer was dropped
    assert failed.value.result.error.kind in ("connection", "server")
    pool = tagger.model.endpoint_pool
    assert pool is not None and "emulated server" in (pool.endpoints[0].foreign or "")


# -- 4. writes never follow links ------------------------------------------------------------------


def test_writes_never_follow_planted_links(emulator, tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out.jsonl"
    for planted in ("out.jsonl.tmp", "out.set-aside.jsonl.tmp", ".out.jsonl.tmp"):
        (tmp_path / planted).symlink_to(victim)
    assert main(tag_args(emulator.base_url, out, "--no-cache")) == 0
    assert main(tag_args(emulator.base_url, out, "--no-cache", limit=3)) == 0  # rows set aside
    assert victim.read_text() == "precious"
    assert not out.is_symlink() and len(read(out)) == 3
    side = tmp_path / "out.set-aside.jsonl"
    assert not side.is_symlink() and len(read(side)) == 3
    link = tmp_path / "link.jsonl"
    link.symlink_to(victim)
    capsys.readouterr()
    assert main(tag_args(emulator.base_url, link, "--no-cache")) == 2
    assert "is a symlink" in one_error_line(capsys.readouterr().err)
    assert victim.read_text() == "precious"


# -- 5. another user's results file is not trusted on resume ---------------------------------------


def test_another_users_results_file_is_refused_unless_trusted(
    emulator, tagged, capsys, monkeypatch
):
    rows = read(tagged)
    stated = {row["index"]: row["label"] for row in rows}
    for row in rows:  # every label edited
        row["label"] = "quark" if row["label"] == "gluon" else "gluon"
        row["quark_probability"] = 1 - row["quark_probability"]
    write(tagged, rows)
    tagged.chmod(0o666)
    with monkeypatch.context() as other_user:  # another user ran it
        other_user.setattr(folder_module, "user_id", lambda: os.getuid() + 1)
        assert main(tag_args(emulator.base_url, tagged, "--no-cache")) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"refusing {tagged}: it belongs to another user" in line
    assert main(tag_args(emulator.base_url, tagged)) == 2  # ours, but others can write it
    assert f"refusing {tagged}: its group or others can write it" in one_error_line(
        capsys.readouterr().err
    )
    tagged.chmod(0o644)
    emulator.reset_stats()
    assert main(tag_args(emulator.base_url, tagged, "--no-cache")) == 0
    err = capsys.readouterr().err
    assert "6 labelled rows were not kept" in err and "does not verify" in err
    assert emulator.stats()["requests_total"] == 6  # every edited jet asked again
    again = read(tagged)
    assert {row["index"]: row["label"] for row in again} == stated  # the model's, not the edit
    assert all(row["origin"] == "model" and not row["cached"] for row in again)


def test_a_trusted_file_is_kept_and_marked_imported(emulator, tagged, capsys):
    rows = read(tagged)
    for row in rows:
        row["signature"] = "f" * 32  # signed by someone else's key
    write(tagged, rows)
    emulator.reset_stats()
    assert main(tag_args(emulator.base_url, tagged, "--trust", str(tagged))) == 0
    assert "6 rows are imported from a trusted file" in capsys.readouterr().err
    assert emulator.stats()["requests_total"] == 0
    kept = read(tagged)
    assert all(row["origin"] == "imported" for row in kept)
    assert main(["evaluate", str(tagged), "--out", str(tagged.parent / "report")]) == 0
    report = json.loads((tagged.parent / "report" / "report.json").read_text())
    assert "imported" in json.dumps(report["notes"])


# -- 6. no secret is written anywhere --------------------------------------------------------------


def test_a_password_in_the_base_url_is_written_nowhere(emulator, tmp_path, capsys, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("VJT_CACHE_DIR", str(cache))
    port = emulator.base_url.split(":")[2].split("/")[0]
    url = f"http://someone:secret@127.0.0.1:{port}/v1"
    down = f"http://someone:secret@127.0.0.1:{free_port()}/v1"
    out = tmp_path / "out.jsonl"
    codes = [
        main(["tag", "sample", "--limit", "6", "--template", "zero_shot", "--base-url", url,
              "--base-url", down, "-o", str(out), "--reasoning"]),
        main(["evaluate", str(out), "--out", str(tmp_path / "report")]),
        main(["batch", "export", "sample", "--limit", "4", "--template", "zero_shot",
              "--base-url", url, "--constraint", "server", "-o", str(tmp_path / "batch")]),
        main(["tag", "sample", "--limit", "2", "--base-url", down, "-o", str(tmp_path / "x")]),
    ]  # fmt: skip
    said = capsys.readouterr()
    assert codes[:3] == [0, 0, 0], said.err
    assert codes[3] == 2  # the down server: its error line
    assert "someone@127.0.0.1" in said.err  # the URLs are shown, their password not
    assert "secret" not in said.err + said.out
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "cache.db" for p in files) and any(p.suffix == ".html" for p in files)
    for path in files:
        assert b"secret" not in path.read_bytes(), path


# -- 7. no answer is larger than the bound ---------------------------------------------------------


def test_an_answer_over_the_bound_is_an_error_never_kept(emulator, tmp_path):
    with ModelStandIn(emulator.base_url, pad=3_000_000) as huge:
        tagger = JetTagger(base_url=huge.base_url, template="zero_shot", cache=tmp_path / "c",
                           max_retries=0)  # fmt: skip
        with pytest.raises(TaggingError) as failed:
            tagger.invoke(JETS[0])
    result = failed.value.result
    assert result.error.kind == "oversized"
    assert "larger than 1,048,576 bytes" in result.error.message
    assert result.answer is None and result.reasoning is None
    assert len(tagger.cache) == 0


def test_a_batch_line_over_the_bound_is_an_error_of_its_jet(emulator, tmp_path):
    tagger = JetTagger(base_url=emulator.base_url, template="zero_shot", cache=tmp_path / "c",
                       max_answer_bytes=10_000)  # fmt: skip
    lines = answer_lines(list(tagger.batch_requests(JETS[:3])), emulator.base_url)
    lines[1]["response"]["body"]["choices"][0]["message"]["reasoning"] = "x" * 200_000
    path = tmp_path / "out.jsonl"
    write(path, lines)
    output = tagger.read_batch_output(path, JETS[:3])
    assert output.results[0].ok and output.results[2].ok
    assert isinstance(output.results[1], TaggingError)
    assert output.results[1].result.error.kind == "oversized"
    assert len(tagger.cache) == 2


# -- 8. the exit status says what happened ---------------------------------------------------------


def test_a_server_that_fails_every_request_exits_non_zero(fresh_emulator, tmp_path, capsys):
    broken = fresh_emulator(faults={"server_error": 1.0})
    out = tmp_path / "out.jsonl"
    code = main(tag_args(broken.base_url, out, "--max-retries", "0", "--concurrency", "1000",
                         limit=5))  # fmt: skip
    assert code == 1
    line = one_error_line(capsys.readouterr().err)
    assert "5 of 5 jets got no answer because the server failed" in line
    assert len(read(out)) == 5


# -- 9. smaller doors ------------------------------------------------------------------------------


def test_a_config_file_that_is_no_regular_file_is_one_line(tmp_path, monkeypatch, capsys):
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    for path, said in (("/dev/zero", "not a regular file"), (str(fifo), "not a regular file")):
        monkeypatch.setenv("VJT_CONFIG", path)
        assert main(["cache", "stats"]) == 2
        assert said in one_error_line(capsys.readouterr().err)
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * (2 << 20))
    monkeypatch.setenv("VJT_CONFIG", str(big))
    assert main(["cache", "stats"]) == 2
    assert "more than a config file holds" in one_error_line(capsys.readouterr().err)


def test_a_negative_seed_names_the_setting(monkeypatch, capsys):
    monkeypatch.setenv("VJT_SEED", "-5")
    assert main(["tag", "sample", "-o", "x.jsonl", "--emulate", "--limit", "1"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "seed '-5' (from VJT_SEED)" in line


def test_merge_refuses_rows_without_settings_conflicts_and_impossible_values(
    tagged, tmp_path, capsys
):
    rows = read(tagged)
    other = "quark" if rows[0]["label"] == "gluon" else "gluon"
    flipped = {**rows[0], "label": other, "quark_probability": 1 - rows[0]["quark_probability"]}
    cases = {
        "no settings": ([{k: v for k, v in rows[0].items() if k != "settings"}], "has no settings"),
        "conflict": ([rows[0], flipped], f"conflict: jet {rows[0]['index']} is"),
        "contradiction": ([{**rows[0], "quark_probability": 1.0 if rows[0]["label"] == "gluon"
                            else 0.0}], "contradicts"),
        "index": ([{**rows[0], "index": 1e300}], "is not a jet index"),
    }  # fmt: skip
    for name, (part, said) in cases.items():
        path = tmp_path / f"{name.replace(' ', '-')}.jsonl"
        write(path, part)
        code = main(["merge", str(path), "-o", str(tmp_path / "merged.jsonl")])
        line = one_error_line(capsys.readouterr().err)
        assert code == 2 and said in line, (name, line)
    assert not (tmp_path / "merged.jsonl").exists()


# -- 10. a request that kills servers is carried to at most one more -------------------------------


def test_a_request_that_kills_servers_is_not_carried_to_all_of_them(fresh_emulator):
    servers = [fresh_emulator(crash_on_seed=True) for _ in range(3)]
    tagger = JetTagger(base_url=[s.base_url for s in servers], template="zero_shot",
                       seed=5, cache=None, max_retries=4)  # fmt: skip
    with pytest.raises(TaggingError) as failed:
        tagger.invoke(JETS[0])
    assert failed.value.result.error.kind == "repeated_failure"
    import httpx

    health = [httpx.get(s.base_url.removesuffix("/v1") + "/health").status_code for s in servers]
    assert sorted(health) == [200, 503, 503]
