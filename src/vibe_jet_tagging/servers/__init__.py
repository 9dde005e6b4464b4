"""What answers: a model server's identity and a pool of servers of one model.

- :mod:`.info`: what a server says it is (``GET /v1/models``, ``/version``): :class:`ServerInfo`;
- :mod:`.pool`: several servers of one model behind one client (:class:`EndpointPool`), each
  verified before its answers count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._imports import lazy_exports

_EXPORTS = {
    "EndpointPool": "pool",
    "ModelCard": "info",
    "PoolTransport": "transport",
    "ServerInfo": "info",
    "fetch_pool_info": "info",
    "fetch_server_info": "info",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS, globals())  # names imported on first use


if TYPE_CHECKING:
    from .info import ModelCard, ServerInfo, fetch_pool_info, fetch_server_info
    from .pool import EndpointPool
    from .transport import PoolTransport
