"""The errors the package raises on purpose, each saying what was wrong and where."""

from __future__ import annotations

__all__ = ["ModelNotServedError", "ServerError", "VJTError"]


class VJTError(Exception):
    """Base of every error the package raises on purpose; its message is for the user."""


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
