"""A LangChain ``BaseCache`` on diskcache, for any chat model's raw calls: :class:`DiskLLMCache`.

A second cache beside :class:`~.cache.ResultCache`, for another concept: it keeps what a chat
model answered to a prompt (LangChain's generations), for any chain, where the result cache
keeps a jet's parsed, gated result. Both sit in a folder of :mod:`.folder`.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.load import dumps, loads
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, Generation

from .._compat.langchain_core import LangChainBetaWarning
from .folder import CACHE_ERRORS, Store, UnsafeCacheEntryError, default_cache_dir
from .provenance import Signer, answer_digest, default_signer

__all__ = ["DiskLLMCache", "stored_modes"]

logger = logging.getLogger(__name__)


class DiskLLMCache(Store, BaseCache):
    """A LangChain ``BaseCache`` on diskcache, for any chat model's raw calls.

    Generations are stored as LangChain's JSON serialisation, signed with this user's key
    (:mod:`.provenance`): an entry that does not verify is a miss. A hit is marked with
    ``response_metadata["cache_hit"] = True`` on its message, so usage totals can leave it
    out (LangChain replays the stored usage on a hit, which would count it twice). The folder
    is checked and set aside on failure as for :class:`ResultCache` (``shared`` likewise).

    Example:
        >>> from vibe_jet_tagging import ChatVLLM, DiskLLMCache  # doctest: +SKIP
        >>> model = ChatVLLM(cache=DiskLLMCache("~/.cache/my-llm-calls"))
    """

    def __init__(
        self,
        directory: str | Path | None = None,
        *,
        size_limit: int = 8 << 30,
        shared: bool = False,
        signer: Signer | None = None,
    ) -> None:
        self.directory = Path(directory).expanduser() if directory else default_cache_dir() / "llm"
        self._cache = self._start(size_limit, shared)
        self._signer = signer

    @property
    def signer(self) -> Signer:
        """Signs the entries (this user's key)."""
        if self._signer is None:
            self._signer = default_signer()
        return self._signer

    def _sign(self, key: str, data: str) -> str:
        return self.signer.sign({"key": key, "answer_digest": answer_digest(data)})

    @staticmethod
    def _key(prompt: str, llm_string: str) -> str:
        return hashlib.sha256(f"{llm_string}\x00{prompt}".encode()).hexdigest()

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """The generations stored for this prompt and model settings, or ``None``."""
        if self._cache is None:
            return None
        key = self._key(prompt, llm_string)
        try:
            text = self._cache.get(key)
            if text is None:
                return None
            signature, _, text = text.partition("\n")
            if signature != self._sign(key, text):
                logger.warning("LLM cache entry %s does not verify: treated as a miss", key)
                return None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", LangChainBetaWarning)
                generations = loads(
                    text, allowed_objects=[ChatGeneration, Generation, AIMessage, AIMessageChunk]
                )
        except (*CACHE_ERRORS, UnsafeCacheEntryError, ValueError, TypeError, KeyError) as exc:
            logger.warning("LLM cache entry unreadable, treated as a miss: %s", exc)
            return None
        for generation in generations:
            message = getattr(generation, "message", None)
            if message is not None:
                message.response_metadata["cache_hit"] = True
        return generations

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        """Store generations (JSON, never pickle)."""
        if self._cache is None:
            return
        try:
            key, data = self._key(prompt, llm_string), dumps(list(return_val))
            self._cache.set(key, f"{self._sign(key, data)}\n{data}", retry=True)
        except CACHE_ERRORS as exc:
            self._give_up("cannot be written", exc)

    def clear(self, **kwargs: Any) -> None:
        """Remove every entry."""
        if self._cache is not None:
            self._cache.clear(retry=True)

    def __len__(self) -> int:
        return 0 if self._cache is None else len(self._cache)


def stored_modes(directory: str | Path) -> Sequence[int]:
    """The diskcache storage modes of every entry in a cache folder (for audits and tests)."""
    with sqlite3.connect(Path(directory) / "cache.db") as db:
        return [row[0] for row in db.execute("SELECT mode FROM Cache")]
