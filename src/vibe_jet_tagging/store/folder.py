"""A cache folder that is this user's alone, and the diskcache inside it (JSON, never pickle).

Whose entries they are: a cached answer is served as this user's model's answer, so the folder
must be this user's alone. It is created with mode 0700, and an existing folder that belongs to
another user, that its group or others can write, or that is a symlink is refused
(:class:`UnsafeCacheError`, one line saying why and what to do) unless the caller says it is
shared (``shared=True``; ``vjt --shared-cache``). Entries are JSON text, never pickle:
diskcache's default pickling turns a folder others can write into code execution
(CVE-2025-69872), so :class:`JSONOnlyDisk` refuses to write or read a pickled entry.

A cache that cannot be opened or written (corrupt ``cache.db``, full disk, read-only folder) is
set aside with one warning, and the caller goes on without it (``problem`` says why).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import diskcache
import platformdirs

from ..errors import VJTError
from .filesystems import warn_if_network_filesystem

__all__ = [
    "CACHE_ERRORS",
    "JSONOnlyDisk",
    "Store",
    "UnsafeCacheEntryError",
    "UnsafeCacheError",
    "check_private",
    "default_cache_dir",
    "open_cache",
]

logger = logging.getLogger(__name__)

CACHE_ERRORS = (sqlite3.DatabaseError, OSError, diskcache.Timeout)


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


def user_id() -> int | None:
    """This process's user id (``None`` where there are none); tests fake another user here."""
    # hasattr: false only on Windows.
    return os.getuid() if hasattr(os, "getuid") else None  # pragma: no mutate


def others_could_write(st: os.stat_result) -> str | None:
    """Why another user could have written what ``st`` describes, or ``None``: it belongs
    to another user, or its group or others can write it. One rule for cache folders and
    results files."""
    uid = user_id()
    if uid is not None and st.st_uid != uid:
        return f"it belongs to another user (uid {st.st_uid}, you are {uid})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"its group or others can write it (mode {stat.S_IMODE(st.st_mode):o})"
    return None


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
    why = others_could_write(st)
    if why is not None:
        fix = "`chmod 700` it if only you use it, or " if "mode" in why else ""
        raise UnsafeCacheError(
            f"refusing the cache folder {directory}: {why}, so they could put answers in it; "
            f"{fix}{_SHARED_HINT}"
        )


def open_cache(directory: Path, size_limit: int, *, shared: bool) -> diskcache.Cache:
    """The diskcache in ``directory`` (raises ``UnsafeCacheError``, or a ``CACHE_ERRORS``)."""
    if not shared:
        check_private(directory)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not shared and stat.S_IMODE(directory.stat().st_mode) != 0o700:
        directory.chmod(0o700)  # mkdir's mode is reduced by the umask, never raised
    warn_if_network_filesystem(directory)  # SQLite on NFS/Lustre/GPFS: one warning line
    # timeout: SQLite's lock wait (only seen under contention).
    wait = 60  # pragma: no mutate
    return diskcache.Cache(str(directory), disk=JSONOnlyDisk, timeout=wait, size_limit=size_limit)


class Store:
    """A diskcache folder that is set aside (with one warning) once it fails."""

    directory: Path
    problem: str | None = None
    """Why the cache is not used (it could not be opened or written), or ``None``."""

    def _start(self, size_limit: int, shared: bool) -> diskcache.Cache | None:
        try:
            return open_cache(self.directory, size_limit, shared=shared)
        except CACHE_ERRORS as exc:
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
