"""``JetDataset.shard`` and ``--shard K/N``: disjoint parts that cover every jet."""

from __future__ import annotations

import numpy as np
import pytest

from vibe_jet_tagging.cli.app import CLIError
from vibe_jet_tagging.cli.run import parse_shard, select
from vibe_jet_tagging.jets.dataset import load_sample

SAMPLE = load_sample()


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 4001])
@pytest.mark.parametrize("subset", ["all", "balanced", "odd"])
def test_parts_are_disjoint_contiguous_and_cover_every_jet(n, subset):
    jets = {"all": SAMPLE, "balanced": SAMPLE.balanced(300, seed=2), "odd": SAMPLE[1::2]}[subset]
    parts = [jets.shard(k, n) for k in range(n)]
    joined = np.concatenate([p.indices for p in parts])
    assert joined.tolist() == jets.indices.tolist()  # in order: disjoint and complete
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    # Deterministic: the same part every time, with its labels.
    k = n // 2
    again = jets.shard(k, n)
    assert again.indices.tolist() == parts[k].indices.tolist()
    if len(again):
        assert again.labels.tolist() == SAMPLE.labels[again.indices].tolist()


@pytest.mark.parametrize(("k", "n"), [(3, 3), (-1, 3), (0, 0)])
def test_a_part_that_does_not_exist_is_refused(k, n):
    with pytest.raises(ValueError, match=r"need n >= 1 and 0 <= k < n"):
        SAMPLE.shard(k, n)
    with pytest.raises(CLIError, match=r"need 0 <= K < N|expected K/N"):
        parse_shard(f"{k}/{n}")


@pytest.mark.parametrize("text", ["2", "a/b", "1/2/3", ""])
def test_malformed_shard_says_the_form(text):
    with pytest.raises(CLIError, match=rf"--shard {text!r}: expected K/N, e.g. 0/4"):
        parse_shard(text)


def test_the_shard_is_cut_from_the_selection():
    whole = select(SAMPLE, 90, True, 4)
    parts = [select(SAMPLE, 90, True, 4, f"{k}/4") for k in range(4)]
    assert sorted(np.concatenate([p.indices for p in parts]).tolist()) == sorted(
        whole.indices.tolist()
    )
