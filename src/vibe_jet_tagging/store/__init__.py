"""Where results are kept: the result cache, the LangChain cache, results files, merging.

- :mod:`.cache`: :class:`ResultCache`, parsed results per cache key (written by the gate only);
- :mod:`.llm_cache`: :class:`DiskLLMCache`, a LangChain ``BaseCache`` for any chat model;
- :mod:`.folder`: a cache folder of this user's alone, diskcache with JSON entries only;
- :mod:`.provenance`: the per-user key that signs results, so later runs can verify them;
- :mod:`.rows`: results files (JSONL rows), written whole-line by :class:`JsonlWriter`;
- :mod:`.merging`: the parts of one run merged into one file;
- :mod:`.filesystems`: which filesystems SQLite cannot lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._imports import lazy_exports

_EXPORTS = {
    "DiskLLMCache": "llm_cache",
    "ResultCache": "cache",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS, globals())  # names imported on first use


if TYPE_CHECKING:
    from .cache import ResultCache
    from .llm_cache import DiskLLMCache
