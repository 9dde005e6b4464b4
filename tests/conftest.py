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
    Every test gets its own ``VJT_CACHE_DIR`` (a temporary folder) and no user config file or
    ``VJT_*``/``OPENAI_*`` variables from the environment, so no test reads or writes the
    user's cache or settings.
``make_jet`` (session scope)
    ``make_jet(kind="quark"|"gluon", seed=0) -> Jet``: a synthetic jet whose multiplicity and
    width follow the quark or gluon distributions of STACK_NOTES (no generator needed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
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
    import os

    for name in list(os.environ):
        if name.startswith(("VJT_", "OPENAI_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("VJT_CACHE_DIR", str(tmp_path_factory.mktemp("vjt-cache")))
    monkeypatch.setenv("VJT_CONFIG", str(tmp_path_factory.mktemp("vjt-config") / "none.toml"))


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
