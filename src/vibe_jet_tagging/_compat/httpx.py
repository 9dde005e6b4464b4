"""The httpx flavour the installed openai SDK is built on: ``httpx2`` for openai >= 3, else httpx.

Transports and clients handed to the SDK must come from the same library (langchain-openai
resolves it the same way, in a private module of its own).
"""

from __future__ import annotations

import importlib.metadata
import re
from typing import TYPE_CHECKING

__all__ = ["httpx", "sdk_uses_httpx2"]


def _openai_version() -> str:
    """The installed openai SDK's version, read without importing it (~0.5 s of CPU)."""
    try:
        return importlib.metadata.version("openai")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a dependency
        import openai

        return str(getattr(openai, "__version__", ""))


def sdk_uses_httpx2() -> bool:
    """Whether the installed openai SDK is built on ``httpx2`` (openai >= 3)."""
    match = re.match(r"\D*(\d+)", _openai_version())
    return match is not None and int(match.group(1)) >= 3


if TYPE_CHECKING:
    import httpx2 as httpx  # what the installed openai SDK (>= 3) is typed against
elif sdk_uses_httpx2():
    import httpx2 as httpx
else:
    import httpx
