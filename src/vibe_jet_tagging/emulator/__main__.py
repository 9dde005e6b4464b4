"""``python -m vibe_jet_tagging.emulator --port P [--config JSON]``: what
``EmulatedServer(process=True)`` runs. Prints ``READY http://HOST:PORT`` once listening."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time

from .config import EmulatorConfig
from .server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vibe_jet_tagging.emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--config", default="{}", help="EmulatorConfig as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    config = EmulatorConfig.model_validate_json(args.config)
    threading.Thread(target=_stop_when_orphaned, args=(os.getppid(),), daemon=True).start()
    serve(
        config,
        host=args.host,
        port=args.port,
        on_ready=lambda url: print(f"READY {url}", flush=True),
    )


def _stop_when_orphaned(parent: int) -> None:
    """SIGTERM ourselves once the parent process is gone (no server outlives its test run)."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)


if __name__ == "__main__":
    main()
