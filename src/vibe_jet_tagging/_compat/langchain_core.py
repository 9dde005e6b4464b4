"""langchain-core internals that need no provider package (importing :mod:`.langchain`
imports langchain-openai and the openai SDK, ~1 s of CPU; these do not).

- :func:`llm_string`: how LangChain's caches name a chat model's settings.
- :data:`LangChainBetaWarning`: the warning ``langchain_core.load`` raises on every call.

Both are re-exported by :mod:`.langchain`, where ``tests/unit/test_compat.py`` checks them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_core._api.beta_decorator import LangChainBetaWarning

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

__all__ = ["LangChainBetaWarning", "llm_string"]


def llm_string(model: BaseChatModel) -> str:
    """The string LangChain's caches key a chat model's settings by."""
    return model._get_llm_string()
