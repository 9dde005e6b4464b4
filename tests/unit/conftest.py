"""Fixtures for tests that need no server: small synthetic jets."""

from __future__ import annotations

import numpy as np
import pytest

from vibe_jet_tagging.jets import Jet


def synthetic_jet(rng: np.random.Generator, n: int, width: float = 0.05) -> Jet:
    """A jet of ``n`` pions around (y, phi) = (0.3, 1.0) with exponential pt."""
    x = np.zeros((n, 4))
    x[:, 0] = rng.exponential(15.0, n) + 0.5
    x[:, 1] = 0.3 + rng.normal(0, width, n)
    x[:, 2] = 1.0 + rng.normal(0, width, n)
    x[:, 3] = rng.choice([211, -211, 22, 321], n)
    return Jet.from_array(x)


@pytest.fixture
def labelled_pool() -> list[tuple[Jet, int]]:
    """Ten quark-like (few, narrow) and ten gluon-like (many, wide) labelled jets."""
    rng = np.random.default_rng(7)
    quarks = [(synthetic_jet(rng, 20 + i, 0.03), 1) for i in range(10)]
    gluons = [(synthetic_jet(rng, 55 + i, 0.08), 0) for i in range(10)]
    return quarks + gluons


@pytest.fixture
def jet(labelled_pool: list[tuple[Jet, int]]) -> Jet:
    """A quark-like jet of :func:`labelled_pool`."""
    return labelled_pool[0][0]
