"""What ``LocalLLMClassifier`` takes as ``X`` and ``y``: jets and 0/1 labels, checked.

Each bad input gets a one-line ``ValueError`` saying what was wrong (and which jet), worded
like scikit-learn's own where it has a wording (its estimator checks look for it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.utils.multiclass import check_classification_targets, type_of_target

from ..jets.dataset import JetDataset
from ..jets.jet import Jet

__all__ = ["few_shot_pool", "jets_of"]


def _reject_unsupported(X: Any) -> None:
    """One-line errors for inputs that cannot hold jets at all."""
    if sparse.issparse(X):
        raise ValueError(
            "sparse input is not supported: jets are dense (n_jets, M, 4) arrays of constituents"
        )
    if isinstance(X, np.ndarray) and np.iscomplexobj(X):
        raise ValueError("Complex data not supported: jet constituents are real numbers")


def jets_of(X: Any) -> list[Jet]:
    """Jets from a ``JetDataset``, a sequence of jets/arrays, or an ``(N, M, 4)`` padded array."""
    _reject_unsupported(X)
    if isinstance(X, JetDataset):
        return X.jets()
    if isinstance(X, Jet):
        raise ValueError("X is a single jet; pass a list of jets ([jet])")
    if isinstance(X, str | bytes | Mapping):
        raise ValueError(f"expected a sequence of jets, got {type(X).__name__}")
    if hasattr(X, "__array__"):
        array = np.asarray(X)
        _reject_unsupported(array)
        if array.ndim != 3:
            raise ValueError(
                "expected jets as an (n_jets, M, 4) array of constituents (pt, y, phi, pdgid), "
                f"a JetDataset or a list of jets; got an array of shape {array.shape}"
            )
        return [Jet.from_array(x, index=i) for i, x in enumerate(array)]
    try:
        items = list(X)
    except TypeError:
        raise ValueError(f"expected a sequence of jets, got {type(X).__name__}") from None
    return [Jet.coerce(x, index=x.index if isinstance(x, Jet) else i) for i, x in enumerate(items)]


def _labels(y: Any) -> np.ndarray:
    """``y`` as 0/1 ints, or a one-line ``ValueError`` (scikit-learn's wording where it has one)."""
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise ValueError(f"y should be a 1d array of labels, got an array of shape {labels.shape}")
    if len(labels) == 0:
        return labels.astype(int)
    check_classification_targets(labels)  # "Unknown label type: continuous ..."
    kind = type_of_target(labels, input_name="y")
    if kind != "binary":
        raise ValueError(
            f"Only binary classification is supported: labels are 1 (quark) or 0 (gluon); "
            f"y is {kind}"
        )
    bad = ~np.isin(labels, (0, 1))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"labels must be 1 (quark) or 0 (gluon); y[{i}] is {labels[i].item()!r}")
    return labels.astype(int)


def few_shot_pool(X: Any, y: Any) -> list[tuple[Jet, int]] | None:
    """The few-shot pool from ``fit``'s arguments; ``None`` (the bundled sample) if empty."""
    _reject_unsupported(X)
    if y is None:
        y = X.labels if isinstance(X, JetDataset) else None
        if y is None:
            if len(X) == 0:
                return None
            raise ValueError(
                "LocalLLMClassifier requires y to be passed, but the target y is None "
                "(the labels, 1 = quark and 0 = gluon, of the jets X: the few-shot examples)"
            )
    labels = _labels(y)
    jets = jets_of(X)
    if len(labels) != len(jets):
        raise ValueError(f"X has {len(jets)} jets but y has {len(labels)} labels")
    if not jets:
        return None
    return list(zip(jets, labels.tolist(), strict=True))
