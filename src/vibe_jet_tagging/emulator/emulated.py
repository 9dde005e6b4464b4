""":class:`EmulatedServer`: the emulated vLLM server on a free loopback port, for tests,
benchmarks and demos, in a background thread or in a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Self

from aiohttp import web

from .config import EmulatorConfig
from .server import EmulatorApp, start_site

__all__ = ["EmulatedServer"]

logger = logging.getLogger(__name__)

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class EmulatedServer:
    """The emulated vLLM server (answers from a physics heuristic, not a language model).

    ``EmulatedServer(config=None, *, process=False, host="127.0.0.1", port=0, **overrides)``:
    ``overrides`` are :class:`EmulatorConfig` fields (``faults`` may be a dict of rates).
    Use it as a context manager (``with`` or ``async with``) or call :meth:`start` and
    :meth:`stop`. The first start binds a free port (``port=0``); later starts reuse it, so a
    client keeps its URL across a stop and start. ``process=True`` runs the server in a child
    Python process (a benchmark's client and server then don't share a GIL); otherwise it runs
    in a daemon thread with its own event loop. Counters and the fault sequence start afresh
    at each start; settings changed with :meth:`configure` are kept.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        process: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 30.0,
        **overrides: Any,
    ) -> None:
        base = config or EmulatorConfig()
        self.config: EmulatorConfig = base.merged(overrides) if overrides else base
        self.process = process
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (the port is known once started)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI base URL: ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    @property
    def model(self) -> str:
        """The default served model name."""
        return self.config.models[0]

    @property
    def running(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return self._thread is not None and self._thread.is_alive()

    def __repr__(self) -> str:
        mode = "process" if self.process else "thread"
        state = "running" if self.running else "stopped"
        return f"EmulatedServer({self.url}, {mode}, {state})"

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> Self:
        """Start serving (no-op when already running); returns self."""
        with self._lock:
            if self.running:
                return self
            if self.process:
                self._start_process()
            else:
                self._start_thread()
        logger.info("emulated vLLM server started on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving: in-flight requests are cancelled, the thread or process ends."""
        with self._lock:
            if self._proc is not None:
                self._stop_process()
            elif self._thread is not None:
                self._stop_thread()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    def _start_thread(self) -> None:
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def run() -> None:
            runner: web.AppRunner | None = None
            try:
                runner, self.port = loop.run_until_complete(
                    start_site(EmulatorApp(self.config), self.host, self.port)
                )
            except BaseException as exc:
                failure.append(exc)
            ready.set()
            try:
                if runner is not None:
                    loop.run_forever()
                    loop.run_until_complete(runner.cleanup())
            finally:
                _close_loop(loop)

        thread = threading.Thread(target=run, name=f"vjt-emulator-{self.port}", daemon=True)
        thread.start()
        if not ready.wait(self.startup_timeout):
            raise RuntimeError("the emulated server did not start in time")
        if failure:
            thread.join()
            raise failure[0]
        self._thread, self._loop = thread, loop

    def _stop_thread(self) -> None:
        assert self._thread is not None
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop may be closed already
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        if self._thread.is_alive():
            logger.warning("the emulated server thread did not stop within 30 s")
        self._thread, self._loop = None, None

    def _start_process(self) -> None:
        cmd = [
            sys.executable,
            "-m",
            "vibe_jet_tagging.emulator",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--config",
            self.config.model_dump_json(),
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=os.environ.copy())
        assert proc.stdout is not None
        deadline = time.monotonic() + self.startup_timeout
        line = ""
        while time.monotonic() < deadline and proc.poll() is None:
            readable, _, _ = select.select([proc.stdout], [], [], 0.1)
            if readable:
                line = proc.stdout.readline()
                break
        if not line.startswith("READY "):
            proc.kill()
            proc.wait()
            proc.stdout.close()
            raise RuntimeError(
                f"the emulated server process did not start (exit code {proc.returncode})"
            )
        self.port = int(line.split()[1].rsplit(":", 1)[1])
        self._proc = proc

    def _stop_process(self) -> None:
        proc = self._proc
        assert proc is not None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                logger.warning("the emulated server process ignored SIGTERM; killing it")
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        self._proc = None

    # -- admin -------------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with _NO_PROXY.open(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read())["error"]["message"]
            except (ValueError, KeyError, TypeError):
                detail = str(exc)
            raise ValueError(detail) from None

    def stats(self) -> dict[str, Any]:
        """Counters since the last reset (``GET /stats``): ``requests_total``, ``outcomes``
        (``ok``, each fault kind, ``error_400``..., ``queue_full``, ``cancelled``),
        ``status_codes``, ``finish_reasons``, ``running``, ``waiting``, ``max_running``,
        ``max_waiting``, ``prompt_tokens``, ``generation_tokens``, ``reasoning_tokens``.

        ``status_codes`` counts 499 for requests whose connection ended early (the client left,
        or a ``disconnect`` fault dropped it)."""
        return self._call("GET", "/stats")

    def reset_stats(self) -> dict[str, Any]:
        """Zero the counters and forget the answers (``POST /stats/reset``)."""
        return self._call("POST", "/stats/reset", {})

    def answers(self) -> list[dict[str, Any]]:
        """The answers sent since the last reset (``GET /answers``), oldest first, each
        ``{"content", "stated", "fault", "finish"}``: ``stated`` is the label the answer
        states, or None when it states none (what a correct parser reads from it)."""
        return self._call("GET", "/answers")

    def configure(self, **overrides: Any) -> EmulatorConfig:
        """Change settings while running (``POST /admin/config``), e.g. ``itl=0.01``.

        Also works when stopped (the settings apply at the next start). Raises ``ValueError``
        for invalid settings.
        """
        if self.running:
            self.config = EmulatorConfig.model_validate(
                self._call("POST", "/admin/config", json.loads(_dumps(overrides)))
            )
        else:
            self.config = self.config.merged(overrides)
        return self.config

    def set_faults(self, **rates: float) -> EmulatorConfig:
        """Change fault rates (the others are kept), e.g. ``set_faults(server_error=0.2)``."""
        return self.configure(faults=rates)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=lambda v: v.model_dump(mode="json"))


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left on ``loop``, then close it."""
    try:
        tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()
