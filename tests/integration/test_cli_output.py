"""Where ``vjt`` writes: tables and results on stdout, progress and warnings on stderr, so that
``vjt evaluate results.jsonl > metrics.txt`` keeps the tables (as Unix tools do).

The commands run in this process (``main``), against the emulated server they start.
"""

from __future__ import annotations

from vibe_jet_tagging.cli import main

TABLES = ("separation, from the stated P(quark)", "accuracy, from the stated labels")


def test_evaluate_prints_its_tables_on_stdout(tmp_path, capsys) -> None:
    results = tmp_path / "results.jsonl"
    assert main(["tag", "sample", "--emulate", "--limit", "12", "-o", str(results)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(results), "--out", str(tmp_path / "rep")]) == 0
    out, err = capsys.readouterr()
    for title in TABLES:
        assert title in out
        assert title not in err
    assert "emulated server: physics heuristic, not a language model" in out  # with its numbers
    assert "12 jets: 12 labelled" in out
    assert f"report: {tmp_path / 'rep' / 'report.json'}" in out
    assert err.strip() == ""  # nothing went wrong, nothing to say there


def test_tag_keeps_stdout_for_data(tmp_path, capsys) -> None:
    capsys.readouterr()
    path = tmp_path / "r.jsonl"
    assert main(["tag", "sample", "--emulate", "--limit", "4", "-o", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "emulated vLLM server on" in err and f"wrote {path}" in err


def test_compare_on_the_emulator_says_the_efforts_could_not_differ(tmp_path, capsys) -> None:
    capsys.readouterr()
    args = ["compare", "sample", "--emulate", "--efforts", "low,high", "--limit", "12"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "cost per jet" in out and TABLES[0] in out
    note = " ".join(out.split())  # a note line may be long; rich may not wrap it, but be safe
    assert (
        "note: emulated server: the reasoning effort cannot change its answers (it reads each "
        "jet's multiplicity and width, plus seeded noise); a higher effort only makes the "
        "reasoning longer and the answer slower" in note
    )
    assert "cost per jet" not in err
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    low, high = int(rows["low"][3].replace(",", "")), int(rows["high"][3].replace(",", ""))
    assert 80 < low < 200 and 1500 < high < 2500  # reasoning tokens per jet, as gpt-oss's


def test_templates_and_cache_stats_list_on_stdout(capsys) -> None:
    capsys.readouterr()
    assert main(["templates"]) == 0
    out, err = capsys.readouterr()
    assert "few_shot" in out and err == ""
    assert main(["cache", "stats"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 2 and err == ""
    # Python's JetTagger(cache=True) writes "results" whatever the server: not "model servers".
    assert lines[0].endswith(
        "results: 0 results, not created yet · vjt with model servers, and Python's "
        "JetTagger(cache=True) with any server"
    )
    assert lines[1].endswith(
        "results-emulated: 0 results, not created yet · vjt with the emulated server "
        "(--emulate, demo)"
    )


def test_batch_export_names_the_weights_and_the_served_name(tmp_path, capsys) -> None:
    # vllm run-batch must load the weights and answer under the name the cache keys hold.
    weights = tmp_path / "smollm2-weights"
    args = ["batch", "export", "sample", "--limit", "2", "--model", "smollm2"]
    assert main([*args, "--weights", str(weights), "-o", str(tmp_path / "b")]) == 0
    err = capsys.readouterr().err
    assert f"--model {weights} --served-model-name smollm2 (one per file)" in err
    assert main([*args, "-o", str(tmp_path / "c")]) == 0  # no weights: the name is the model
    assert "-o OUT.jsonl --model smollm2 (one per file)" in capsys.readouterr().err
