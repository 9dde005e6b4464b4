"""Jet validation, observables against hand-computed values, and the content key."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from vibe_jet_tagging.jets import OBSERVABLES, Jet, jet_observables, wrap_phi

# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.zeros(4), "expected an (n, 4) array of constituents, got shape (4,)"),
        (np.zeros((2, 3)), "expected 4 columns (pt, y, phi, pdgid), got 3 columns"),
        ([["a", "b", "c", "d"]], "constituents are not a numeric array"),
        (
            [[1.0, 0.0, 0.0, 22.0], [2.0, np.nan, 0.0, 22.0]],
            "non-finite value (nan or inf) in constituent row 1",
        ),
        (
            [[1.0, 0.0, 0.0, 22.0], [2.0, 0.0, np.inf, 22.0]],
            "non-finite value (nan or inf) in constituent row 1",
        ),
        ([[1.0, 0.0, 0.0, 22.0], [-2.5, 0.0, 0.0, 22.0]], "negative pt -2.5 in constituent row 1"),
        (np.zeros((3, 4)), "no constituents (every row has pt == 0)"),
        ([[1.0, 0.0, 0.0, 211.5]], "PDG id must be an integer, got 211.5"),
    ],
)
def test_from_array_rejects_bad_input_with_a_clear_message(data: object, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        Jet.from_array(data)
    with pytest.raises(ValueError, match="^" + re.escape(f"jet 17: {message}")):
        Jet.from_array(data, index=17)


def test_from_mapping_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match=r"jet 3: .*missing 'phi'"):
        Jet.from_mapping({"pt": [1.0], "y": [0.0]}, index=3)
    with pytest.raises(ValueError, match=r"jet columns differ in length: \(2,\), \(1,\)"):
        Jet.from_mapping({"pt": [1.0, 2.0], "y": [0.0], "phi": [0.0]})


def test_from_mapping_and_coerce_build_the_same_jet() -> None:
    rows = np.array([[5.0, 0.1, 0.2, 211.0], [10.0, -0.1, 0.3, 22.0]])
    from_array = Jet.from_array(rows)
    mapping = {"pt": rows[:, 0], "rapidity": rows[:, 1], "phi": rows[:, 2], "pdgid": rows[:, 3]}
    assert Jet.from_mapping(mapping) == from_array
    assert Jet.coerce({"jet": rows}) == from_array
    assert Jet.coerce(from_array) is from_array
    # Without PDG ids the ids are 0 and the jet differs.
    assert Jet.from_mapping({"pt": rows[:, 0], "y": rows[:, 1], "phi": rows[:, 2]}) != from_array


def test_constituents_are_sorted_by_pt_read_only_and_padding_dropped() -> None:
    jet = Jet.from_array(
        [[1.0, 0.0, 0.0, 22.0], [0.0, 0.0, 0.0, 0.0], [3.0, 0.1, 0.2, 211.0], [2.0, 0, 0, 22]]
    )
    assert jet.constituents[:, 0].tolist() == [3.0, 2.0, 1.0]
    assert len(jet) == jet.multiplicity == 3
    with pytest.raises(ValueError, match="read-only"):
        jet.constituents[0, 0] = 9.0


# -- observables --------------------------------------------------------------------------


def test_two_photon_jet_against_hand_computed_values() -> None:
    # Two massless photons of 100 GeV at y = 0, phi = 0 and 0.2: the jet axis is at phi = 0.1.
    jet = Jet.from_array([[100.0, 0.0, 0.0, 22.0], [100.0, 0.0, 0.2, 22.0]])
    obs = jet.observables
    assert obs["pt"] == pytest.approx(200 * math.cos(0.1))
    assert obs["phi"] == pytest.approx(0.1)
    assert obs["rapidity"] == pytest.approx(0.0, abs=1e-12)
    assert obs["mass"] == pytest.approx(200 * math.sin(0.1))
    assert obs["multiplicity"] == 2
    assert obs["charged_multiplicity"] == 0
    assert obs["girth"] == pytest.approx((100 * 0.1 + 100 * 0.1) / (200 * math.cos(0.1)))
    assert obs["ptd"] == pytest.approx(1 / math.sqrt(2))
    assert obs["leading_fraction"] == pytest.approx(0.5)
    assert obs["top3_fraction"] == pytest.approx(1.0)
    assert obs["top5_fraction"] == pytest.approx(1.0)


def test_phi_wraps_across_two_pi() -> None:
    # The same two photons seen at phi = 2 pi - 0.1 and 0.1: the axis is at phi = 0, each
    # particle 0.1 away (not 2 pi - 0.2).
    jet = Jet.from_array([[100.0, 0.0, 2 * math.pi - 0.1, 22.0], [100.0, 0.0, 0.1, 22.0]])
    obs = jet.observables
    assert wrap_phi(obs["phi"]) == pytest.approx(0.0, abs=1e-12)
    assert obs["pt"] == pytest.approx(200 * math.cos(0.1))
    assert obs["girth"] == pytest.approx(0.1 / math.cos(0.1))
    assert obs["mass"] == pytest.approx(200 * math.sin(0.1))
    _, dphi = jet.relative_coordinates()
    assert sorted(dphi.tolist()) == pytest.approx([-0.1, 0.1])
    # EnergyFlow keeps phi near the axis, so values beyond 2 pi appear: same physics.
    shifted = Jet.from_array(
        [[100.0, 0.0, 2 * math.pi - 0.1, 22.0], [100.0, 0.0, 2 * math.pi + 0.1, 22.0]]
    )
    for name in OBSERVABLES:
        if name != "phi":
            assert shifted.observables[name] == pytest.approx(obs[name], abs=1e-9), name


def test_three_particle_massive_jet_against_explicit_four_vectors() -> None:
    rows = np.array([[50.0, 0.5, 1.0, 211.0], [30.0, 0.3, 1.2, -211.0], [20.0, 0.4, 0.9, 22.0]])
    m = np.array([0.139570, 0.139570, 0.0])
    pt, y, phi = rows[:, 0], rows[:, 1], rows[:, 2]
    mt = np.sqrt(pt**2 + m**2)
    e, px, py, pz = (
        (mt * np.cosh(y)).sum(),
        (pt * np.cos(phi)).sum(),
        (pt * np.sin(phi)).sum(),
        (mt * np.sinh(y)).sum(),
    )
    jet_pt, jet_phi = math.hypot(px, py), math.atan2(py, px)
    jet_y = 0.5 * math.log((e + pz) / (e - pz))
    dr = np.hypot(y - jet_y, phi - jet_phi)

    obs = Jet.from_array(rows).observables
    assert obs["pt"] == pytest.approx(jet_pt)
    assert obs["rapidity"] == pytest.approx(jet_y)
    assert obs["phi"] == pytest.approx(jet_phi)
    assert obs["mass"] == pytest.approx(math.sqrt(e**2 - px**2 - py**2 - pz**2))
    assert obs["multiplicity"] == 3
    assert obs["charged_multiplicity"] == 2
    assert obs["girth"] == pytest.approx((pt * dr).sum() / jet_pt)
    assert obs["ptd"] == pytest.approx(math.sqrt(50**2 + 30**2 + 20**2) / 100)
    assert obs["leading_fraction"] == pytest.approx(0.5)
    assert obs["top3_fraction"] == pytest.approx(1.0)
    # Photons are massless: the mass column matters only for the pions.
    assert obs["mass"] > 0


def test_fractions_with_more_than_five_constituents() -> None:
    pts = [6.0, 1.0, 5.0, 2.0, 4.0, 3.0, 0.5]
    rows = [[p, 0.01 * i, 0.01 * i, 22.0] for i, p in enumerate(pts)]
    obs = Jet.from_array(rows).observables
    total = sum(pts)
    assert obs["leading_fraction"] == pytest.approx(6 / total)
    assert obs["top3_fraction"] == pytest.approx((6 + 5 + 4) / total)
    assert obs["top5_fraction"] == pytest.approx((6 + 5 + 4 + 3 + 2) / total)
    assert obs["ptd"] == pytest.approx(math.sqrt(sum(p * p for p in pts)) / total)


def test_batch_observables_ignore_padding_anywhere() -> None:
    a = np.array([[50.0, 0.5, 1.0, 211.0], [30.0, 0.3, 1.2, -211.0], [20.0, 0.4, 0.9, 22.0]])
    b = np.array([[100.0, 0.0, 0.0, 22.0], [100.0, 0.0, 0.2, 22.0]])
    batch = np.zeros((2, 6, 4))
    batch[0, [0, 2, 5]] = a  # padding rows in the middle
    batch[1, [3, 4]] = b
    out = jet_observables(batch)
    assert set(out) == set(OBSERVABLES)
    for name in OBSERVABLES:
        assert out[name].shape == (2,)
        assert out[name][0] == pytest.approx(Jet.from_array(a).observables[name])
        assert out[name][1] == pytest.approx(Jet.from_array(b).observables[name])
    with pytest.raises(ValueError, match=r"expected jets of shape \(N, M, 4\)"):
        jet_observables(np.zeros((2, 3, 5)))


# -- content key --------------------------------------------------------------------------

ROWS = np.array([[50.0, 0.5, 1.0, 211.0], [30.0, 0.3, 1.2, -211.0], [20.0, 0.4, 0.9, 22.0]])


def test_key_is_invariant_under_padding_and_row_order() -> None:
    key = Jet.from_array(ROWS).key
    padded = np.vstack([ROWS, np.zeros((7, 4))])
    middle = np.vstack([ROWS[:1], np.zeros((2, 4)), ROWS[1:], np.zeros((1, 4))])
    assert Jet.from_array(padded).key == key
    assert Jet.from_array(middle).key == key
    assert Jet.from_array(ROWS[::-1]).key == key
    assert Jet.from_array(ROWS[[1, 2, 0]]).key == key
    assert Jet.from_array(ROWS, index=5).key == key  # the index is not content
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    # -0.0 and 0.0 are the same value
    signed = np.vstack([ROWS, [[7.0, -0.0, 0.0, 22.0]]])
    unsigned = np.vstack([ROWS, [[7.0, 0.0, -0.0, 22.0]]])
    assert Jet.from_array(signed).key == Jet.from_array(unsigned).key


@pytest.mark.parametrize("row", range(3))
@pytest.mark.parametrize("col", range(4))
def test_key_changes_when_any_value_changes(row: int, col: int) -> None:
    changed = ROWS.copy()
    changed[row, col] += 1.0 if col == 3 else 1e-9 * max(abs(changed[row, col]), 1.0)
    assert Jet.from_array(changed).key != Jet.from_array(ROWS).key
    assert Jet.from_array(changed) != Jet.from_array(ROWS)


def test_key_changes_when_a_constituent_is_added() -> None:
    more = np.vstack([ROWS, [[0.001, 0.0, 0.0, 22.0]]])
    assert Jet.from_array(more).key != Jet.from_array(ROWS).key


def test_equal_jets_hash_equal_and_repr_names_the_index() -> None:
    a, b = Jet.from_array(ROWS, index=4), Jet.from_array(ROWS[::-1])
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    assert repr(a).startswith("Jet(index=4, n=3, pt=")
