"""A module imported on first use, for code that must start fast (the command line)."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["lazy"]


class _LazyModule:
    """Stands for a module; the first attribute read imports it."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


def lazy(name: str) -> Any:
    """``name`` (e.g. ``"numpy"``), imported when an attribute of it is first read."""
    return _LazyModule(name)
