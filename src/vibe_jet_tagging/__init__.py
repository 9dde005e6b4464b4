"""Quark/gluon jet tagging with reasoning LLMs served by vLLM, as a LangChain Runnable.

>>> from vibe_jet_tagging import JetTagger, load_sample
>>> jets = load_sample().balanced(20, seed=1)                    # doctest: +SKIP
>>> tagger = JetTagger(base_url="http://localhost:8000/v1", reasoning_effort="low")
>>> results = tagger.batch(jets)                                   # doctest: +SKIP

Names are imported on first use, so ``import vibe_jet_tagging`` stays quick.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Jet": "jets",
    "JetDataset": "data",
    "load_jets": "data",
    "load_sample": "data",
    "JetFormat": "formats",
    "JetPrompt": "prompts",
    "JetPromptTemplate": "prompt_template",
    "list_templates": "prompts",
    "load_template": "prompts",
    "ChatVLLM": "model",
    "JetLabel": "parsing",
    "LabelParseError": "parsing",
    "parse_label": "parsing",
    "JetLabelParser": "output_parser",
    "JetTagger": "chain",
    "TagResult": "results",
    "TaggingError": "results",
    "TransientTaggingError": "results",
    "Usage": "results",
    "ResultCache": "cache",
    "DiskLLMCache": "cache",
    "UsageCallback": "usage",
    "track_usage": "usage",
    "usage_totals": "usage",
    "LocalLLMClassifier": "classifier",
    "EmulatedServer": "emulator",
    "VJTError": "errors",
    "ConfigError": "errors",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vibe_jet_tagging' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from .cache import DiskLLMCache, ResultCache
    from .chain import JetTagger
    from .classifier import LocalLLMClassifier
    from .data import JetDataset, load_jets, load_sample
    from .emulator import EmulatedServer
    from .errors import ConfigError, VJTError
    from .formats import JetFormat
    from .jets import Jet
    from .model import ChatVLLM
    from .output_parser import JetLabelParser
    from .parsing import JetLabel, LabelParseError, parse_label
    from .prompt_template import JetPromptTemplate
    from .prompts import JetPrompt, list_templates, load_template
    from .results import TaggingError, TagResult, TransientTaggingError, Usage
    from .usage import UsageCallback, track_usage, usage_totals
