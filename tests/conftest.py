"""Shared fixtures: the emulated vLLM server and synthetic jets.

The emulated server answers from a physics heuristic, not from a language model (see
:mod:`vibe_jet_tagging.emulator`); it speaks vLLM's OpenAI-compatible API over real HTTP on
127.0.0.1, so client code runs for real.

Fixtures
--------
``emulator`` (session scope)
    One :class:`~vibe_jet_tagging.emulator.EmulatedServer` in a background thread, default
    settings: no latency, no faults, seed 0, model ``"openai/gpt-oss-120b"``. Use
    ``emulator.base_url`` (``http://127.0.0.1:PORT/v1``) as the OpenAI base URL and
    ``emulator.model`` as the model name. It is shared by every test: don't reconfigure it
    (use ``fresh_emulator``); call ``emulator.reset_stats()`` before a test reads
    ``emulator.stats()``.
``fresh_emulator`` (function scope)
    A factory: ``fresh_emulator(config=None, *, process=False, **overrides)`` starts a new
    server with :class:`~vibe_jet_tagging.emulator.EmulatorConfig` overrides (e.g.
    ``itl=0.001, max_num_seqs=4, faults={"server_error": 0.2}``), with zeroed counters, and
    stops it after the test. ``process=True`` runs it in a child process (benchmarks).
    ``server.configure(...)``/``server.set_faults(...)`` change it while it runs;
    ``server.stop()``/``server.start()`` restart it on the same port.
``isolated_settings`` (autouse)
    Every test gets its own ``VJT_CACHE_DIR`` (a temporary folder), its own signing key
    (``VJT_KEY_FILE``) and no user config file or ``VJT_*``/``OPENAI_*`` variables from the
    environment, so no test reads or writes the user's cache, key or settings.
``real_vllm`` (session scope)
    A real vLLM server (:class:`ServerUnderTest`): the one ``scripts/real_vllm.py build`` made,
    started on a free loopback port for the session (SmolLM2-135M on the CPU, context 8192),
    or the server named by ``VJT_REAL_BASE_URL`` and ``VJT_REAL_MODEL``. Skipped, with the
    command that builds it, when there is none. Tests that use it are marked ``real_vllm``;
    ``pytest`` leaves them out, ``pytest -m real_vllm`` runs only them.
``read_only`` (function scope)
    ``read_only(folder)``: nothing can be created in ``folder`` until the test ends, even by
    root (``chattr +i`` then, since root ignores permissions); skips the test if that fails.
``make_jet`` (session scope)
    ``make_jet(kind="quark"|"gluon", seed=0) -> Jet``: a synthetic jet whose multiplicity and
    width follow the quark or gluon distributions of STACK_NOTES (no generator needed).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import statistics
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vibe_jet_tagging.emulator import EmulatedServer, EmulatorConfig
from vibe_jet_tagging.jets import Jet

# (mean, sd) of multiplicity and (mean) of the angular scale, per kind.
_SYNTHETIC = {"quark": (33.4, 13.1, 0.042), "gluon": (53.6, 15.9, 0.068)}


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """A private cache folder and no settings from the user's environment."""
    for name in list(os.environ):
        if name.startswith(("VJT_", "OPENAI_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("VJT_CACHE_DIR", str(tmp_path_factory.mktemp("vjt-cache")))
    config = tmp_path_factory.mktemp("vjt-config")
    monkeypatch.setenv("VJT_CONFIG", str(config / "none.toml"))
    monkeypatch.setenv("VJT_KEY_FILE", str(config / "provenance.key"))


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatedServer]:
    """The shared emulated vLLM server (thread, default fast settings)."""
    with EmulatedServer() as server:
        yield server


@pytest.fixture
def fresh_emulator() -> Iterator[Callable[..., EmulatedServer]]:
    """Factory of emulated servers with settings of their own, stopped after the test."""
    servers: list[EmulatedServer] = []

    def make(
        config: EmulatorConfig | None = None, *, process: bool = False, **overrides: Any
    ) -> EmulatedServer:
        server = EmulatedServer(config, process=process, **overrides).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def read_only() -> Iterator[Callable[[Path], None]]:
    """``read_only(folder)``: a folder nothing can be written to (see the module doc)."""
    undo: list[Callable[[], Any]] = []

    def make(folder: Path) -> None:
        if os.getuid() != 0:
            folder.chmod(0o500)
            undo.append(lambda: folder.chmod(0o700))
            return
        if shutil.which("chattr") is None:
            pytest.skip("root ignores permissions, and no chattr to make a folder read-only")
        done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"chattr +i failed: {done.stderr.decode().strip()}")
        undo.append(lambda: subprocess.run(["chattr", "-i", str(folder)], check=True))

    yield make
    for step in undo:
        step()


def synthetic_jet(kind: str = "quark", seed: int = 0) -> Jet:
    """A jet at pt ~ 500 GeV whose multiplicity and width look like a quark's or a gluon's."""
    mean, sd, scale = _SYNTHETIC[kind]
    rng = np.random.default_rng([seed, kind == "gluon"])
    n = int(np.clip(round(rng.normal(mean, sd)), 3, 139))
    pt = rng.dirichlet(np.full(n, 0.6)) * rng.uniform(500, 550)
    pt = np.maximum(pt, 0.05)
    # Softer particles sit further out; the width fluctuates and grows with the multiplicity.
    width = scale * rng.lognormal(0, 0.35) * (n / mean) ** 0.5
    r = np.minimum(rng.exponential(width, n) / np.sqrt(pt / pt.mean()), 0.4)
    angle = rng.uniform(0, 2 * np.pi, n)
    y0, phi0 = rng.uniform(-1.5, 1.5), rng.uniform(0, 2 * np.pi)
    pid = rng.choice([211, -211, 22, 321, 130, 2212], n)
    return Jet.from_array(
        np.stack([pt, y0 + r * np.cos(angle), phi0 + r * np.sin(angle), pid], axis=1)
    )


@pytest.fixture(scope="session")
def make_jet() -> Callable[..., Jet]:
    """``make_jet(kind="quark"|"gluon", seed=0)``: a synthetic jet (see :func:`synthetic_jet`)."""
    return synthetic_jet


# -- the real vLLM tier ---------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
BUILD_HINT = (
    "no real vLLM server: build one with `python scripts/real_vllm.py build` (once, 5-15 min, "
    "cached in ~/.cache/vibe-jet-tagging/real-vllm), or set VJT_REAL_BASE_URL and VJT_REAL_MODEL"
)
# Read at import, before the autouse fixture clears VJT_* for each test.
_EXTERNAL = (os.environ.get("VJT_REAL_BASE_URL"), os.environ.get("VJT_REAL_MODEL"))
_EXTERNAL_KEY = os.environ.get("VJT_REAL_API_KEY", "EMPTY")


def real_vllm_script() -> Any:
    """``scripts/real_vllm.py`` as a module (it is not part of the package)."""
    spec = importlib.util.spec_from_file_location("real_vllm", REPO / "scripts" / "real_vllm.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class ServerUnderTest:
    """A server the contract tests run against: the emulated one or a real vLLM."""

    kind: str  # "emulated" or "real"
    base_url: str
    model: str
    api_key: str = "EMPTY"
    version: str | None = None
    context: int | None = None
    """``max_model_len``: the context the server was started with."""
    log: Path | None = None
    start_seconds: float | None = None
    expected_400: int = 0
    """HTTP 400s the tests asked for on purpose (oversized requests...)."""
    tagged: Counter = field(default_factory=Counter)
    """Jets tagged through this server in the session, by outcome (label or error kind)."""
    prefix_cache: str | None = None
    """What the few-shot prefix-cache measurement found (a line of the summary)."""
    latencies: dict[str, list[float]] = field(default_factory=dict)
    """Seconds per jet spent in requests, by template (jets asked, not cached)."""

    @property
    def url(self) -> str:
        """The server's root URL (``base_url`` without ``/v1``)."""
        return self.base_url.removesuffix("/v1")

    def record(self, results: list[Any]) -> None:
        """Count tagged jets by outcome: ``"labelled"`` or the error kind."""
        for r in results:
            r = getattr(r, "result", r)
            self.tagged["labelled" if getattr(r, "ok", False) else r.error.kind] += 1
            if not r.cached and r.usage.requests:
                self.latencies.setdefault(r.template, []).append(r.latency)

    def log_400s(self) -> int | None:
        """HTTP 400 answers in the server's log (None when there is no log)."""
        if self.log is None or not self.log.exists():
            return None
        pattern = re.compile(r'"POST /v1/chat/completions HTTP/1\.1" 400')
        return sum(1 for line in self.log.read_text(errors="replace").splitlines()
                   if pattern.search(line))  # fmt: skip


_REAL: list[ServerUnderTest] = []


@pytest.fixture(scope="session")
def real_vllm() -> Iterator[ServerUnderTest]:
    """A real vLLM server for the session (see the module doc)."""
    from vibe_jet_tagging.servers.info import fetch_server_info

    url, model = _EXTERNAL
    if url and model:
        info = fetch_server_info(url, _EXTERNAL_KEY)
        server = ServerUnderTest(
            "real", url, model, _EXTERNAL_KEY, info.version, info.require(model).max_model_len
        )
        _REAL.append(server)
        yield server
        return
    script = real_vllm_script()
    if not script.stamp():
        pytest.skip(BUILD_HINT)
    info = script.start()
    server = ServerUnderTest(
        "real",
        info["base_url"],
        info["model"],
        version=info["vllm"],
        context=script.MAX_MODEL_LEN,
        log=Path(info["log"]),
        start_seconds=info["start_seconds"],
    )
    _REAL.append(server)
    try:
        yield server
    finally:
        script.stop(info)


@pytest.fixture(scope="session")
def emulated_contract_server() -> Iterator[ServerUnderTest]:
    """The emulated server set up like the real tier's (model ``smollm2``, context 8192,
    KV-cache blocks of 128 tokens as in vLLM's CPU build)."""
    context = real_vllm_script().MAX_MODEL_LEN
    with EmulatedServer(models=["smollm2"], max_model_len=context, block_size=128) as emulated:
        yield ServerUnderTest("emulated", emulated.base_url, "smollm2", context=context)


@pytest.fixture(
    scope="session", params=["emulated", pytest.param("real", marks=pytest.mark.real_vllm)]
)
def server(request: pytest.FixtureRequest) -> ServerUnderTest:
    """One contract, two servers: the emulated one, and a real vLLM (marked ``real_vllm``).

    Where the two differ, the emulator is wrong: change it to do what vLLM does.
    """
    if request.param == "real":
        return request.getfixturevalue("real_vllm")
    return request.getfixturevalue("emulated_contract_server")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests against a real server leave loopback only for the host the user named."""
    url = _EXTERNAL[0]
    if not url:
        return
    from urllib.parse import urlparse

    host = urlparse(url).hostname
    for item in items:
        if "real_vllm" in item.keywords and host:
            item.add_marker(pytest.mark.allow_hosts(["127.0.0.1", "::1", host]))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """What the real tier ran against and what it saw (the CI log shows it)."""
    for server in _REAL:
        tagged = sum(server.tagged.values())
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(server.tagged.items())) or "none"
        lines = [
            f"real vLLM {server.version} serving {server.model!r} at {server.base_url}"
            + (f" (started in {server.start_seconds:.0f} s)" if server.start_seconds else ""),
            f"jets tagged through it: {tagged} ({outcomes}); HTTP 400 while tagging: "
            f"{server.tagged.get('bad_request', 0)}",
        ]
        if server.latencies:
            lines.append(
                "seconds per jet in requests (median, max; concurrent jets queue): "
                + "; ".join(
                    f"{t} {statistics.median(v):.1f}, {max(v):.1f} over {len(v)}"
                    for t, v in sorted(server.latencies.items())
                )
            )
        in_log = server.log_400s()
        if in_log is not None:
            lines.append(
                f"HTTP 400 in the server log: {in_log}, of which {server.expected_400} asked for "
                "on purpose by the contract tests"
            )
        if server.prefix_cache:
            lines.append(server.prefix_cache)
        terminalreporter.write_sep("-", "real vLLM tier")
        for line in lines:
            terminalreporter.write_line(line)
