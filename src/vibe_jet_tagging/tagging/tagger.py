"""``JetTagger``: a LangChain Runnable that tags jets as quark or gluon with a reasoning LLM.

One jet travels: cache lookup by key -> ``prompt`` (the template's LangChain prompt classes) ->
``ChatVLLM`` -> ``parser`` (:class:`JetLabelParser`: instructor validation of JSON, the explicit
decision of prose; one re-ask when it finds no label) -> :class:`TagResult` -> cache store.

The async path is the only implementation: ``invoke`` and ``batch`` run it on a background
event loop (see ``_sync``), so they also work inside Jupyter's running loop.

This module holds the Runnable and one jet's path; the rest of ``JetTagger`` lives beside it:
the batch path (:mod:`.tagger_batch`), the settings and cache keys (:mod:`.tagger_identity`),
the server and the model calls (:mod:`.tagger_requests`), the errors' mapping
(:mod:`.tagger_errors`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import openai
from langchain_core.callbacks import AsyncCallbackManagerForChainRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_core.runnables.config import (
    ensure_config,
    get_async_callback_manager_for_config,
    patch_config,
)

from .._sync import run_sync
from ..config import SelectorName, api_settings
from ..errors import ConfigError, ServerError
from ..jets.formats import JetFormat
from ..jets.jet import Jet
from ..servers.info import ServerInfo
from ..servers.pool import SERVER_HEADER
from ..store.cache import ResultCache
from .batching import Pending, TaggerBatch, _served_from_cache
from .client import answered_fields
from .failures import MalformedResponseError, server_error, server_info_error
from .model import ChatVLLM, Effort, reasoning_of
from .parser import JetLabelParser
from .parsing import LabelParseError, ParsedLabel, reask_messages
from .prompt import JetPromptTemplate
from .results import TagError, TaggingError, TagResult, TransientTaggingError, Usage
from .templates import Example, JetPrompt, PromptTemplateSpec

__all__ = ["JetInput", "JetTagger"]

logger = logging.getLogger(__name__)

JetInput = Jet | np.ndarray | Mapping[str, Any]
"""A :class:`Jet`, an ``(n, 4)`` or zero-padded ``(M, 4)`` array, or a mapping with ``jet``."""

_ARGUMENT_NAMES = {"effort": "reasoning_effort", "concurrency": "max_concurrency"}
"""Settings given to ``JetTagger`` under another name (for error messages)."""


class JetTagger(TaggerBatch, Runnable[JetInput, TagResult]):
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
            (:class:`~vibe_jet_tagging.servers.pool.EndpointPool`).
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
        self._stored: OrderedDict[str, None] = OrderedDict()

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

    def get_name(self, suffix: str | None = None, *, name: str | None = None) -> str:
        return super().get_name(suffix, name=name or "JetTagger")

    # -- one jet ---------------------------------------------------------------------------------

    def _lookup(self, key: str, jet: Jet) -> TagResult | None:
        if self.cache is None or self.refresh:
            return None
        hit = self.cache.get(key)
        return None if hit is None else _served_from_cache(hit, jet)

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

    async def _atag(
        self,
        jet: Jet,
        key: str,
        examples: list[Example],
        config: RunnableConfig,
        run_manager: AsyncCallbackManagerForChainRun | None,
    ) -> TagResult:
        """Prompt, model call(s) and parsing for one jet (no cache).

        The prompt and parse steps run as child runs only when a callback handler watches
        (tracing, ``astream_events``); otherwise they are plain calls, which saves the
        Runnable machinery's overhead on every jet. No ``run_manager``: nothing watches.
        """
        traced = False
        if run_manager is not None:
            child = run_manager.get_child()
            traced = bool(child.handlers)
            config = patch_config(config, callbacks=child)
        if traced:
            messages = await self._prompt.ainvoke(jet, config)
        else:
            messages = self.prompt.messages(jet, examples)
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
            error = server_error(exc, self.base_url)
        except MalformedResponseError as exc:
            error = TagError(kind="server", message=str(exc), status=200)
        except ServerError as exc:  # the server's /models could not be read
            error = server_info_error(exc)
        else:
            return self._result(
                jet,
                key,
                **answered_fields(outcome, message, usage),
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

    async def _arun(
        self,
        jet: Jet,
        run_manager: AsyncCallbackManagerForChainRun | None,
        config: RunnableConfig,
        pending: Pending | None,
    ) -> TagResult:
        """Cache lookup, then one request per key in flight (duplicates wait for it).

        ``pending``: the jet's key and examples from a batch's look-up, which found nothing
        (only a key stored since then is looked up again).
        """
        if pending is None:
            try:
                if self._settings_key_value is None:  # asks the server once: not on the loop
                    await asyncio.to_thread(lambda: self.settings_key)
                examples = self.prompt.examples_for(jet)
                key = self.key_for(jet, examples)
            except ServerError as exc:  # the server's /models could not be read
                error = server_info_error(exc)
                raise TaggingError(self._result(jet, "", error=error)) from None
            looked_up = False
        else:
            key, examples = pending.key, pending.examples
            looked_up = key not in self._stored
        hit = None if looked_up else self._lookup(key, jet)
        if hit is not None:
            return hit
        return await self._deduplicated(
            key, jet, lambda: self._atag(jet, key, examples, config, run_manager)
        )

    async def _run(self, jet: Jet, config: RunnableConfig, pending: Pending | None) -> TagResult:
        """One jet as a run of its own: callbacks and tracing see it start and end."""
        manager = get_async_callback_manager_for_config(config)
        run_manager = await manager.on_chain_start(
            None,
            jet,
            name=config.get("run_name") or self.get_name(),
            run_id=config.pop("run_id", None),
        )
        try:
            result = await self._arun(jet, run_manager, config, pending)
        except BaseException as exc:
            await run_manager.on_chain_error(exc)
            raise
        await run_manager.on_chain_end(result)
        return result

    async def ainvoke(
        self, input: JetInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> TagResult:
        """Tag one jet."""
        jet = Jet.coerce(input)  # callbacks and tracing see a Jet, whatever the input was
        return await self._run(jet, ensure_config(config), None)

    def invoke(
        self, input: JetInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> TagResult:
        """Tag one jet (sync; runs the async path on a background loop)."""
        return run_sync(self.ainvoke(input, config, **kwargs))
