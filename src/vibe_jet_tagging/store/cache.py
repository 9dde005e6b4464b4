"""Parsed results per jet on disk: :class:`ResultCache`.

Entries are JSON text in a folder of this user's alone (:mod:`.folder`). A result entry carries
the cache format (:data:`CACHE_FORMAT`); one of another format, with fields a result does not
have, or that does not decode (half-written, corrupted) is a miss, not a crash. Beyond the
folder's owner, each result carries this user's signature (:mod:`.provenance`): the tagger's
gate writes the entries and serves one only when its signature verifies, so an entry put there
any other way is a miss.

The LangChain cache for any chat model's raw calls is :class:`~.llm_cache.DiskLLMCache`.
"""

from __future__ import annotations

import inspect
import json
import logging
import sqlite3
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import diskcache
from pydantic import ValidationError

from .._compat import diskcache as diskcache_sql
from ..tagging.results import TagError, TagResult, Usage, defer_reasoning
from .folder import (
    CACHE_ERRORS,
    JSONOnlyDisk,
    Store,
    UnsafeCacheEntryError,
    UnsafeCacheError,
    check_private,
    default_cache_dir,
)
from .llm_cache import DiskLLMCache, stored_modes

__all__ = [
    "CACHE_FORMAT",
    "DiskLLMCache",
    "JSONOnlyDisk",
    "ResultCache",
    "UnsafeCacheEntryError",
    "UnsafeCacheError",
    "check_private",
    "default_cache_dir",
    "stored_modes",
]

logger = logging.getLogger(__name__)


CACHE_FORMAT = 3
"""The format of a stored result; entries of another format are misses (3: signed results)."""

_FIELDS = {
    "": frozenset(TagResult.model_fields) | {"cache_format"},
    "usage": frozenset(Usage.model_fields),
    "error": frozenset(TagError.model_fields),
}


_FORMAT_ENDINGS = (f', "cache_format": {CACHE_FORMAT}}}', f',"cache_format":{CACHE_FORMAT}}}')
"""How an entry this package wrote ends (``json.dumps``' spacing, or compact)."""
_RESULT_FIELDS = set(TagResult.model_fields)
_USAGE_FIELDS = set(Usage.model_fields)
_ONE_PASS = "extra" in inspect.signature(TagResult.model_validate_json).parameters
"""Whether pydantic (>= 2.12) refuses unknown fields in one parse (``extra="forbid"``)."""


def _decode_result(text: str) -> TagResult:
    """The result of an entry; ``ValueError`` for another format or fields a result lacks.

    An entry as this package writes it (the format last) is validated in one pass of
    pydantic's JSON parser, unknown fields refused at every level; any other layout is
    read by the general path below, with the same checks.
    """
    # The fast path and the general one read the same results (a test holds both).
    for ending in _FORMAT_ENDINGS if _ONE_PASS else ():  # pragma: no mutate
        if text.endswith(ending):
            body = text[: -len(ending)] + "}"
            return _shared_fields(TagResult.model_validate_json(body, extra="forbid"))
    return _decode_any_layout(text)


_SAME_FOR_MANY = ("model", "effort", "template", "settings", "server", "identity",
                  "finish_reason", "parsed_by", "label", "origin")  # fmt: skip
"""Fields whose text most results of a run share: one string object for all of them."""


def _shared_fields(result: TagResult) -> TagResult:
    """``result`` with the one set of field names every complete result shares, and one
    string object for each text many results share (:data:`_SAME_FOR_MANY`).

    pydantic gives each model its own set of the fields given (~2 KB for a result, ~0.7 KB
    for its usage); a stored result gives them all, so one shared set says the same. Each
    decoded string is an object of its own (~60-90 bytes); interned, a run's results share
    them.
    """
    # Memory only: sharing the set changes no value (mutation: equivalent).
    if result.__pydantic_fields_set__ == _RESULT_FIELDS:  # pragma: no mutate
        object.__setattr__(result, "__pydantic_fields_set__", _RESULT_FIELDS)  # pragma: no mutate
    if result.usage.__pydantic_fields_set__ == _USAGE_FIELDS:  # pragma: no mutate
        usage = result.usage  # pragma: no mutate
        object.__setattr__(usage, "__pydantic_fields_set__", _USAGE_FIELDS)  # pragma: no mutate
    # Memory only too: an interned string is equal to the one it stands for.
    fields = result.__dict__
    for name in _SAME_FOR_MANY:
        value = fields.get(name)
        if type(value) is str:
            fields[name] = sys.intern(value)  # pragma: no mutate
    return result


def _decode_any_layout(text: str) -> TagResult:
    """:func:`_decode_result` for entries whose format is not their last field."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("cache_format") != CACHE_FORMAT:
        found = data.get("cache_format") if isinstance(data, dict) else None
        raise ValueError(f"cache format {found!r}, not {CACHE_FORMAT}")
    for part, known in _FIELDS.items():
        fields = data.get(part) if part else data
        if isinstance(fields, dict) and not set(fields) <= known:
            raise ValueError(f"unknown fields {sorted(set(fields) - known)}")
    del data["cache_format"]
    return TagResult.model_validate(data)


_KEYS_PER_QUERY = 500  # below SQLite's oldest limit of 999 parameters per statement


def _read_many(cache: diskcache.Cache, keys: Sequence[str]) -> Iterator[tuple[str, Any]]:
    """``(key, value)`` of the entries among ``keys``, a query per :data:`_KEYS_PER_QUERY`.

    The query ``Cache.get`` makes for one key (its fast path: a cache that keeps no
    statistics and updates nothing on a read), made for many keys at once; values are
    fetched through the cache's disk, so a pickled entry is refused as by ``get``. A cache
    whose reads update it (statistics, a least-recently-used policy) is read key by key.
    """
    if diskcache_sql.reads_update(cache):
        for key in keys:
            value = cache.get(key)
            if value is not None:
                yield key, value
        return
    for start in range(0, len(keys), _KEYS_PER_QUERY):
        chunk = keys[start : start + _KEYS_PER_QUERY]
        rows = diskcache_sql.query(
            cache,
            f"SELECT key, mode, filename, value FROM Cache WHERE key IN "
            f"({','.join('?' * len(chunk))}) AND raw = 1 "
            "AND (expire_time IS NULL OR expire_time > ?)",
            (*chunk, time.time()),
        )
        for key, mode, filename, value in rows:
            try:
                yield key, cache.disk.fetch(mode, filename, value, False)
            except UnsafeCacheEntryError as exc:
                logger.warning("cache entry %s unreadable, treated as a miss: %s", key, exc)
            except OSError:  # its file went away since the query (evicted): a miss
                continue


class ResultCache(Store):
    """Parsed :class:`TagResult` per cache key, on disk; only successful results are stored.

    Args:
        directory: the folder (created with mode 0700); default ``default_cache_dir()/results``.
        size_limit: bytes before the least recently stored entries are evicted (8 GiB).
        shared: use a folder others can write to (another user's, group- or world-writable,
            a symlink); without it such a folder raises :class:`UnsafeCacheError`.

    A folder that cannot be opened (corrupt database, no permission, full disk) logs one
    warning and leaves the cache empty and unused (``available`` is False, ``problem`` says
    why); so does the first failed write.
    """

    def __init__(
        self,
        directory: str | Path | None = None,
        *,
        size_limit: int = 8 << 30,
        shared: bool = False,
    ) -> None:
        self.directory = (
            Path(directory).expanduser() if directory else default_cache_dir() / "results"
        )
        self.shared = shared
        self._misread = False
        self._cache = self._start(size_limit, shared)

    def __repr__(self) -> str:
        return f"ResultCache({str(self.directory)!r})"

    def get(self, key: str) -> TagResult | None:
        """The result stored under ``key``, or ``None`` (also for an unreadable entry)."""
        if self._cache is None:
            return None
        try:
            text = self._cache.get(key)
        except sqlite3.DatabaseError as exc:
            self._give_up("cannot be read", exc)
            return None
        except (OSError, diskcache.Timeout, UnsafeCacheEntryError) as exc:
            logger.warning("cache entry %s unreadable, treated as a miss: %s", key, exc)
            return None
        return None if text is None else self._decoded(key, text)

    def get_many(self, keys: Iterable[str], *, reasoning: bool = True) -> dict[str, TagResult]:
        """The stored results among ``keys``, read together (a query per 500 keys).

        Every call gives new result objects, the caller's to change. Unreadable entries are
        misses, as for :meth:`get`. ``reasoning=False``: the results read their reasoning
        text from this cache only when asked for it (see
        :func:`~vibe_jet_tagging.tagging.results.defer_reasoning`).
        """
        if self._cache is None:
            return {}
        found = {}
        try:
            for key, text in _read_many(self._cache, list(dict.fromkeys(keys))):
                result = self._decoded(key, text)
                if result is not None:
                    if not reasoning:
                        defer_reasoning(result, self)
                    found[key] = result
        except sqlite3.DatabaseError as exc:
            self._give_up("cannot be read", exc)
            return {}
        except (OSError, diskcache.Timeout) as exc:
            logger.warning("cache entries unreadable, treated as misses: %s", exc)
        return found

    def _decoded(self, key: str, text: str) -> TagResult | None:
        try:
            return _decode_result(text)
        except (ValidationError, ValueError) as exc:
            # Warned once: after an upgrade every entry of the older format would say it.
            level = logging.DEBUG if self._misread else logging.WARNING
            self._misread = True
            logger.log(level, "cache entry %s is no result of this version, a miss: %s", key, exc)
            return None

    def put(self, result: TagResult) -> bool:
        """Store a successful result under ``result.key``; failures are never stored.

        The tagger's gate is the one writer (``AnswerGate.store``); it serves an entry only
        when the result's signature verifies, so a result stored any other way is a miss.
        """
        if not result.ok or self._cache is None:
            return False
        if result.cached:
            result = result.model_copy(update={"cached": False})
        text = f'{result.model_dump_json()[:-1]},"cache_format":{CACHE_FORMAT}}}'
        try:
            return bool(self._cache.set(result.key, text, retry=True))
        except CACHE_ERRORS as exc:
            self._give_up("cannot be written", exc)
            return False

    def delete(self, key: str) -> bool:
        """Forget ``key``."""
        if self._cache is None:
            return False
        return bool(self._cache.delete(key, retry=True))

    def __contains__(self, key: str) -> bool:
        return self._cache is not None and key in self._cache

    def __len__(self) -> int:
        return 0 if self._cache is None else len(self._cache)

    def clear(self) -> int:
        """Remove every entry; returns how many there were."""
        return 0 if self._cache is None else int(self._cache.clear(retry=True))

    def stats(self) -> dict[str, Any]:
        """Entries, bytes on disk and folder (and ``problem`` when the cache is not used)."""
        return {
            "path": str(self.directory),
            "entries": len(self),
            "size_bytes": 0 if self._cache is None else int(self._cache.volume()),
            "problem": self.problem,
        }

    def close(self) -> None:
        """Close the SQLite connections (reopened on next use)."""
        if self._cache is not None:
            self._cache.close()
