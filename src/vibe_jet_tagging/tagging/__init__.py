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

from typing import TYPE_CHECKING

from .._imports import lazy_exports

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

__getattr__ = lazy_exports(__name__, _EXPORTS, globals())  # names imported on first use


if TYPE_CHECKING:
    from .model import ChatVLLM
    from .parser import ConstrainedChatModel, JetLabelParser, label_constraint
    from .prompt import JetPromptTemplate
    from .results import TaggingError, TagResult, TransientTaggingError, Usage
    from .tagger import JetTagger
