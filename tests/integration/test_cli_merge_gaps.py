"""``vjt merge`` counts gaps against the run's selection: complete parts of a ``--limit`` run
merge without a gap warning, even when merge is not told the ``--limit``."""

from __future__ import annotations

from pathlib import Path

from vibe_jet_tagging.cli import main


def tag_parts(folder: Path, n: int, *flags: str, parts: tuple[int, ...] = (0, 1)) -> list[str]:
    files = []
    for k in parts:
        path = folder / f"part-{k}.jsonl"
        args = ["tag", "sample", "--emulate", "--effort", "low", "--limit", str(n), *flags]
        assert main([*args, "--shard", f"{k}/{max(parts) + 1}", "-o", str(path)]) == 0
        files.append(str(path))
    return files


def merged(files: list[str], out: Path, capsys, *flags: str) -> str:
    capsys.readouterr()
    assert main(["merge", *files, "-o", str(out), *flags]) == 0
    return " ".join(capsys.readouterr().err.split())


def test_complete_parts_of_a_limited_run_have_no_gaps(tmp_path, capsys) -> None:
    files = tag_parts(tmp_path, 40)
    said = merged(files, tmp_path / "all.jsonl", capsys)
    assert "merged 2 files" in said
    assert "no gaps: every one of the 40 jets of sample selected by --limit 40" in said
    assert "3960" not in said and said.count("gaps:") == said.count("no gaps:") == 1
    # Given the run's own flags, the same.
    said = merged(files, tmp_path / "all.jsonl", capsys, "--limit", "40")
    assert "no gaps: every one of the 40 jets of sample has a row" in said


def test_complete_parts_of_a_balanced_run_have_no_gaps(tmp_path, capsys) -> None:
    files = tag_parts(tmp_path, 40, "--balanced", "--seed", "3")
    said = merged(files, tmp_path / "all.jsonl", capsys, "--seed", "3")
    assert "no gaps: every one of the 40 jets of sample selected by --limit 40 --balanced" in said
    # Without the seed the rows are no selection merge can tell: it says so, lists nothing.
    said = merged(files, tmp_path / "all.jsonl", capsys)
    assert "gaps not checked: the 40 jets with a row are not what vjt tag selects" in said
    assert "gaps:" not in said.replace("gaps not checked", "")


def test_a_missing_middle_part_is_a_gap_of_the_run(tmp_path, capsys) -> None:
    files = tag_parts(tmp_path, 30, parts=(0, 1, 2))
    said = merged([files[0], files[2]], tmp_path / "all.jsonl", capsys)
    assert "gaps: 10 of the 30 jets of sample selected by --limit 30" in said
    assert "10, 11, 12" in said
    said = merged(files[:1], tmp_path / "one.jsonl", capsys)
    assert "merged 1 file into" in said  # not "1 files"
