"""Tagging jets with a reasoning LLM: :class:`JetTagger` and the parts it is made of.

- :mod:`.tagger`: :class:`JetTagger`, a LangChain Runnable composed of the parts below;
- :mod:`.prompt`, :mod:`.templates`: the jet prompt (:class:`JetPromptTemplate`) from the
  template files of ``prompts/`` and its few-shot examples;
- :mod:`.model`: :class:`ChatVLLM`, ``ChatOpenAI`` for vLLM (reasoning kept, effort sent);
- :mod:`.parsing`, :mod:`.parser`: reading a label out of an answer, or none;
- :mod:`.client`: the requests (server identity, call options, one model call);
- :mod:`.identity`: the cache key of each jet under the tagger's settings;
- :mod:`.batching`: many jets at once (cache reads in bulk, bounded concurrency);
- :mod:`.results`, :mod:`.usage`: what tagging returns, and what it cost.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ChatVLLM": "model",
    "ConstrainedChatModel": "parser",
    "JetLabelParser": "parser",
    "JetPromptTemplate": "prompt",
    "JetTagger": "tagger",
    "TagResult": "results",
    "TaggingError": "results",
    "TransientTaggingError": "results",
    "Usage": "results",
    "label_constraint": "parser",
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
    from .model import ChatVLLM
    from .parser import ConstrainedChatModel, JetLabelParser, label_constraint
    from .prompt import JetPromptTemplate
    from .results import TaggingError, TagResult, TransientTaggingError, Usage
    from .tagger import JetTagger
