"""The errors the package raises on purpose, each saying what was wrong and where."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = [
    "ConfigError",
    "ModelNotServedError",
    "ServerError",
    "ServersDisagreeError",
    "VJTError",
    "one_line",
]


class VJTError(Exception):
    """Base of every error the package raises on purpose; its message is for the user."""


class ConfigError(VJTError, ValueError):
    """An invalid setting or argument: one line naming it, its value and what is allowed."""


def one_line(exc: ValidationError, names: Mapping[str, str] | None = None) -> str:
    """A pydantic error as ``name=value: problem; ...`` (``names`` renames fields)."""
    names = names or {}
    parts = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        if not error["loc"]:  # the model's own check: its message says it all
            parts.append(message)
            continue
        name = ".".join(map(str, error["loc"]))
        parts.append(f"{names.get(name, name)}={error.get('input')!r}: {message}")
    return "; ".join(parts)


class ServerError(VJTError):
    """The model server could not be reached, refused the request, or does not serve the model."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class ModelNotServedError(ServerError):
    """The server answers but does not serve the model asked for; ``served`` lists what it does."""

    def __init__(self, message: str, *, url: str, served: list[str]) -> None:
        super().__init__(message, url=url)
        self.served = served


class ServersDisagreeError(ServerError):
    """Several servers given for one model serve different weights (or mix the emulator in):
    their answers are not one model's. Asking again cannot cure it."""
