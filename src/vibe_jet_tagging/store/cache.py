"""Disk caches: parsed results per jet (:class:`ResultCache`) and raw model calls
(:class:`DiskLLMCache`, a LangChain ``BaseCache``).

Both sit on ``diskcache`` (SQLite in WAL mode: safe across threads, asyncio tasks and
processes). Entries are JSON text, never pickle: diskcache's default pickling turns a folder
others can write into code execution (CVE-2025-69872), so :class:`JSONOnlyDisk` refuses to
write or read a pickled entry.

Whose entries they are: a cached answer is served as this user's model's answer, so the folder
must be this user's alone. It is created with mode 0700, and an existing folder that belongs to
another user, that its group or others can write, or that is a symlink is refused
(:class:`UnsafeCacheError`, one line saying why and what to do) unless the caller says it is
shared (``shared=True``; ``vjt --shared-cache``). A result entry carries the cache format
(:data:`CACHE_FORMAT`); one of another format, with fields a result does not have, or that does
not decode (half-written, corrupted) is a miss, not a crash. Beyond the folder's owner, each
result carries this user's signature (:mod:`.provenance`): the tagger's gate writes the
entries and serves one only when its signature verifies, so an entry put there any other way
is a miss. :class:`DiskLLMCache` signs its entries the same way.

A cache that cannot be opened or written (corrupt ``cache.db``, full disk, read-only folder) is
set aside with one warning, and the caller goes on without it (``problem`` says why).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import sqlite3
import stat
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import diskcache
import platformdirs
from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.load import dumps, loads
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, Generation
from pydantic import ValidationError

from .._compat import diskcache as diskcache_sql
from .._compat.langchain import LangChainBetaWarning
from ..errors import VJTError
from ..tagging.results import TagError, TagResult, Usage
from .filesystems import warn_if_network_filesystem
from .provenance import Signer, answer_digest, default_signer

__all__ = [
    "CACHE_FORMAT",
    "DiskLLMCache",
    "JSONOnlyDisk",
    "ResultCache",
    "UnsafeCacheEntryError",
    "UnsafeCacheError",
    "check_private",
    "default_cache_dir",
]

logger = logging.getLogger(__name__)

_CACHE_ERRORS = (sqlite3.DatabaseError, OSError, diskcache.Timeout)


CACHE_FORMAT = 3
"""The format of a stored result; entries of another format are misses (3: signed results)."""

_FIELDS = {
    "": frozenset(TagResult.model_fields) | {"cache_format"},
    "usage": frozenset(Usage.model_fields),
    "error": frozenset(TagError.model_fields),
}


class UnsafeCacheEntryError(ValueError):
    """A cache entry was pickled (by something other than this package): refused."""


class UnsafeCacheError(VJTError):
    """A cache folder others could write to was refused (not opened)."""


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
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("vibe-jet-tagging"))


_SHARED_HINT = (
    "use a folder of your own (VJT_CACHE_DIR), or if it is meant to be shared say so "
    "(vjt --shared-cache, shared_cache = true, or shared=True)"
)


def check_private(directory: Path) -> None:
    """Raise :class:`UnsafeCacheError` unless ``directory`` (if it exists) is this user's alone.

    Refused: a symlink, a folder owned by another user, a folder its group or others can write
    (any of them could put answers in it that would be served as the model's).
    """
    try:
        st = os.lstat(directory)
    except FileNotFoundError:
        return
    except OSError:
        return  # cannot look: opening it will fail and say why
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeCacheError(
            f"refusing the cache folder {directory}: it is a symlink (to "
            f"{os.readlink(directory)}), which another user may have planted; point at the "
            f"folder itself, or {_SHARED_HINT}"
        )
    if not stat.S_ISDIR(st.st_mode):
        return  # not a folder: opening it fails and says so
    uid = os.getuid() if hasattr(os, "getuid") else None
    if uid is not None and st.st_uid != uid:
        raise UnsafeCacheError(
            f"refusing the cache folder {directory}: it belongs to another user (uid "
            f"{st.st_uid}, you are {uid}), who could put answers in it; {_SHARED_HINT}"
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeCacheError(
            f"refusing the cache folder {directory}: its group or others can write it (mode "
            f"{stat.S_IMODE(st.st_mode):o}), so they could put answers in it; `chmod 700` it if "
            f"only you use it, or {_SHARED_HINT}"
        )


def _open(directory: Path, size_limit: int, *, shared: bool) -> diskcache.Cache:
    """The diskcache in ``directory`` (raises ``UnsafeCacheError``, or a ``_CACHE_ERRORS``)."""
    if not shared:
        check_private(directory)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not shared and stat.S_IMODE(directory.stat().st_mode) != 0o700:
        directory.chmod(0o700)  # mkdir's mode is reduced by the umask, never raised
    warn_if_network_filesystem(directory)  # SQLite on NFS/Lustre/GPFS: one warning line
    return diskcache.Cache(str(directory), disk=JSONOnlyDisk, timeout=60, size_limit=size_limit)


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
    for ending in _FORMAT_ENDINGS if _ONE_PASS else ():
        if text.endswith(ending):
            body = text[: -len(ending)] + "}"
            return _shared_fields(TagResult.model_validate_json(body, extra="forbid"))
    return _decode_any_layout(text)


def _shared_fields(result: TagResult) -> TagResult:
    """``result`` with the one set of field names every complete result shares.

    pydantic gives each model its own set of the fields given (~2 KB for a result, ~0.7 KB
    for its usage); a stored result gives them all, so one shared set says the same.
    """
    if result.__pydantic_fields_set__ == _RESULT_FIELDS:
        object.__setattr__(result, "__pydantic_fields_set__", _RESULT_FIELDS)
    if result.usage.__pydantic_fields_set__ == _USAGE_FIELDS:
        object.__setattr__(result.usage, "__pydantic_fields_set__", _USAGE_FIELDS)
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


class _Store:
    """A diskcache folder that is set aside (with one warning) once it fails."""

    directory: Path
    problem: str | None = None
    """Why the cache is not used (it could not be opened or written), or ``None``."""

    def _start(self, size_limit: int, shared: bool) -> diskcache.Cache | None:
        try:
            return _open(self.directory, size_limit, shared=shared)
        except _CACHE_ERRORS as exc:
            self._give_up("cannot be opened", exc)
            return None

    def _give_up(self, what: str, exc: BaseException) -> None:
        """Stop using the cache, saying why once."""
        self._cache = None
        if self.problem is None:
            self.problem = (
                f"the cache {self.directory} {what} ({type(exc).__name__}: {exc}); going on "
                "without it"
            )
            logger.warning("%s", self.problem)

    @property
    def available(self) -> bool:
        """Whether the cache is in use (not set aside after a failure)."""
        return self._cache is not None


class ResultCache(_Store):
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

    def get_many(self, keys: Iterable[str]) -> dict[str, TagResult]:
        """The stored results among ``keys``, read together (a query per 500 keys).

        Every call gives new result objects, the caller's to change. Unreadable entries are
        misses, as for :meth:`get`.
        """
        if self._cache is None:
            return {}
        found = {}
        try:
            for key, text in _read_many(self._cache, list(dict.fromkeys(keys))):
                result = self._decoded(key, text)
                if result is not None:
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
        except _CACHE_ERRORS as exc:
            self._give_up("cannot be written", exc)
            return False

    def delete(self, key: str) -> bool:
        """Forget ``key``."""
        return self._cache is not None and bool(self._cache.delete(key, retry=True))

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


class DiskLLMCache(_Store, BaseCache):
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
        if self._cache is None:
            return
        try:
            key, data = self._key(prompt, llm_string), dumps(list(return_val))
            self._cache.set(key, f"{self._sign(key, data)}\n{data}", retry=True)
        except _CACHE_ERRORS as exc:
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
