"""How a failed request becomes a jet's :class:`~vibe_jet_tagging.tagging.results.TagError`.

An error of the model server (the OpenAI SDK's, or the pool's own: an answer over the size
bound, a request two servers failed on, no server left), a failed look at the server (its
``/v1/models``), or a 200 whose body is no chat completion: each becomes the error of the jet
that met it, with a kind the user can count and a message naming the server (never its
password).
"""

from __future__ import annotations

import openai

from ..errors import ModelNotServedError, ServerError, ServersDisagreeError
from ..servers.pool import AnswerTooLargeError, NoServerLeftError, RepeatedFailureError
from ..servers.url import redact
from .results import TagError

__all__ = ["MalformedResponseError", "server_error", "server_info_error"]


class MalformedResponseError(ServerError):
    """The server answered HTTP 200 with a body that is no chat completion, retries included."""


def server_error(exc: openai.APIError, url: str | None) -> TagError:
    """The :class:`TagError` of an error of the model server.

    Names the server the failed request went to (with several servers, not always ``url``).
    """
    if isinstance(exc, AnswerTooLargeError):
        return TagError(kind="oversized", message=str(exc))
    if isinstance(exc, RepeatedFailureError):
        return TagError(kind="repeated_failure", message=str(exc))
    if isinstance(exc, NoServerLeftError):
        return TagError(kind="server", message=str(exc), status=409)
    request = getattr(exc, "request", None)
    if request is not None:
        url = str(request.url).removesuffix("/chat/completions")
    where = f" at {redact(url)}" if url else ""
    if isinstance(exc, openai.APITimeoutError):
        return TagError(kind="timeout", message=f"the model server{where} did not answer in time")
    if isinstance(exc, openai.APIConnectionError):
        return TagError(
            kind="connection",
            message=f"cannot reach the model server{where}: {exc.__cause__ or exc}",
        )
    if isinstance(exc, openai.APIStatusError):
        kind = {429: "rate_limit", 400: "bad_request", 422: "bad_request"}.get(
            exc.status_code, "server"
        )
        return TagError(
            kind=kind,  # type: ignore[arg-type]
            message=f"HTTP {exc.status_code} from the model server{where}: {exc.message}",
            status=exc.status_code,
        )
    return TagError(kind="server", message=f"the model server{where} failed: {exc}")


def server_info_error(exc: ServerError) -> TagError:
    """The :class:`TagError` of a failed look at the server (``/v1/models``, ``/version``).

    A model the server does not serve is permanent (vLLM answers such requests with 404), so
    are servers that serve different weights; a server that cannot be read may come back.
    """
    if isinstance(exc, ModelNotServedError):
        return TagError(kind="server", message=str(exc), status=404)
    if isinstance(exc, ServersDisagreeError):
        return TagError(kind="server", message=str(exc), status=409)
    return TagError(kind="connection", message=str(exc))
