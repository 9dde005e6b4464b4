"""The scikit-learn estimator over the tagger: :class:`LocalLLMClassifier` (the ``eval`` extra),
and its scorers :func:`roc_auc_scorer` and :func:`usage_scorer`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._imports import lazy_exports

_EXPORTS = {
    "FAILED": "classifier",
    "LocalLLMClassifier": "classifier",
    "UnlabelledJetsWarning": "classifier",
    "roc_auc_scorer": "scoring",
    "usage_scorer": "scoring",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS, globals())  # names imported on first use


if TYPE_CHECKING:
    from .classifier import FAILED, LocalLLMClassifier, UnlabelledJetsWarning
    from .scoring import roc_auc_scorer, usage_scorer
