"""What answers: a model server's identity and a pool of servers of one model.

- :mod:`.info`: what a server says it is (``GET /v1/models``, ``/version``): :class:`ServerInfo`;
- :mod:`.pool`: several servers of one model behind one client (:class:`EndpointPool`), each
  verified before its answers count.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "EndpointPool": "pool",
    "ModelCard": "info",
    "PoolTransport": "transport",
    "ServerInfo": "info",
    "fetch_pool_info": "info",
    "fetch_server_info": "info",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:  # names are imported on first use: importing stays light
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from .info import ModelCard, ServerInfo, fetch_pool_info, fetch_server_info
    from .pool import EndpointPool
    from .transport import PoolTransport
