"""Disk caches: parsed results per jet (:class:`ResultCache`) and raw model calls
(:class:`DiskLLMCache`, a LangChain ``BaseCache``).

Both sit on ``diskcache`` (SQLite in WAL mode: safe across threads, asyncio tasks and
processes). Entries are JSON text, never pickle: diskcache's default pickling turns a folder
others can write into code execution (CVE-2025-69872), so :class:`JSONOnlyDisk` refuses to
write or read a pickled entry, and the folder is created with mode 0700. An entry that does not
decode or validate (half-written, corrupted, from an older schema) is a miss, not a crash.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import diskcache
import platformdirs
from langchain_core._api.beta_decorator import LangChainBetaWarning
from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.load import dumps, loads
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, Generation
from pydantic import ValidationError

from .filesystems import warn_if_network_filesystem
from .results import TagResult

__all__ = [
    "DiskLLMCache",
    "JSONOnlyDisk",
    "ResultCache",
    "UnsafeCacheEntryError",
    "default_cache_dir",
]

logger = logging.getLogger(__name__)

_CACHE_ERRORS = (sqlite3.DatabaseError, OSError, diskcache.Timeout)


class UnsafeCacheEntryError(ValueError):
    """A cache entry was pickled (by something other than this package): refused."""


class JSONOnlyDisk(diskcache.Disk):
    """A diskcache ``Disk`` that stores and reads only ``str`` keys and values.

    diskcache would pickle anything else, and unpickle any entry a writer of the folder put
    there; this disk raises instead.
    """

    def put(self, key: Any) -> tuple[Any, bool]:
        if type(key) is not str:
            raise TypeError(f"cache keys must be str, got {type(key).__name__}")
        return super().put(key)

    def get(self, key: Any, raw: bool) -> Any:
        if not raw:
            raise UnsafeCacheEntryError("refusing to unpickle a cache key")
        return super().get(key, raw)

    def store(self, value: Any, read: bool, key: Any = diskcache.UNKNOWN) -> Any:
        if type(value) is not str:
            raise TypeError(f"cache values must be JSON text, got {type(value).__name__}")
        return super().store(value, read, key=key)

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode == diskcache.core.MODE_PICKLE:
            raise UnsafeCacheEntryError("refusing to unpickle a cache entry")
        return super().fetch(mode, filename, value, read)


def default_cache_dir() -> Path:
    """``$VJT_CACHE_DIR``, else the user's cache folder (e.g. ``~/.cache/vibe-jet-tagging``)."""
    env = os.environ.get("VJT_CACHE_DIR")
    return Path(env) if env else Path(platformdirs.user_cache_dir("vibe-jet-tagging"))


def _open(directory: Path, size_limit: int) -> diskcache.Cache:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        directory.chmod(0o700)
    except PermissionError:
        logger.warning("cannot restrict %s to its owner (mode 0700)", directory)
    warn_if_network_filesystem(directory)  # SQLite on NFS/Lustre/GPFS: one warning line
    return diskcache.Cache(str(directory), disk=JSONOnlyDisk, timeout=60, size_limit=size_limit)


class ResultCache:
    """Parsed :class:`TagResult` per cache key, on disk; only successful results are stored.

    Args:
        directory: the folder (created with mode 0700); default ``default_cache_dir()/results``.
        size_limit: bytes before the least recently stored entries are evicted (8 GiB).
    """

    def __init__(self, directory: str | Path | None = None, *, size_limit: int = 8 << 30) -> None:
        self.directory = Path(directory) if directory else default_cache_dir() / "results"
        self._cache = _open(self.directory, size_limit)

    def __repr__(self) -> str:
        return f"ResultCache({str(self.directory)!r})"

    def get(self, key: str) -> TagResult | None:
        """The result stored under ``key``, or ``None`` (also for an unreadable entry)."""
        try:
            text = self._cache.get(key)
        except (*_CACHE_ERRORS, UnsafeCacheEntryError) as exc:
            logger.warning("cache entry %s unreadable, treated as a miss: %s", key, exc)
            return None
        if text is None:
            return None
        try:
            return TagResult.model_validate_json(text)
        except (ValidationError, ValueError) as exc:
            logger.warning("cache entry %s corrupted, treated as a miss: %s", key, exc)
            return None

    def get_many(self, keys: Iterable[str]) -> dict[str, TagResult]:
        """The stored results among ``keys``."""
        found = {}
        for key in keys:
            result = self.get(key)
            if result is not None:
                found[key] = result
        return found

    def put(self, result: TagResult) -> bool:
        """Store a successful result under ``result.key``; failures are never stored."""
        if not result.ok:
            return False
        stored = result.model_copy(update={"cached": False})
        try:
            return bool(self._cache.set(result.key, stored.model_dump_json(), retry=True))
        except _CACHE_ERRORS as exc:
            logger.warning("could not store %s in the cache: %s", result.key, exc)
            return False

    def delete(self, key: str) -> bool:
        """Forget ``key``."""
        return bool(self._cache.delete(key, retry=True))

    def __contains__(self, key: str) -> bool:
        return key in self._cache

    def __len__(self) -> int:
        return len(self._cache)

    def clear(self) -> int:
        """Remove every entry; returns how many there were."""
        return int(self._cache.clear(retry=True))

    def stats(self) -> dict[str, Any]:
        """Entries, bytes on disk and folder."""
        return {
            "path": str(self.directory),
            "entries": len(self._cache),
            "size_bytes": int(self._cache.volume()),
        }

    def close(self) -> None:
        """Close the SQLite connections (reopened on next use)."""
        self._cache.close()


class DiskLLMCache(BaseCache):
    """A LangChain ``BaseCache`` on diskcache, for any chat model's raw calls.

    Generations are stored as LangChain's JSON serialisation. A hit is marked with
    ``response_metadata["cache_hit"] = True`` on its message, so usage totals can leave it
    out (LangChain replays the stored usage on a hit, which would count it twice).

    Example:
        >>> from vibe_jet_tagging import ChatVLLM, DiskLLMCache  # doctest: +SKIP
        >>> model = ChatVLLM(cache=DiskLLMCache("~/.cache/my-llm-calls"))
    """

    def __init__(self, directory: str | Path | None = None, *, size_limit: int = 8 << 30) -> None:
        self.directory = Path(directory).expanduser() if directory else default_cache_dir() / "llm"
        self._cache = _open(self.directory, size_limit)

    @staticmethod
    def _key(prompt: str, llm_string: str) -> str:
        return hashlib.sha256(f"{llm_string}\x00{prompt}".encode()).hexdigest()

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """The generations stored for this prompt and model settings, or ``None``."""
        try:
            text = self._cache.get(self._key(prompt, llm_string))
            if text is None:
                return None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", LangChainBetaWarning)
                generations = loads(
                    text, allowed_objects=[ChatGeneration, Generation, AIMessage, AIMessageChunk]
                )
        except (*_CACHE_ERRORS, UnsafeCacheEntryError, ValueError, TypeError, KeyError) as exc:
            logger.warning("LLM cache entry unreadable, treated as a miss: %s", exc)
            return None
        for generation in generations:
            message = getattr(generation, "message", None)
            if message is not None:
                message.response_metadata["cache_hit"] = True
        return generations

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        """Store generations (JSON, never pickle)."""
        try:
            self._cache.set(self._key(prompt, llm_string), dumps(list(return_val)), retry=True)
        except _CACHE_ERRORS as exc:
            logger.warning("could not store an LLM call in the cache: %s", exc)

    def clear(self, **kwargs: Any) -> None:
        """Remove every entry."""
        self._cache.clear(retry=True)

    def __len__(self) -> int:
        return len(self._cache)


def stored_modes(directory: str | Path) -> Sequence[int]:
    """The diskcache storage modes of every entry in a cache folder (for audits and tests)."""
    with sqlite3.connect(Path(directory) / "cache.db") as db:
        return [row[0] for row in db.execute("SELECT mode FROM Cache")]
