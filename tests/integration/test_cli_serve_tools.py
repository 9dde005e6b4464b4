"""``vjt serve --emulate --tool-call-parser``: the emulated server answers tool calls."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import httpx

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


def test_serve_with_a_tool_call_parser_answers_tool_calls() -> None:
    command = [sys.executable, "-m", "vibe_jet_tagging.cli", "serve", "--emulate", "--port", "0"]
    proc = subprocess.Popen(
        [*command, "--tool-call-parser", "openai"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "300"},  # the ready line on one line
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # the ready line names the URL (pytest-timeout bounds this)
            found = re.search(r"server on (http://\S+/v1)", line)
            if found:
                break
        else:
            raise AssertionError(f"vjt serve stopped: {proc.communicate()}")
        url = found.group(1)
        body = {
            "messages": ASK,
            "tools": [TOOL],
            "tool_choice": {"type": "function", "function": {"name": "Answer"}},
            "reasoning_effort": "low",
        }
        answer = httpx.post(f"{url}/chat/completions", json=body, timeout=60).json()
        choice = answer["choices"][0]
        assert choice["finish_reason"] == "tool_calls"
        assert choice["message"]["content"] is None
        [call] = choice["message"]["tool_calls"]
        assert call["function"]["name"] == "Answer"
        assert call["function"]["arguments"] in ('{"label": "quark"}', '{"label": "gluon"}')
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
