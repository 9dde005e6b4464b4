"""Baselines on the bundled sample, and the cross-validation that keeps them honest."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import KNeighborsClassifier

from vibe_jet_tagging.evaluation.baselines import (
    LR_FEATURES,
    cross_validated_scores,
    logistic_regression_baseline,
    multiplicity_baseline,
    run_baselines,
    why_not,
)
from vibe_jet_tagging.jets.dataset import JetDataset, dataset_from_arrays, load_sample


@pytest.fixture(scope="module")
def sample() -> JetDataset:
    return load_sample()


@pytest.fixture(scope="module")
def results(sample: JetDataset) -> dict[str, dict[str, Any]]:
    return run_baselines(sample, n_bootstrap=200)


def test_the_sample_looks_like_the_benchmark(sample: JetDataset) -> None:
    assert len(sample) == 4000
    assert sample.source == "sample"
    assert int(sample.labels.sum()) == 2000
    assert sample.metadata["seed"] == 2026
    assert sample.metadata["cuts"]["jet_pt_min"] == 500.0
    obs = sample.observables()
    quark, gluon = sample.labels == 1, sample.labels == 0
    assert obs["multiplicity"][quark].mean() == pytest.approx(33.4, abs=1.5)
    assert obs["multiplicity"][gluon].mean() == pytest.approx(53.6, abs=1.5)
    assert ((obs["pt"] > 500) & (obs["pt"] < 550)).all()
    assert (np.abs(obs["rapidity"]) < 1.7).all()


def test_multiplicity_baseline(sample: JetDataset, results: dict[str, dict[str, Any]]) -> None:
    mult = results["multiplicity"]
    assert 0.80 <= mult["auc"] <= 0.88
    lo, hi = mult["intervals"]["auc"]
    assert lo < mult["auc"] < hi
    multiplicity = sample.observables()["multiplicity"]
    np.testing.assert_array_equal(mult["scores"], -multiplicity)
    assert mult["indices"].tolist() == list(range(4000))
    # The reported cut gives the reported accuracy: quark when multiplicity <= cut.
    predicted = multiplicity <= mult["cut"]
    assert np.mean(predicted == (sample.labels == 1)) == pytest.approx(mult["accuracy"])
    assert mult["threshold_method"] == "best cut on these jets"
    assert 0.75 < mult["accuracy"] < 0.80
    assert 12 < mult["rejection_at_50"] < 25  # literature: about 19


def test_logistic_regression_baseline(results: dict[str, dict[str, Any]]) -> None:
    lr, mult = results["logistic_regression"], results["multiplicity"]
    assert lr["auc"] >= mult["auc"] - 0.01
    assert lr["auc"] < 0.9
    assert lr["features"] == list(LR_FEATURES)
    assert not {"pt", "rapidity", "phi"} & set(LR_FEATURES)
    assert {"multiplicity", "girth", "ptd"} <= set(LR_FEATURES)
    assert lr["scores"].shape == (4000,)
    assert ((lr["scores"] > 0) & (lr["scores"] < 1)).all()
    assert set(results) == {"multiplicity", "logistic_regression"}


def test_lr_scores_are_out_of_fold(sample: JetDataset) -> None:
    sub = sample[:600]
    got = logistic_regression_baseline(sub, seed=1, n_bootstrap=0)["scores"]
    obs = sub.observables()
    features = np.column_stack([obs[n] for n in LR_FEATURES])
    np.testing.assert_allclose(got, cross_validated_scores(features, sub.labels, seed=1))
    # A model fitted on all jets scores them differently (it has seen them).
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    seen = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(
        features, sub.labels
    )
    assert not np.allclose(got, seen.predict_proba(features)[:, 1])


def test_cross_validation_never_scores_a_jet_with_a_model_that_saw_it() -> None:
    # Labels are noise; a 1-nearest-neighbour model memorises its training jets. Scored by a
    # model that saw them, every jet would be right (AUC 1); out of fold, it is chance.
    rng = np.random.default_rng(0)
    features = rng.normal(size=(400, 3))
    labels = rng.integers(0, 2, 400)
    memoriser = KNeighborsClassifier(n_neighbors=1)
    assert (
        roc_auc_score(labels, memoriser.fit(features, labels).predict_proba(features)[:, 1]) == 1.0
    )
    scores = cross_validated_scores(features, labels, estimator=memoriser, seed=0)
    assert abs(roc_auc_score(labels, scores) - 0.5) < 0.1


def test_baselines_need_labels_of_both_kinds(sample: JetDataset) -> None:
    X = sample[:10].padded()
    with pytest.raises(ValueError, match="no labels"):
        multiplicity_baseline(dataset_from_arrays(X))
    with pytest.raises(ValueError, match="both quark and gluon"):
        run_baselines(dataset_from_arrays(X, np.ones(10)))


def test_small_sets_get_the_baselines_they_can_and_a_reason_for_the_others(
    sample: JetDataset,
) -> None:
    assert why_not("multiplicity", 1, 1) is None
    assert why_not("logistic_regression", 10, 10) is None
    assert why_not("logistic_regression", 4, 4) == (
        "its 5-fold cross-validation needs at least 10 quark and 10 gluon jets; "
        "these jets are 4 quark and 4 gluon"
    )
    assert (
        why_not("multiplicity", 0, 8)
        == "needs quark and gluon jets; these jets are 0 quark and 8 gluon"
    )
    eight = sample.balanced(8, seed=1)
    with pytest.raises(ValueError, match="logistic regression its 5-fold cross-validation"):
        logistic_regression_baseline(eight, n_bootstrap=0)
    only = run_baselines(eight, n_bootstrap=50, names=("multiplicity",))
    assert set(only) == {"multiplicity"}
    assert only["multiplicity"]["auc"] == pytest.approx(
        roc_auc_score(eight.labels, -eight.observables()["multiplicity"])
    )
    assert only["multiplicity"]["probability"] is False
    with pytest.raises(ValueError, match="no baseline"):
        run_baselines(eight, names=("bdt",))
