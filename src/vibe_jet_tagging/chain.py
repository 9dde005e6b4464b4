"""``JetTagger``: a LangChain Runnable that tags jets as quark or gluon with a reasoning LLM.

One jet travels: cache lookup by key -> ``prompt`` (the template's LangChain prompt classes) ->
``ChatVLLM`` -> ``parser`` (:class:`JetLabelParser`: instructor validation of JSON, the explicit
decision of prose; one re-ask when it finds no label) -> :class:`TagResult` -> cache store.

The async path is the only implementation: ``invoke`` and ``batch`` run it on a background
event loop (see ``_sync``), so they also work inside Jupyter's running loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import random
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_core.runnables.config import (
    ensure_config,
    get_async_callback_manager_for_config,
    get_config_list,
    patch_config,
)
from langchain_openai.chat_models.base import BaseChatOpenAI

from ._sync import iterate_sync, run_sync
from .cache import ResultCache
from .config import SelectorName, api_settings
from .endpoints import SERVER_HEADER
from .errors import ConfigError, ModelNotServedError, ServerError, ServersDisagreeError
from .formats import JetFormat
from .jets import Jet
from .model import DEFAULT_BASE_URL, ChatVLLM, Effort, reasoning_of
from .output_parser import JetLabelParser
from .parsing import (
    COMPACT_LABEL_REGEX,
    PARSER_VERSION,
    SCHEMA_VERSION,
    LabelParseError,
    ParsedLabel,
    label_response_format,
    reask_messages,
)
from .prompt_template import JetPromptTemplate
from .prompts import JetPrompt, PromptTemplateSpec
from .results import TagError, TaggingError, TagResult, TransientTaggingError, Usage
from .server_info import ServerInfo, fetch_pool_info

if TYPE_CHECKING:
    from .batchfiles import Reask
    from .batchread import BatchOutput

__all__ = ["JetInput", "JetTagger"]

logger = logging.getLogger(__name__)

JetInput = Jet | np.ndarray | Mapping[str, Any]
"""A :class:`Jet`, an ``(n, 4)`` or zero-padded ``(M, 4)`` array, or a mapping with ``jet``."""

_ARGUMENT_NAMES = {"effort": "reasoning_effort", "concurrency": "max_concurrency"}
"""Settings given to ``JetTagger`` under another name (for error messages)."""
_PREPARE_CHUNK = 512  # jets coerced, keyed and looked up at once by abatch_as_completed


def _logprob_quark_probability(message: BaseMessage) -> float | None:
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


def _server_error(exc: openai.APIError, url: str | None) -> TagError:
    """The :class:`TagError` of an error of the model server.

    Names the server the failed request went to (with several servers, not always ``url``).
    """
    request = getattr(exc, "request", None)
    if request is not None:
        url = str(request.url).removesuffix("/chat/completions")
    where = f" at {url}" if url else ""
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


class MalformedResponseError(ServerError):
    """The server answered HTTP 200 with a body that is no chat completion, retries included."""


# What converting a 200 body that is no chat completion raises (the SDK or langchain-openai):
# ValueError (not JSON, a str body), TypeError (choices null or missing), IndexError (no
# choices), KeyError/AttributeError (fields missing).
_MALFORMED = (ValueError, TypeError, LookupError, AttributeError)


def _backoff(attempt: int) -> float:
    """Seconds before retry ``attempt + 1``: the OpenAI SDK's schedule (0.5 s doubling to 8 s,
    up to a quarter less at random)."""
    return min(0.5 * 2**attempt, 8.0) * (1 - 0.25 * random.random())


def _server_info_error(exc: ServerError) -> TagError:
    """The :class:`TagError` of a failed look at the server (``/v1/models``, ``/version``).

    A model the server does not serve is permanent (vLLM answers such requests with 404), so
    are servers that serve different weights; a server that cannot be read may come back.
    """
    if isinstance(exc, ModelNotServedError):
        return TagError(kind="server", message=str(exc), status=404)
    if isinstance(exc, ServersDisagreeError):
        return TagError(kind="server", message=str(exc), status=409)
    return TagError(kind="connection", message=str(exc))


def _model_settings(model: BaseChatModel) -> dict[str, Any]:
    """What about the model shapes its answers (not where it is served)."""
    if hasattr(model, "model_name"):
        fields = (
            "model_name",
            "reasoning_effort",
            "temperature",
            "seed",
            "max_tokens",
            "top_p",
            "model_kwargs",
            "extra_body",
            "stop",
        )
        return {f: getattr(model, f, None) for f in fields}
    return {"llm_string": model._get_llm_string()}


class JetTagger(Runnable[JetInput, TagResult]):
    """Tag jets as quark- or gluon-initiated with a reasoning LLM on a vLLM server.

    Every argument left out (``None``) comes from the configuration, as ``vjt`` reads it:
    ``VJT_*`` variables (``VJT_BASE_URL`` or ``OPENAI_BASE_URL``, ``VJT_MODEL``, ``VJT_EFFORT``,
    ``VJT_MAX_TOKENS``, ``VJT_TIMEOUT``, ``VJT_MAX_RETRIES``, ``VJT_TEMPERATURE``, ``VJT_SEED``,
    ``VJT_TEMPLATE``, ``VJT_SHOTS``, ``VJT_SELECTOR``, ``VJT_CONCURRENCY``,
    ``VJT_STRUCTURED_OUTPUT``, ``VJT_CACHE_DIR``, ``VJT_API_KEY`` or ``OPENAI_API_KEY``), then
    the config file (see :mod:`vibe_jet_tagging.config`), then the defaults below. An invalid
    value raises :class:`~vibe_jet_tagging.errors.ConfigError` (a ``ValueError``) in one line.

    Args:
        model: a model name served by vLLM (default ``openai/gpt-oss-120b``), or any LangChain
            chat model (e.g. a configured :class:`ChatVLLM`).
        base_url: the server's OpenAI-compatible URL (default ``http://localhost:8000/v1``),
            or a list of servers of the same model: each request goes to the one with the
            fewest in flight, and one that fails is set aside for a while
            (:class:`~vibe_jet_tagging.endpoints.EndpointPool`).
        reasoning_effort: ``"low"``, ``"medium"`` (default) or ``"high"``; ``effort`` is an
            alias kept for older code.
        temperature, seed: sampling settings sent to the server (``seed`` also draws the
            few-shot examples).
        max_tokens, timeout, max_retries, api_key: request settings (see :class:`ChatVLLM`).
        template: a template name from ``prompts/`` (default ``few_shot``), a path, a
            :class:`PromptTemplateSpec`, or a :class:`JetPromptTemplate`.
        examples: labelled jets for few-shot examples (default: the bundled sample).
        format, shots, selector: override the template's jet format, number of examples and
            example selector (``"balanced"`` or ``"nearest"``).
        structured_output: send the :class:`JetLabel` JSON schema as ``response_format``
            (default on; turn off for servers without structured outputs).
        reask: re-ask once when the answer gives no label (JSON failing the schema, a label
            contradicting the probability, prose without an explicit decision).
        logprobs: request token logprobs and report a logprob-based quark probability.
        cache: a :class:`ResultCache`, a folder, ``True`` for the default folder
            (``<cache_dir>/results``), or ``None``/``False`` for none. The key leaves out the
            server's URL (the same model anywhere gives the same answer) but holds what the
            server is (see :attr:`settings_key`), so the emulated server's answers, or another
            model's, are never served for this one.
        refresh: ignore cached results (and overwrite them).
        max_concurrency: requests in flight at once in ``abatch`` when the config sets none
            (default 64).

    Raises :class:`TaggingError` (with ``.result`` holding the error, raw answer and usage)
    when a jet gets no label; ``abatch(..., return_exceptions=True)`` returns them in place.
    ``tagger.prompt_template`` is the :class:`JetPromptTemplate` it formats with and
    ``tagger.parser`` the :class:`JetLabelParser` that reads the answers (both usable in any
    chain, with any chat model), ``tagger.model`` the chat model.
    """

    def __init__(
        self,
        model: str | BaseChatModel | None = None,
        *,
        base_url: str | Sequence[str] | None = None,
        reasoning_effort: Effort | None = None,
        effort: Effort | None = None,
        temperature: float | None = None,
        seed: int | None = None,
        max_tokens: int | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        api_key: str | None = None,
        template: str | Path | PromptTemplateSpec | JetPromptTemplate | None = None,
        examples: Any = None,
        format: JetFormat | None = None,
        shots: int | None = None,
        selector: SelectorName | None = None,
        structured_output: bool | None = None,
        reask: bool = True,
        logprobs: bool = False,
        cache: ResultCache | str | Path | bool | None = True,
        refresh: bool = False,
        max_concurrency: int | None = None,
    ) -> None:
        if effort is not None and reasoning_effort is not None and effort != reasoning_effort:
            raise ConfigError(
                f"reasoning_effort={reasoning_effort!r} and effort={effort!r}: effort is an "
                "alias of reasoning_effort; give one"
            )
        given_model = isinstance(model, BaseChatModel)
        request = {
            "base_url": base_url,
            "temperature": temperature,
            "max_tokens": max_tokens,
            "timeout": timeout,
            "max_retries": max_retries,
            "api_key": api_key,
        }
        if given_model:
            ignored = [name for name, value in request.items() if value is not None]
            if reasoning_effort is not None or effort is not None:
                ignored.append("reasoning_effort")
            if ignored:
                raise ConfigError(
                    f"{', '.join(ignored)}: set these on the chat model passed as `model`"
                )
        if isinstance(template, JetPromptTemplate):
            overrides = {"examples": examples, "format": format, "shots": shots}
            clash = [k for k, v in {**overrides, "selector": selector}.items() if v is not None]
            if clash:
                raise ConfigError(
                    f"{', '.join(clash)}: set these on the JetPromptTemplate passed as template"
                )
        settings = api_settings(
            _ARGUMENT_NAMES,
            model=None if given_model else model,
            effort=reasoning_effort or effort,
            seed=seed,
            template=template if isinstance(template, str) else None,
            shots=shots,
            selector=selector,
            structured_output=structured_output,
            concurrency=max_concurrency,
            **request,
        )
        if given_model:
            self.model: BaseChatModel = model  # type: ignore[assignment]
        else:
            urls = settings.base_urls
            self.model = ChatVLLM(
                model=settings.model,
                base_url=urls[0] if len(urls) == 1 else urls,
                api_key=settings.api_key,
                reasoning_effort=settings.effort,
                temperature=settings.temperature,
                seed=settings.seed,
                max_completion_tokens=settings.max_tokens,
                timeout=settings.timeout,
                max_retries=settings.max_retries,
            )
        if isinstance(template, JetPromptTemplate):
            self.prompt_template = template
        else:
            self.prompt_template = JetPromptTemplate(
                settings.template if template is None or isinstance(template, str) else template,
                examples=examples,
                format=format,
                shots=settings.shots,
                selector=settings.selector,
                seed=settings.seed or 0,
            )
        self.prompt: JetPrompt = self.prompt_template.jet_prompt
        """The formatting under :attr:`prompt_template` (template, format, examples)."""
        self.structured_output = settings.structured_output
        self.reask = reask
        self.logprobs = logprobs
        self.refresh = refresh
        self.max_concurrency = settings.concurrency
        if cache is True:
            folder = settings.cache_dir
            cache = ResultCache(
                folder / "results" if folder else None, shared=settings.shared_cache
            )
        elif isinstance(cache, str | Path):
            cache = ResultCache(cache, shared=settings.shared_cache)
        self.cache: ResultCache | None = cache if isinstance(cache, ResultCache) else None

        self._call_options: dict[str, Any] | None = None
        self._server_info: ServerInfo | None = None
        self._server_lock = threading.Lock()
        self._prompt = RunnableLambda(self.prompt_template.messages, name="prompt")
        self.parser = JetLabelParser(name="parse_label")
        self._settings_key_value: str | None = None
        self._key_lock = threading.Lock()
        self._inflight: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, asyncio.Future[TagResult]]
        ] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        cache = "None" if self.cache is None else repr(str(self.cache.directory))
        pool = getattr(self.model, "endpoint_pool", None)
        urls = self.base_url if pool is None else pool.base_urls
        return (
            f"JetTagger(model={self.model_name!r}, base_url={urls!r}, "
            f"reasoning_effort={self.reasoning_effort!r}, template={self.prompt.template.name!r}, "
            f"shots={self.prompt.shots}, cache={cache})"
        )

    def with_retry(
        self,
        *,
        retry_if_exception_type: tuple[type[BaseException], ...] = (TransientTaggingError,),
        wait_exponential_jitter: bool = True,
        exponential_jitter_params: Any = None,
        stop_after_attempt: int = 3,
    ) -> Runnable[JetInput, TagResult]:
        """Retry jets whose error can pass: connection errors, timeouts, 429 and 5xx.

        Unlike LangChain's default (any exception), a permanent error (an unknown model, a
        request the server refuses, an answer without a label) fails at once. Pass
        ``retry_if_exception_type=(TaggingError,)`` to retry every failed jet.
        """
        return super().with_retry(
            retry_if_exception_type=retry_if_exception_type,
            wait_exponential_jitter=wait_exponential_jitter,
            exponential_jitter_params=exponential_jitter_params,
            stop_after_attempt=stop_after_attempt,
        )

    # -- identity --------------------------------------------------------------------------------

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

    @property
    def base_urls(self) -> list[str]:
        """Every server the model spreads its requests over (one unless given a list)."""
        pool = getattr(self.model, "endpoint_pool", None)
        return pool.base_urls if pool is not None else [self.base_url or DEFAULT_BASE_URL]

    def endpoint_stats(self) -> list[dict[str, Any]]:
        """Requests sent, answered and failed per server (several servers: see ``base_url``)."""
        pool = getattr(self.model, "endpoint_pool", None)
        return pool.stats() if pool is not None else []

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

    def assume_server(self, info: ServerInfo) -> None:
        """Take ``info`` as what the server is, without asking it (offline batch files).

        The cache keys and the requests depend on it, so only before the tagger made either.
        """
        with self._server_lock:
            if self._settings_key_value is not None or self._call_options is not None:
                raise ValueError("assume_server: this tagger has made keys or requests already")
            self._server_info = info

    def _server_identity(self) -> dict[str, Any] | None:
        """What answers: emulated or not, the served weights, the output constraint sent.

        ``None`` for a chat model that is not an OpenAI-compatible client (no server to ask).
        Raises :class:`~vibe_jet_tagging.errors.ServerError` when the server cannot be read.
        """
        info = self.server_info()
        if info is None:
            return None
        card = info.card(self.model_name)
        body = self._options().get("extra_body") or {}
        constraint = next((c for c in ("structured_outputs", "response_format") if c in body), None)
        return {
            "emulated": info.emulated,
            "root": None if card is None else card.root,
            "constraint": constraint,
        }

    def _settings_key(self) -> str:
        settings = {
            "prompt": self.prompt.fingerprint,
            "model": _model_settings(self.model),
            "structured_output": self.structured_output,
            "reask": self.reask,
            "logprobs": self.logprobs,
            "schema": SCHEMA_VERSION,
            "parser": PARSER_VERSION,
        }
        server = self._server_identity()
        if server is not None:
            settings["server"] = server
        blob = json.dumps(settings, sort_keys=True, default=str).encode()
        return hashlib.blake2b(blob, digest_size=12).hexdigest()

    @property
    def settings_key(self) -> str:
        """The part of every cache key that the tagger's settings make, computed once.

        It holds the prompt, the model settings and, for a model server, what the server is
        (:meth:`server_info`, asked once): whether it is the emulated one, the weights it
        serves (``root``) and the output constraint the requests carry. So an answer cached
        from one server is never served for another model or the emulator, whichever API
        wrote it. Raises :class:`~vibe_jet_tagging.errors.ServerError` (nothing kept) while
        the server cannot be read.
        """
        if self._settings_key_value is None:
            with self._key_lock:
                if self._settings_key_value is None:
                    self._settings_key_value = self._settings_key()
        return self._settings_key_value

    def key_for(self, jet: Jet) -> str:
        """The cache key of ``jet`` under this tagger's settings (its examples included)."""
        examples = ",".join(e.jet.key for e in self.prompt.examples_for(jet))
        blob = f"{self.settings_key}|{jet.key}|{examples}".encode()
        return hashlib.blake2b(blob, digest_size=16).hexdigest()

    def get_name(self, suffix: str | None = None, *, name: str | None = None) -> str:
        return super().get_name(suffix, name=name or "JetTagger")

    # -- one jet ---------------------------------------------------------------------------------

    def _lookup(self, key: str, jet: Jet) -> TagResult | None:
        if self.cache is None or self.refresh:
            return None
        hit = self.cache.get(key)
        return None if hit is None else hit.model_copy(update={"cached": True, "index": jet.index})

    def _result(self, jet: Jet, key: str, **fields: Any) -> TagResult:
        return TagResult(
            index=jet.index,
            jet_key=jet.key,
            key=key,
            model=self.model_name,
            effort=self.effort,
            template=self.prompt.template.name,
            settings=self._settings_key_value,  # None while the server could not be read
            **fields,
        )

    async def _read(self, message: AIMessage, config: RunnableConfig, traced: bool) -> ParsedLabel:
        """The label ``message`` states, read by :attr:`parser` (raises LabelParseError).

        A child run only when a callback handler watches; otherwise a plain call.
        """
        if traced:
            return await self.parser.ainvoke(message, config)
        return self.parser.read_message(message)

    async def _read_reask(
        self, message: AIMessage, config: RunnableConfig, traced: bool
    ) -> ParsedLabel:
        """The label the answer to a re-ask states; only that answer counts, never the first."""
        parsed = await self._read(message, config, traced)
        if parsed.step == "schema":
            parsed = parsed.model_copy(update={"step": "reask"})
        return parsed

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

    @property
    def _served(self) -> bool:
        """Whether the model is an OpenAI-compatible client of a server."""
        return isinstance(self.model, BaseChatOpenAI)

    async def _atag(
        self, jet: Jet, key: str, config: RunnableConfig, run_manager: Any
    ) -> TagResult:
        """Prompt, model call(s) and parsing for one jet (no cache).

        The prompt and parse steps run as child runs only when a callback handler watches
        (tracing, ``astream_events``); otherwise they are plain calls, which saves the
        Runnable machinery's overhead on every jet.
        """
        child = run_manager.get_child()
        traced = bool(child.handlers)
        config = patch_config(config, callbacks=child)
        messages = await self._prompt.ainvoke(jet, config) if traced else self.prompt.messages(jet)
        usage, latency = Usage(), 0.0
        message: AIMessage | None = None
        try:
            message, latency = await self._ask(messages, config)
            usage = Usage.from_message(message)
            try:
                outcome = await self._read(message, config, traced)
            except LabelParseError as exc:
                if not self.reask or exc.reask is None:
                    raise
                retry = reask_messages(messages, message.text, exc.reask)
                message, seconds = await self._ask(retry, config)
                latency += seconds
                usage = usage + Usage.from_message(message)
                outcome = await self._read_reask(message, config, traced)
        except LabelParseError as exc:
            error = TagError(kind=exc.kind, message=str(exc), raw_answer=exc.raw)
        except openai.APIError as exc:
            error = _server_error(exc, self.base_url)
        except MalformedResponseError as exc:
            error = TagError(kind="server", message=str(exc), status=200)
        except ServerError as exc:  # the server's /models could not be read
            error = _server_info_error(exc)
        else:
            return self._result(
                jet,
                key,
                label=outcome.label,
                quark_probability=outcome.quark_probability,
                logprob_quark_probability=_logprob_quark_probability(message),
                parsed_by=outcome.step,
                answer=message.text,
                reasoning=reasoning_of(message),
                finish_reason=message.response_metadata.get("finish_reason"),
                usage=usage,
                latency=latency,
                server=(message.response_metadata.get("headers") or {}).get(SERVER_HEADER)
                or self.base_url,
                cached=bool(message.response_metadata.get("cache_hit")),
            )
        failed = self._result(
            jet,
            key,
            answer=None if message is None else message.text,
            reasoning=None if message is None else reasoning_of(message),
            finish_reason=None
            if message is None
            else message.response_metadata.get("finish_reason"),
            usage=usage,
            latency=latency,
            error=error,
        )
        raise TaggingError(failed)

    async def _arun(self, jet: Jet, run_manager: Any, config: RunnableConfig) -> TagResult:
        """Cache lookup, then one request per key in flight (duplicates wait for it)."""
        try:
            if self._settings_key_value is None:  # asks the server once: not on the loop
                await asyncio.to_thread(lambda: self.settings_key)
            key = self.key_for(jet)
        except ServerError as exc:  # the server's /models could not be read
            error = _server_info_error(exc)
            raise TaggingError(self._result(jet, "", error=error)) from None
        hit = self._lookup(key, jet)
        if hit is not None:
            return hit
        inflight = self._inflight.setdefault(asyncio.get_running_loop(), {})
        pending = inflight.get(key)
        if pending is not None:
            try:
                result = await asyncio.shield(pending)
            except TaggingError as exc:  # the copy cost nothing: the original holds the usage
                copy = {"index": jet.index, "usage": Usage(), "latency": 0.0}
                raise TaggingError(exc.result.model_copy(update=copy)) from None
            return result.model_copy(update={"cached": True, "index": jet.index})
        future: asyncio.Future[TagResult] = asyncio.get_running_loop().create_future()
        inflight[key] = future
        try:
            result = await self._atag(jet, key, config, run_manager)
        except BaseException as exc:
            if isinstance(exc, Exception):
                future.set_exception(exc)
                future.exception()  # retrieved: duplicates may not exist
            else:
                future.cancel()
            raise
        else:
            if self.cache is not None and not result.cached:
                self.cache.put(result)
            future.set_result(result)
            return result
        finally:
            inflight.pop(key, None)

    async def ainvoke(
        self, input: JetInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> TagResult:
        """Tag one jet."""
        jet = Jet.coerce(input)  # callbacks and tracing see a Jet, whatever the input was
        config = ensure_config(config)
        manager = get_async_callback_manager_for_config(config)
        run_manager = await manager.on_chain_start(
            None,
            jet,
            name=config.get("run_name") or self.get_name(),
            run_id=config.pop("run_id", None),
        )
        try:
            result = await self._arun(jet, run_manager, config)
        except BaseException as exc:
            await run_manager.on_chain_error(exc)
            raise
        await run_manager.on_chain_end(result)
        return result

    def invoke(
        self, input: JetInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> TagResult:
        """Tag one jet (sync; runs the async path on a background loop)."""
        return run_sync(self.ainvoke(input, config, **kwargs))

    # -- many jets -------------------------------------------------------------------------------

    async def abatch_as_completed(
        self,
        inputs: Sequence[JetInput],
        config: RunnableConfig | Sequence[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> AsyncIterator[tuple[int, TagResult | Exception]]:
        """Yield ``(position, result)`` as jets finish: cache hits first, then the rest.

        Jets are prepared in chunks (coerced, keyed, looked up in the cache together); misses
        run with at most ``max_concurrency`` in flight (the config's, else the tagger's), so
        memory stays bounded for any number of jets. Identical jets cause one request.
        """
        n = len(inputs)
        if n == 0:
            return
        configs = get_config_list(config, n)
        limit = configs[0].get("max_concurrency") or self.max_concurrency
        tasks: set[asyncio.Task[tuple[int, TagResult | Exception]]] = set()

        async def run(i: int, item: Any) -> tuple[int, TagResult | Exception]:
            try:
                return i, await self.ainvoke(item, configs[i])
            except Exception as exc:
                return i, exc

        async def drain(wait_for_all: bool) -> AsyncIterator[tuple[int, TagResult | Exception]]:
            while tasks and (wait_for_all or len(tasks) >= limit):
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    tasks.discard(task)
                    yield task.result()

        def check(item: tuple[int, TagResult | Exception]) -> tuple[int, TagResult | Exception]:
            if isinstance(item[1], Exception) and not return_exceptions:
                raise item[1]
            return item

        try:
            for start in range(0, n, _PREPARE_CHUNK):
                prepared = await asyncio.to_thread(self._prepare, inputs, start)
                for i, item in prepared:
                    if isinstance(item, TagResult | Exception):
                        yield check((i, item))
                        continue
                    async for finished in drain(wait_for_all=False):
                        yield check(finished)
                    tasks.add(asyncio.create_task(run(i, item)))
            async for finished in drain(wait_for_all=True):
                yield check(finished)
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    def _prepare(self, inputs: Sequence[JetInput], start: int) -> list[tuple[int, Any]]:
        """Coerce a chunk of inputs and look them up together: hits, errors, or jets to run."""
        out: list[tuple[int, Any]] = []
        keys: dict[int, str] = {}
        try:
            self.settings_key  # noqa: B018 (asks the server once)
            keyed = True
        except ServerError:  # each jet then fails with this error in _arun
            keyed = False
        for i in range(start, min(start + _PREPARE_CHUNK, len(inputs))):
            try:
                jet = Jet.coerce(inputs[i])
            except ValueError as exc:
                out.append((i, exc))
                continue
            if keyed:
                keys[i] = self.key_for(jet)
            out.append((i, jet))
        if keys and self.cache is not None and not self.refresh:
            hits = self.cache.get_many(keys.values())
            out = [
                (i, hits[keys[i]].model_copy(update={"cached": True, "index": item.index}))
                if i in keys and keys[i] in hits
                else (i, item)
                for i, item in out
            ]
        return out

    async def abatch(
        self,
        inputs: Sequence[JetInput],
        config: RunnableConfig | Sequence[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[TagResult | Any]:
        """Tag many jets; results in input order (see :meth:`abatch_as_completed`)."""
        results: list[Any] = [None] * len(inputs)
        async for i, result in self.abatch_as_completed(
            inputs, config, return_exceptions=return_exceptions
        ):
            results[i] = result
        return results

    def batch(
        self,
        inputs: Sequence[JetInput],
        config: RunnableConfig | Sequence[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[TagResult | Any]:
        """Tag many jets (sync; the async path on a background loop)."""
        return run_sync(self.abatch(inputs, config, return_exceptions=return_exceptions))

    def batch_as_completed(
        self,
        inputs: Sequence[JetInput],
        config: RunnableConfig | Sequence[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> Iterator[tuple[int, TagResult | Exception]]:
        """Tag many jets (sync), yielding ``(position, result)`` as they finish."""
        yield from iterate_sync(
            self.abatch_as_completed(inputs, config, return_exceptions=return_exceptions)
        )

    # -- offline batch files (see batchfiles) ----------------------------------------------------

    def batch_requests(
        self, jets: Iterable[JetInput], *, reasks: Iterable[Reask] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Request lines for ``vllm run-batch`` / the OpenAI Batch API, one per jet to ask.

        Each body is what this tagger sends its server over HTTP; ``custom_id`` is the cache
        key. Cached jets and repeated keys are left out. Offline, say first what will answer:
        ``tagger.assume_server(batchfiles.offline_server(...))``. With ``reasks`` (from
        :meth:`read_batch_output`), the re-ask lines of those jets.
        """
        from .batchfiles import batch_requests

        return batch_requests(self, jets, reasks=reasks)

    def read_batch_output(
        self, lines: Any, jets: Sequence[JetInput], *, cache: bool = True
    ) -> BatchOutput:
        """Results of ``jets`` from batch output lines (a file, files, or lines), parsed as
        this tagger parses answers; failed lines are errors, re-asks are listed, successes
        go to the cache. See :func:`~vibe_jet_tagging.batchfiles.read_batch_output`."""
        from .batchread import read_batch_output

        return read_batch_output(self, lines, jets, cache=cache)
