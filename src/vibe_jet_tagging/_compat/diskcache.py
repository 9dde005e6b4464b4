"""diskcache's per-thread SQLite connection, for one query over many keys.

``diskcache.Cache.get`` makes one query per key; reading thousands of cache hits at once is
one query per 500 keys through the cache's own connection (``Cache._sql``), the same query
``get`` makes for a cache that keeps no statistics and updates nothing on a read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import diskcache

__all__ = ["query", "reads_update"]


def reads_update(cache: diskcache.Cache) -> bool:
    """Whether a read changes the cache (statistics, a least-recently-used policy)."""
    policy = diskcache.core.EVICTION_POLICY[cache.eviction_policy]
    return bool(cache.statistics or policy["get"])


def query(cache: diskcache.Cache, sql: str, parameters: Sequence[Any]) -> list[Any]:
    """Rows of ``sql`` on the cache's SQLite connection for this thread."""
    return list(cache._sql(sql, tuple(parameters)).fetchall())
