"""The tagger's requests: what the server is, the options of every call, and one call.

:class:`RequestClient` talks to the model server for a tagger: it reads what the server(s)
report about themselves once (``/v1/models``, ``/version``) and tells the pool which identity
every answer must come from; it builds the keyword arguments every model call carries (the
output constraint the server takes, logprobs); and :meth:`RequestClient.ask` makes one model
call, asking again when a 200 carries no chat completion.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, BaseMessage

from .._imports import Deferred, built
from ..config import DEFAULT_BASE_URL
from ..servers.info import ServerInfo, fetch_each, pool_info
from ..servers.url import redact

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.runnables import RunnableConfig

    from .options import DeferredChatVLLM

__all__ = ["RequestClient", "logprob_quark_probability"]

logger = logging.getLogger(__name__)

# What converting a 200 body that is no chat completion raises (the SDK or langchain-openai):
# ValueError (not JSON, a str body), TypeError (choices null or missing), IndexError (no
# choices), KeyError/AttributeError (fields missing).
_MALFORMED = (ValueError, TypeError, LookupError, AttributeError)


def _backoff(attempt: int) -> float:
    """Seconds before retry ``attempt + 1``: the OpenAI SDK's schedule (0.5 s doubling to 8 s,
    up to a quarter less at random)."""
    return min(0.5 * 2**attempt, 8.0) * (1 - 0.25 * random.random())


def logprob_quark_probability(message: BaseMessage) -> float | None:
    """P(quark) from the top logprobs at the token that carries the label, if returned."""
    content = ((message.response_metadata or {}).get("logprobs") or {}).get("content") or []
    for token in content:
        text = str(token.get("token", "")).strip(" \"'*").lower()
        if not (text.startswith(("quark", "gluon")) or text in ("0", "1")):
            continue
        p_quark = p_gluon = 0.0
        for alt in token.get("top_logprobs") or [token]:
            alt_text = str(alt.get("token", "")).strip(" \"'*").lower()
            p = math.exp(float(alt.get("logprob", -math.inf)))
            if alt_text.startswith("quark") or alt_text == "1":
                p_quark += p
            elif alt_text.startswith("gluon") or alt_text == "0":
                p_gluon += p
        if p_quark + p_gluon > 0:
            return p_quark / (p_quark + p_gluon)
    return None


class RequestClient:
    """The server and the model calls of a tagger.

    Args:
        model: the chat model (a :class:`~vibe_jet_tagging.tagging.model.ChatVLLM` for a
            server, or any LangChain chat model), or a
            :class:`~vibe_jet_tagging.tagging.options.DeferredChatVLLM`: a ``ChatVLLM`` built
            on first use (its name, effort and URLs are known before).
        structured_output: constrain each answer to the label's JSON.
        logprobs: ask for token logprobs.
    """

    def __init__(
        self,
        model: BaseChatModel | DeferredChatVLLM,
        *,
        structured_output: bool,
        logprobs: bool,
    ) -> None:
        self._model = model
        self.structured_output = structured_output
        self.logprobs = logprobs
        self._options: dict[str, Any] | None = None
        self._info: ServerInfo | None = None
        self._lock = threading.Lock()

    # -- what the model is ----------------------------------------------------------------------

    @property
    def model(self) -> BaseChatModel:
        """The chat model (a deferred ``ChatVLLM`` is built here, when first read)."""
        model = self._model = built(self._model)
        return model

    @property
    def _deferred(self) -> DeferredChatVLLM | None:
        """The ``ChatVLLM`` to build, while it is not built."""
        model = self._model
        return model if isinstance(model, Deferred) and not model.built else None

    @property
    def served(self) -> bool:
        """Whether the model is an OpenAI-compatible client of a server."""
        if self._deferred is not None:
            return True
        # A BaseChatOpenAI exists only once langchain-openai was imported (not imported here:
        # a tagger's model is built on first use, and its stack with it).
        base = sys.modules.get("langchain_openai.chat_models.base")
        return base is not None and isinstance(self.model, base.BaseChatOpenAI)

    @property
    def model_name(self) -> str:
        """The served model's name."""
        deferred = self._deferred
        if deferred is not None:
            return deferred.model_name
        return str(getattr(self.model, "model_name", None) or type(self.model).__name__)

    @property
    def reasoning_effort(self) -> str | None:
        """The reasoning effort sent with each request."""
        deferred = self._deferred
        if deferred is not None:
            return deferred.reasoning_effort
        return getattr(self.model, "reasoning_effort", None)

    @property
    def _pool(self) -> Any:
        return getattr(self.model, "endpoint_pool", None)

    @property
    def _urls(self) -> list[str]:
        """The servers' URLs, credentials included (for requests only)."""
        deferred = self._deferred
        if deferred is not None:
            return list(deferred.base_urls)
        pool = self._pool
        if pool is not None:
            return list(pool.base_urls)
        return [getattr(self.model, "openai_api_base", None) or DEFAULT_BASE_URL]

    @property
    def base_url(self) -> str | None:
        """The (first) server's URL as it may be shown (no password)."""
        if not self.served:
            return None
        return redact(self._urls[0])

    @property
    def base_urls(self) -> list[str]:
        """Every server the requests go to, as they may be shown (no password)."""
        return [redact(url) or "" for url in self._urls]

    def endpoint_stats(self) -> list[dict[str, Any]]:
        """Requests sent, answered and failed per server (several servers only)."""
        pool = self._pool
        return pool.stats() if pool is not None and len(pool) > 1 else []

    # -- what the server is ---------------------------------------------------------------------

    def server_info(self) -> ServerInfo | None:
        """What the server reports about itself (``/v1/models``, ``/version``), asked once.

        ``None`` for a chat model that is not an OpenAI-compatible client. Raises
        :class:`~vibe_jet_tagging.errors.ServerError` when no server can be read. The servers
        read are verified for the pool; the others are read before their first answer.
        """
        if self._info is None and self.served:
            with self._lock:
                if self._info is None:
                    key = getattr(self.model, "openai_api_key", None)
                    found = fetch_each(
                        self._urls, key.get_secret_value() if key is not None else None
                    )
                    info = pool_info(found, self.model_name)
                    identity = info.identity(self.model_name)
                    pool = self._pool
                    if pool is not None and identity is not None:
                        answered = [
                            url for url, got in found.items() if isinstance(got, ServerInfo)
                        ]
                        pool.expect(identity, verified=answered)
                    self._info = info
        return self._info

    def assume_server(self, info: ServerInfo) -> None:
        """Take ``info`` as what the server is, without asking it (offline batch files).

        The cache keys and the requests depend on it, so only before either was made.
        """
        with self._lock:
            if self._options is not None:
                raise ValueError("assume_server: this tagger has made keys or requests already")
            self._info = info

    @property
    def identity(self) -> str:
        """Who answers: the verified server identity, or the chat model for one without a
        server (reading the server if not done yet)."""
        info = self.server_info()
        if info is None:
            return f"chat model {type(self.model).__name__} {self.model_name}"
        found = info.identity(self.model_name)
        return str(found) if found is not None else f"model {self.model_name}"

    def key_identity(self) -> dict[str, Any] | None:
        """What about the server shapes its answers, for the cache key: emulated or not, the
        served weights, the output constraint sent (``None`` without a server)."""
        info = self.server_info()
        if info is None:
            return None
        card = info.card(self.model_name)
        body = self.options().get("extra_body") or {}
        constraint = next((c for c in ("structured_outputs", "response_format") if c in body), None)
        return {
            "emulated": info.emulated,
            "root": None if card is None else card.root,
            "constraint": constraint,
        }

    # -- the calls ------------------------------------------------------------------------------

    def options(self) -> dict[str, Any]:
        """Keyword arguments of every model call (built once, after the server is known)."""
        if self._options is not None:
            return self._options
        options: dict[str, Any] = {}
        if self.structured_output:
            # In the body, for a server: ChatOpenAI would send a response_format through the
            # SDK's slower `parse` path, which adds ~1 ms of CPU per request and gains nothing
            # here (the answer is validated by the parser). The one decision, shared with
            # chains built from the parts: parser.constraint_for.
            from .parser import constraint_for

            options.update(constraint_for(self.model, self.server_info()))
        if self.logprobs:
            options.update(logprobs=True, top_logprobs=5)
        self._options = options
        return options

    @property
    def constraint(self) -> str:
        """``"regex"``, ``"response_format"`` or ``"none"``: what the requests carry."""
        body = self.options().get("extra_body") or {}
        if "structured_outputs" in body:
            return "regex"
        return "response_format" if "response_format" in body else "none"

    async def ask(
        self, messages: list[BaseMessage], config: RunnableConfig, *, watched: bool = True
    ) -> tuple[AIMessage, float]:
        """One model call and its seconds; a 200 whose body is no chat completion is retried.

        The OpenAI SDK retries 5xx, 429 and connection errors itself, but takes any 200 as an
        answer; a body that is not a chat completion (not JSON, no ``choices``...) then fails
        in the conversion. It is asked again up to the model's ``max_retries`` with the SDK's
        backoff, then raises :class:`MalformedResponseError` (an error of kind ``server``).

        ``watched=False`` (no callback handler sees this call): a ``ChatVLLM`` answers through
        :meth:`~vibe_jet_tagging._compat.langchain.ChatOpenAIHooks.adirect`, the same request
        and message without LangChain's run machinery; otherwise ``ainvoke``.
        """
        options = self._options
        if options is None:
            options = await asyncio.to_thread(self.options)
        retries = (getattr(self.model, "max_retries", None) or 0) if self.served else 0
        direct = None if watched else getattr(self.model, "adirect", None)
        start = time.perf_counter()
        for attempt in range(retries + 1):
            try:
                found = None if direct is None else await direct(messages, **options)
                message = found or await self.model.ainvoke(messages, config, **options)
                break
            except _MALFORMED as exc:
                if not self.served:
                    raise
                if attempt == retries:
                    from .failures import MalformedResponseError

                    said = " ".join(str(exc).split())[:200]
                    raise MalformedResponseError(
                        f"the model server at {self.base_url} answered HTTP 200 with a body "
                        f"that is not a chat completion, {attempt + 1} times in a row "
                        f"({type(exc).__name__}: {said})",
                        url=self.base_url,
                    ) from exc
                logger.info("malformed answer from %s, asking again: %s", self.base_url, exc)
                await asyncio.sleep(_backoff(attempt))
        if not isinstance(message, AIMessage):  # pragma: no cover - chat models give these
            raise TypeError(f"the chat model gave a {type(message).__name__}, not an AIMessage")
        return message, time.perf_counter() - start
