#!/usr/bin/env python3
"""Delete each of the reader's rules once and check that a test fails (issue 21).

    python scripts/reader_rule_deletion.py [CHECKOUT]

CHECKOUT is a throwaway copy of the repository (default: a temporary ``git worktree`` of HEAD,
removed afterwards): each rule is deleted there by a textual edit of
``tagging/parsing/`` (a guard made ``False``, a doubt or quote rule made a pattern that never
matches, a lead word dropped), the parsing tests of the unit tier run against it, and the edit
is undone. It prints one table row per rule: ``caught`` and the first failing test, or
``NOT caught``. The tests must pass on the unedited checkout first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

NEVER = 'r"(?!x)x"'
TESTS = [
    "tests/unit/test_parsing.py",
    "tests/unit/test_reader_rules.py",
    "tests/unit/test_adversarial_answers.py",
    "tests/unit/test_output_parser.py",
    "tests/unit/test_properties.py",
    "tests/unit/test_tagger_scripted.py",
]
DOUBTS = ["negated_certainty", "uncertain", "modal", "doubt", "conditional", "undecided",
          "refusal", "question", "retraction", "correction"]  # fmt: skip

# (rule, file under tagging/parsing, text, text without the rule)
EDITS: list[tuple[str, str, str, str]] = [
    ("a doubt after a decision voids it", "reader.py",
     "        if doubts(st.text):\n            return _none(",
     "        if False:\n            return _none("),
    ("a decision negated afterwards voids it", "reader.py",
     "    if label in negated:", "    if False:"),
    ("the other class named after a decision voids it", "reader.py",
     "    if other(label) in named:", "    if False:"),
    ("a quoted JSON example is no answer", "reader.py",
     "        if st.json and st.quoted:", "        if False:"),
    ("a quoted prose decision decides nothing", "reader.py",
     "decision = None if st.quoted else decide(st.text, st.lone)",
     "decision = decide(st.text, st.lone)"),
    ("a line under a quoting line is quoted", "reader.py",
     "            quoted = quoted_block and k == 0", "            quoted = False"),
    ("a lone value after a JSON decision of the other class gives none", "reader.py",
     "            if earlier != label:\n                return conflict",
     "            if False:\n                return conflict"),
    ("a lone value after a prose decision of the other class gives none", "reader.py",
     "        if other(label) in decided_labels(st.text):\n            return conflict",
     "        if False:\n            return conflict"),
    ("a lone value ending a longer answer than read gives none", "reader.py",
     "    if not whole:", "    if False:"),
    ("an ambiguous decision gives none", "reader.py",
     "            if decision.label is None:\n                return _none(",
     "            if False:\n                return _none("),
    ("both classes named without a decision give none", "reader.py",
     "        if alternatives(st.text):", "        if False:"),
    ("a JSON label contradicted by a later probability", "reader.py",
     '    if disagree is not None:\n        return Reading(label, "schema"',
     '    if False:\n        return Reading(label, "schema"'),
    ("a prose label contradicted by a stated probability", "reader.py",
     '    if disagree is not None:\n        return Reading(label, "regex"',
     '    if False:\n        return Reading(label, "regex"'),
    ("quote markers (e.g., for example, format, such as)", "prose.py",
     '    "example_marker": ', f'    "example_marker": {NEVER} if True else '),
    ("'final' as a lead", "prose.py",
     "|output|tag|class|category|choice|final)s?", "|output|tag|class|category|choice)s?"),
    ("JSON labels read case-insensitively", "schema.py",
     "word = value.strip().lower()", "word = value"),
    ("JSON 1/0 read only where the template asks for digits", "schema.py",
     "digits = bool(info.context and info.context.get(DIGIT_LABELS))", "digits = True"),
] + [
    (f"doubt rule {name!r}", "prose.py", f'\n    "{name}": ',
     f'\n    "{name}": {NEVER} if True else ')
    for name in DOUBTS
]  # fmt: skip


def pytest(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(root / "src"))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p",
               "no:cacheprovider", *extra, *TESTS]  # fmt: skip
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)


def check(root: Path) -> list[tuple[str, str]]:
    base = pytest(root)
    if base.returncode != 0:
        sys.exit(f"error: the parsing tests fail on the unedited checkout {root}")
    rows = []
    for rule, name, text, without in EDITS:
        path = root / "src/vibe_jet_tagging/tagging/parsing" / name
        source = path.read_text()
        if source.count(text) != 1:
            rows.append((rule, f"edit not found in {name}: the rule moved; update this script"))
            continue
        path.write_text(source.replace(text, without))
        try:
            run = pytest(root, "-x")
        finally:
            path.write_text(source)
        failed = [line for line in run.stdout.splitlines() if line.startswith("FAILED")]
        result = f"caught: {failed[0][7:].split(' - ')[0]}" if failed else "NOT caught"
        rows.append((rule, result))
        print(f"| {rule} | {result} |", flush=True)
    return rows


def main() -> None:
    if len(sys.argv) > 1:
        rows = check(Path(sys.argv[1]).resolve())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            checkout = Path(tmp) / "checkout"
            subprocess.run(["git", "worktree", "add", "-q", "--detach", str(checkout)], check=True)
            try:
                rows = check(checkout)
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", str(checkout)], check=True)
    missed = [rule for rule, result in rows if not result.startswith("caught")]
    print(f"{len(rows) - len(missed)} of {len(rows)} rules caught by a test")
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
