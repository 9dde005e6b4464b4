"""``vjt serve --emulate``: tool calls (``--tool-call-parser``) and any fault (``--fault``)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

TOOL = {
    "type": "function",
    "function": {
        "name": "Answer",
        "parameters": {
            "type": "object",
            "properties": {"label": {"type": "string", "enum": ["quark", "gluon"]}},
            "required": ["label"],
        },
    },
}
ASK = [{"role": "user", "content": "constituent multiplicity: 60\ngirth: 0.07\nquark or gluon?"}]


COMMAND = [sys.executable, "-m", "vibe_jet_tagging.cli", "serve", "--emulate", "--port", "0"]


@contextmanager
def served(*flags: str) -> Iterator[str]:
    """``vjt serve --emulate FLAGS`` on a free port: its base URL; SIGTERM stops it (exit 0).

    No deadlines: pytest-timeout bounds a server that never comes up or never stops."""
    proc = subprocess.Popen(
        [*COMMAND, *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "300"},  # the ready line on one line
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # the ready line names the URL
            found = re.search(r"server on (http://\S+/v1)", line)
            if found:
                break
        else:
            raise AssertionError(f"vjt serve stopped: {proc.communicate()}")
        yield found.group(1)
        proc.send_signal(signal.SIGTERM)
        proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0


def test_serve_with_a_tool_call_parser_answers_tool_calls() -> None:
    with served("--tool-call-parser", "openai") as url:
        body = {
            "messages": ASK,
            "tools": [TOOL],
            "tool_choice": {"type": "function", "function": {"name": "Answer"}},
            "reasoning_effort": "low",
        }
        answer = httpx.post(f"{url}/chat/completions", json=body, timeout=None).json()
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "Answer"
    assert call["function"]["arguments"] in ('{"label": "quark"}', '{"label": "gluon"}')


def test_serve_answers_with_any_fault_named_on_the_command_line() -> None:
    """--fault NAME=RATE reaches every fault of the emulator, not only those with a flag:
    a served contradiction is JSON whose label disagrees with its probability, and the
    tagger reads no label from it."""
    from vibe_jet_tagging import parse_label
    from vibe_jet_tagging.tagging.parsing.errors import ContradictionError

    with served("--fault", "contradiction=1", "--fault", "non-answer=0") as url:
        body = {"messages": ASK, "reasoning_effort": "low"}
        answers = [
            httpx.post(f"{url}/chat/completions", json=body, timeout=None).json() for _ in range(3)
        ]
    for answer in answers:
        content = json.loads(answer["choices"][0]["message"]["content"])
        assert (content["label"] == "quark") != (content["quark_probability"] > 0.5), content
        with pytest.raises(ContradictionError):
            parse_label(answer["choices"][0]["message"]["content"])


def test_a_bad_fault_is_one_line_naming_it() -> None:
    for bad, said in [
        ("contradiction", "expected NAME=RATE"),
        ("typo=0.1", "expected NAME=RATE with NAME one of server_error"),
        ("stall=often", "the rate 'often' is not a number"),
        ("stall=1.5", "bad emulator settings: faults.stall=1.5: Input should be less than"),
    ]:
        result = subprocess.run(
            [*COMMAND, "--fault", bad], capture_output=True, text=True, check=False
        )
        assert result.returncode == 2, result
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and said in lines[0], lines
