"""The tagger's requests: the server it talks to, the options of every call, and one call.

:class:`TaggerRequests` is the part of :class:`~.tagging.tagger.JetTagger` that talks
to the model server: what the server reports about itself (asked once), the keyword arguments
every model call carries (the output constraint the server takes, logprobs), and ``_ask``, one
model call that retries a 200 whose body is no chat completion; and the quark probability
the token logprobs give when the calls ask for them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import threading
import time
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import RunnableConfig
from langchain_openai.chat_models.base import BaseChatOpenAI

from ..servers.info import ServerInfo, fetch_pool_info
from .failures import MalformedResponseError
from .model import DEFAULT_BASE_URL, reasoning_of
from .parsing import COMPACT_LABEL_REGEX, ParsedLabel, label_response_format

__all__ = ["TaggerRequests", "answered_fields", "logprob_quark_probability"]

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


def answered_fields(outcome: ParsedLabel, message: AIMessage, usage: Any) -> dict[str, Any]:
    """The fields of a labelled result: what the model stated and how it was read.

    One place for the answers read over HTTP (the tagger) and from batch files.
    """
    return {
        "label": outcome.label,
        "quark_probability": outcome.quark_probability,
        "logprob_quark_probability": logprob_quark_probability(message),
        "parsed_by": outcome.step,
        "answer": message.text,
        "reasoning": reasoning_of(message),
        "finish_reason": message.response_metadata.get("finish_reason"),
        "usage": usage,
    }


class TaggerRequests:
    """The server and the model calls of a :class:`~.tagging.tagger.JetTagger`."""

    model: BaseChatModel
    structured_output: bool
    logprobs: bool
    _call_options: dict[str, Any] | None
    _server_info: ServerInfo | None
    _server_lock: threading.Lock
    _settings_key_value: str | None

    @property
    def model_name(self) -> str:
        """The served model's name."""
        return str(getattr(self.model, "model_name", None) or type(self.model).__name__)

    @property
    def reasoning_effort(self) -> str | None:
        """The reasoning effort sent with each request."""
        return getattr(self.model, "reasoning_effort", None)

    @property
    def effort(self) -> str | None:
        """Alias of :attr:`reasoning_effort`."""
        return self.reasoning_effort

    @property
    def base_url(self) -> str | None:
        """The model server's URL."""
        return getattr(self.model, "openai_api_base", None)

    @property
    def base_urls(self) -> list[str]:
        """Every server the model spreads its requests over (one unless given a list)."""
        pool = getattr(self.model, "endpoint_pool", None)
        return pool.base_urls if pool is not None else [self.base_url or DEFAULT_BASE_URL]

    def endpoint_stats(self) -> list[dict[str, Any]]:
        """Requests sent, answered and failed per server (several servers: see ``base_url``)."""
        pool = getattr(self.model, "endpoint_pool", None)
        return pool.stats() if pool is not None else []

    def server_info(self) -> ServerInfo | None:
        """What the server reports about itself (``/v1/models``, ``/version``), asked once.

        ``None`` for a chat model that is not an OpenAI-compatible client. Raises
        :class:`~vibe_jet_tagging.errors.ServerError` when the server cannot be reached.
        """
        if self._server_info is None and isinstance(self.model, BaseChatOpenAI):
            with self._server_lock:
                if self._server_info is None:
                    key = self.model.openai_api_key
                    self._server_info = fetch_pool_info(
                        self.base_urls,
                        key.get_secret_value() if key is not None else None,
                        self.model_name,
                    )
        return self._server_info

    def assume_server(self, info: ServerInfo) -> None:
        """Take ``info`` as what the server is, without asking it (offline batch files).

        The cache keys and the requests depend on it, so only before the tagger made either.
        """
        with self._server_lock:
            if self._settings_key_value is not None or self._call_options is not None:
                raise ValueError("assume_server: this tagger has made keys or requests already")
            self._server_info = info

    def _options(self) -> dict[str, Any]:
        """Keyword arguments of every model call (built once, after the server is known)."""
        if self._call_options is not None:
            return self._call_options
        options: dict[str, Any] = {}
        if self.structured_output:
            if isinstance(self.model, BaseChatOpenAI):
                # In the body as is: ChatOpenAI would send a response_format through the SDK's
                # slower `parse` path, which adds ~1 ms of CPU per request and gains nothing
                # here (the answer is validated by instructor below).
                info = self.server_info()
                if info is not None and info.structured_outputs:
                    # vLLM's grammar for a JSON schema allows any whitespace, which a small
                    # model can fill to max_tokens; a compact-JSON regex cannot run away.
                    # Not beside response_format: vLLM would count two constraints.
                    constraint = {"structured_outputs": {"regex": COMPACT_LABEL_REGEX}}
                else:
                    constraint = {"response_format": label_response_format()}
                options["extra_body"] = {**(self.model.extra_body or {}), **constraint}
            else:
                options["response_format"] = label_response_format()
        if self.logprobs:
            options.update(logprobs=True, top_logprobs=5)
        self._call_options = options
        return options

    @property
    def _served(self) -> bool:
        """Whether the model is an OpenAI-compatible client of a server."""
        return isinstance(self.model, BaseChatOpenAI)

    async def _ask(
        self, messages: list[BaseMessage], config: RunnableConfig
    ) -> tuple[AIMessage, float]:
        """One model call; a 200 whose body is no chat completion is retried like a 5xx.

        The OpenAI SDK retries 5xx, 429 and connection errors itself, but takes any 200 as an
        answer; a body that is not a chat completion (not JSON, no ``choices``...) then fails
        in the conversion. It is asked again up to the model's ``max_retries`` with the SDK's
        backoff, then raises :class:`MalformedResponseError` (an error of kind ``server``).
        """
        options = self._call_options
        if options is None:
            options = await asyncio.to_thread(self._options)
        retries = (getattr(self.model, "max_retries", None) or 0) if self._served else 0
        start = time.perf_counter()
        for attempt in range(retries + 1):
            try:
                message = await self.model.ainvoke(messages, config, **options)
                break
            except _MALFORMED as exc:
                if not self._served:
                    raise
                if attempt == retries:
                    said = " ".join(str(exc).split())[:200]
                    raise MalformedResponseError(
                        f"the model server at {self.base_url} answered HTTP 200 with a body "
                        f"that is not a chat completion, {attempt + 1} times in a row "
                        f"({type(exc).__name__}: {said})",
                        url=self.base_url,
                    ) from exc
                logger.info("malformed answer from %s, asking again: %s", self.base_url, exc)
                await asyncio.sleep(_backoff(attempt))
        return message, time.perf_counter() - start
