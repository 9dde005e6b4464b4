"""The scikit-learn estimator over the tagger: :class:`LocalLLMClassifier` (the ``eval`` extra),
and its scorers :func:`roc_auc_scorer` and :func:`usage_scorer`."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "FAILED": "classifier",
    "LocalLLMClassifier": "classifier",
    "UnlabelledJetsWarning": "classifier",
    "roc_auc_scorer": "scoring",
    "usage_scorer": "scoring",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:  # names are imported on first use: importing stays light
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from .classifier import FAILED, LocalLLMClassifier, UnlabelledJetsWarning
    from .scoring import roc_auc_scorer, usage_scorer
