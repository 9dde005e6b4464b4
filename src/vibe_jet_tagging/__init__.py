"""Quark/gluon jet tagging with reasoning LLMs served by vLLM, as a LangChain Runnable.

>>> from vibe_jet_tagging import JetTagger, load_sample
>>> jets = load_sample().balanced(20, seed=1)                    # doctest: +SKIP
>>> tagger = JetTagger(base_url="http://localhost:8000/v1", reasoning_effort="low")
>>> results = tagger.batch(jets)                                   # doctest: +SKIP

Names are imported on first use, so ``import vibe_jet_tagging`` stays quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._imports import install, lazy_exports

__version__ = "0.1.0"

install()  # the module paths of earlier releases (``vibe_jet_tagging.chain``...), one more

_EXPORTS = {
    "Jet": "jets.jet",
    "JetDataset": "jets.dataset",
    "load_jets": "jets.dataset",
    "load_sample": "jets.dataset",
    "JetFormat": "jets.formats",
    "JetPrompt": "tagging.prompt",
    "JetPromptTemplate": "tagging.prompt",
    "list_templates": "tagging.templates",
    "load_template": "tagging.templates",
    "ChatVLLM": "tagging.model",
    "JetLabel": "tagging.parsing",
    "LabelParseError": "tagging.parsing",
    "parse_label": "tagging.parsing",
    "JetLabelParser": "tagging.parser",
    "JetTagger": "tagging.tagger",
    "TagResult": "tagging.results",
    "TaggingError": "tagging.results",
    "TransientTaggingError": "tagging.results",
    "Usage": "tagging.results",
    "ResultCache": "store.cache",
    "DiskLLMCache": "store.llm_cache",
    "UsageCallback": "tagging.usage",
    "track_usage": "tagging.usage",
    "usage_totals": "tagging.usage",
    "LocalLLMClassifier": "estimator.classifier",
    "roc_auc_scorer": "estimator.scoring",
    "usage_scorer": "estimator.scoring",
    "EmulatedServer": "emulator",
    "VJTError": "errors",
    "ConfigError": "errors",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())  # names imported on first use


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from .emulator import EmulatedServer
    from .errors import ConfigError, VJTError
    from .estimator.classifier import LocalLLMClassifier
    from .estimator.scoring import roc_auc_scorer, usage_scorer
    from .jets.dataset import JetDataset, load_jets, load_sample
    from .jets.formats import JetFormat
    from .jets.jet import Jet
    from .store.cache import ResultCache
    from .store.llm_cache import DiskLLMCache
    from .tagging.model import ChatVLLM
    from .tagging.parser import JetLabelParser
    from .tagging.parsing import JetLabel, LabelParseError, parse_label
    from .tagging.prompt import JetPrompt, JetPromptTemplate
    from .tagging.results import TaggingError, TagResult, TransientTaggingError, Usage
    from .tagging.tagger import JetTagger
    from .tagging.templates import list_templates, load_template
    from .tagging.usage import UsageCallback, track_usage, usage_totals
