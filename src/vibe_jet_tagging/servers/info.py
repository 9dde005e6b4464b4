"""What a model server is: the models it serves (``GET /v1/models``) and its version.

vLLM's model cards carry ``owned_by: "vllm"``, ``root`` (the weights behind the served name)
and ``max_model_len`` (the context); ``GET /version`` answers ``{"version": "0.32.0"}``. The
emulated server answers the same routes and says ``"emulated ..."`` as its version, so a
client can always tell a heuristic from a model.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from ..errors import ModelNotServedError, ServerError, ServersDisagreeError

__all__ = ["ModelCard", "ServerInfo", "fetch_pool_info", "fetch_server_info"]

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


def fetch_server_info(
    base_url: str, api_key: str | None = "EMPTY", *, timeout: float = 10.0
) -> ServerInfo:
    """Ask the server at ``base_url`` what it serves; one line naming the URL when it can't.

    Raises :class:`ServerError` when the server cannot be reached or does not answer
    ``GET /models`` like an OpenAI-compatible server. ``/version`` is optional (vLLM has it,
    other servers may not).
    """
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    url = f"{base_url.rstrip('/')}/models"
    try:
        with httpx.Client(timeout=timeout, headers=headers) as client:
            response = client.get(url)
            if response.status_code != 200:
                raise ServerError(
                    f"the server at {base_url} answered HTTP {response.status_code} to GET "
                    f"/models: {response.text[:200]}",
                    url=base_url,
                )
            try:
                cards = tuple(ModelCard.from_json(c) for c in response.json()["data"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ServerError(
                    f"the server at {base_url} is not OpenAI-compatible: GET /models gave "
                    f"no model list ({type(exc).__name__}: {exc})",
                    url=base_url,
                ) from None
            version = None
            try:
                answer = client.get(f"{_root(base_url)}/version")
                if answer.status_code == 200:
                    found = answer.json().get("version")
                    version = found if isinstance(found, str) else None
            except (httpx.HTTPError, ValueError, AttributeError):
                pass
    except httpx.HTTPError as exc:
        raise ServerError(
            f"cannot reach the model server at {base_url}: {exc}", url=base_url
        ) from None
    return ServerInfo(base_url=base_url, models=cards, version=version)


def fetch_pool_info(
    base_urls: Sequence[str], api_key: str | None, model: str, *, timeout: float = 10.0
) -> ServerInfo:
    """Check each server of a pool once; they must serve the same ``model`` (same weights).

    Servers that cannot be reached are logged and left to the pool (which sets them aside and
    tries them later); at least one must answer. Mixing the emulated server with a model
    server, or servers whose ``model`` has other weights (``root``), raises
    :class:`ServerError`: their answers are not the same model's. Returns the first answering
    server's info.
    """
    infos: list[ServerInfo] = []
    failures: list[ServerError] = []
    for url in base_urls:
        try:
            infos.append(fetch_server_info(url, api_key, timeout=timeout))
        except ServerError as exc:
            failures.append(exc)
    if not infos:
        raise ServerError("; ".join(map(str, failures)), url=base_urls[0])
    for exc in failures:
        logger.warning("%s: set aside, the run goes on with the other servers", exc)
    cards = {info.base_url: info.require(model) for info in infos}
    kinds = {(info.emulated, cards[info.base_url].root) for info in infos}
    if len(kinds) > 1:
        described = ", ".join(
            f"{info.base_url} ({'emulated' if info.emulated else cards[info.base_url].root})"
            for info in infos
        )
        raise ServersDisagreeError(
            f"the servers do not serve the same {model!r}: {described}", url=infos[0].base_url
        )
    return infos[0]
