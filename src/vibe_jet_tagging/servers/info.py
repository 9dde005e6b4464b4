"""What a model server is: the models it serves (``GET /v1/models``) and its version.

vLLM's model cards carry ``owned_by: "vllm"``, ``root`` (the weights behind the served name)
and ``max_model_len`` (the context); ``GET /version`` answers ``{"version": "0.32.0"}``. The
emulated server answers the same routes and says ``"emulated ..."`` as its version, so a
client can always tell a heuristic from a model.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._compat.httpx import httpx
from ..errors import ModelNotServedError, ServerError, ServersDisagreeError
from .url import redact

__all__ = [
    "ModelCard",
    "ServerIdentity",
    "ServerInfo",
    "fetch_each",
    "fetch_pool_info",
    "fetch_server_info",
    "parse_server_info",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelCard:
    """One entry of ``GET /v1/models``."""

    id: str
    root: str | None = None
    owned_by: str | None = None
    max_model_len: int | None = None

    @classmethod
    def from_json(cls, card: dict[str, Any]) -> ModelCard:
        length = card.get("max_model_len")
        return cls(
            id=str(card["id"]),
            root=card.get("root") if isinstance(card.get("root"), str) else None,
            owned_by=card.get("owned_by") if isinstance(card.get("owned_by"), str) else None,
            max_model_len=length if isinstance(length, int) and length > 0 else None,
        )


@dataclass(frozen=True)
class ServerIdentity:
    """Who answers for a model: the emulated server or a model server, and the weights.

    Two servers with the same identity give the same model's answers (their vLLM versions may
    differ); a server whose identity changes mid-run (other weights, or the emulator started
    where a model server was) is another source of answers.
    """

    model: str
    root: str | None
    emulated: bool

    def __str__(self) -> str:
        kind = "emulated server" if self.emulated else "model"
        weights = f" (weights {self.root})" if self.root and self.root != self.model else ""
        return f"{kind} {self.model}{weights}"


@dataclass(frozen=True)
class ServerInfo:
    """A server's models and version, as it reported them."""

    base_url: str
    models: tuple[ModelCard, ...]
    version: str | None = None

    @property
    def model_ids(self) -> list[str]:
        """The served model names."""
        return [card.id for card in self.models]

    def card(self, model: str) -> ModelCard | None:
        """The card of ``model``, or ``None`` when the server does not serve it."""
        return next((card for card in self.models if card.id == model), None)

    def require(self, model: str) -> ModelCard:
        """The card of ``model``; :class:`ModelNotServedError` listing what is served if none."""
        card = self.card(model)
        if card is None:
            raise ModelNotServedError(
                f"the server at {self.base_url} does not serve {model!r}; it serves: "
                f"{', '.join(self.model_ids) or 'nothing'}",
                url=self.base_url,
                served=self.model_ids,
            )
        return card

    def identity(self, model: str) -> ServerIdentity | None:
        """Who answers for ``model`` here, or ``None`` when it is not served."""
        card = self.card(model)
        if card is None:
            return None
        return ServerIdentity(model, card.root, self.emulated)

    @property
    def emulated(self) -> bool:
        """Whether this is the package's emulated server (a heuristic, not a model)."""
        return bool(self.version and self.version.startswith("emulated"))

    @property
    def vllm(self) -> bool:
        """Whether the server says it is vLLM (or emulates it)."""
        return any(card.owned_by == "vllm" for card in self.models)

    @property
    def structured_outputs(self) -> bool:
        """Whether the server takes vLLM's ``structured_outputs`` body field (vLLM >= 0.10.2).

        Older vLLM and other servers get only the portable ``response_format``.
        """
        if self.emulated:
            return True
        if not self.vllm or not self.version:
            return False
        numbers = re.match(r"(\d+)\.(\d+)\.(\d+)", self.version)
        return numbers is not None and tuple(map(int, numbers.groups())) >= (0, 10, 2)


def _root(base_url: str) -> str:
    return base_url.rstrip("/").removesuffix("/v1")


def models_url(base_url: str) -> str:
    """Where a server lists its models."""
    return f"{base_url.rstrip('/')}/models"


def version_url(base_url: str) -> str:
    """Where vLLM says its version."""
    return f"{_root(base_url)}/version"


def parse_server_info(
    base_url: str, status: int, models: bytes, version: bytes | None
) -> ServerInfo:
    """A :class:`ServerInfo` from the answers to ``GET /models`` and ``GET /version``.

    Raises :class:`ServerError` (naming the URL, its password left out) when the model list is
    no OpenAI-compatible answer. ``version``: the ``/version`` body, if it answered 200.
    """
    shown = redact(base_url)
    if status != 200:
        text = models[:200].decode("utf-8", "replace")
        raise ServerError(
            f"the server at {shown} answered HTTP {status} to GET /models: {text}", url=shown
        )
    try:
        cards = tuple(ModelCard.from_json(c) for c in json.loads(models)["data"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ServerError(
            f"the server at {shown} is not OpenAI-compatible: GET /models gave no model list "
            f"({type(exc).__name__}: {exc})",
            url=shown,
        ) from None
    found = None
    if version is not None:
        try:
            said = json.loads(version)
            found = said.get("version") if isinstance(said, dict) else None
        except ValueError:
            found = None
    return ServerInfo(
        base_url=shown or base_url,
        models=cards,
        version=found if isinstance(found, str) else None,
    )


def fetch_server_info(
    base_url: str, api_key: str | None = "EMPTY", *, timeout: float = 10.0
) -> ServerInfo:
    """Ask the server at ``base_url`` what it serves; one line naming the URL when it can't.

    Raises :class:`ServerError` when the server cannot be reached or does not answer
    ``GET /models`` like an OpenAI-compatible server. ``/version`` is optional (vLLM has it,
    other servers may not). Messages and the info's ``base_url`` never hold a password.
    """
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        with httpx.Client(timeout=timeout, headers=headers) as client:
            response = client.get(models_url(base_url))
            version = None
            if response.status_code == 200:
                try:
                    answer = client.get(version_url(base_url))
                    version = answer.content if answer.status_code == 200 else None
                except httpx.HTTPError:
                    version = None
            return parse_server_info(base_url, response.status_code, response.content, version)
    except httpx.HTTPError as exc:
        shown = redact(base_url)
        raise ServerError(f"cannot reach the model server at {shown}: {exc}", url=shown) from None


def fetch_each(
    base_urls: Sequence[str], api_key: str | None, *, timeout: float = 10.0
) -> dict[str, ServerInfo | ServerError]:
    """What each server says it is, or why it could not be read, by base URL."""
    out: dict[str, ServerInfo | ServerError] = {}
    for url in base_urls:
        try:
            out[url] = fetch_server_info(url, api_key, timeout=timeout)
        except ServerError as exc:
            out[url] = exc
    return out


def pool_info(found: dict[str, ServerInfo | ServerError], model: str) -> ServerInfo:
    """The one model the servers of a pool serve, checked (see :func:`fetch_pool_info`)."""
    infos = [info for info in found.values() if isinstance(info, ServerInfo)]
    failures = [exc for exc in found.values() if isinstance(exc, ServerError)]
    if not infos:
        first = next(iter(found), None)
        raise ServerError("; ".join(map(str, failures)), url=redact(first))
    for exc in failures:
        logger.warning("%s: set aside, checked again before its first answer counts", exc)
    identities = {info.base_url: info.require(model) and info.identity(model) for info in infos}
    if len(set(identities.values())) > 1:
        described = ", ".join(f"{url} ({identity})" for url, identity in identities.items())
        raise ServersDisagreeError(
            f"the servers do not serve the same {model!r}: {described}", url=infos[0].base_url
        )
    return infos[0]


def fetch_pool_info(
    base_urls: Sequence[str], api_key: str | None, model: str, *, timeout: float = 10.0
) -> ServerInfo:
    """Check each server of a pool once; they must serve the same ``model`` (same weights).

    Servers that cannot be reached are logged and left to the pool (which checks them before
    their first answer counts); at least one must answer. Mixing the emulated server with a
    model server, or servers whose ``model`` has other weights (``root``), raises
    :class:`ServersDisagreeError`: their answers are not the same model's. Returns the first
    answering server's info.
    """
    return pool_info(fetch_each(base_urls, api_key, timeout=timeout), model)
