"""``JetTagger``: a LangChain Runnable that tags jets as quark or gluon with a reasoning LLM.

One jet travels: cache look-up (through the gate) -> ``prompt`` -> the model (one request per
key in flight) -> the gate reads the answer (one re-ask when it finds no label) and admits it
as a signed :class:`TagResult`, which it stores.

The tagger is a composition of small parts, each built from its options
(:mod:`.options`) and each with one job:

- :class:`~.client.RequestClient`: what the server is, the options of every call, one call;
- :class:`~.identity.KeyPolicy`: the settings key and each jet's cache key;
- :class:`~.gate.AnswerGate`: the one place an answer becomes a result or a cache entry;
- :class:`~.inflight.InFlight`: one request per key however often a batch repeats a jet;
- :mod:`.batching`: chunks looked up together, a bounded number in flight.

The async path is the only implementation: ``invoke`` and ``batch`` run it on a background
event loop (see :mod:`vibe_jet_tagging._sync`), so they also work inside Jupyter's loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.callbacks import AsyncCallbackManagerForChainRun
from langchain_core.messages import AIMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_core.runnables.config import (
    ensure_config,
    get_async_callback_manager_for_config,
    patch_config,
)
from langchain_core.runnables.retry import ExponentialJitterParams
from typing_extensions import Unpack

from .._imports import Deferred
from .._sync import iterate_sync, run_sync
from ..errors import ServerError
from ..jets.jet import Jet
from ..store.cache import ResultCache
from . import batching
from .batching import Pending
from .client import RequestClient
from .examples import Example
from .gate import AnswerGate, Asked, OversizedAnswer
from .identity import KeyPolicy
from .inflight import InFlight
from .options import TaggerOptions, resolve
from .prompt import JetPrompt, JetPromptTemplate
from .results import TagError, TaggingError, TagResult, TransientTaggingError, Usage

# What a tagger needs only once it asks a server or reads an answer (the openai SDK,
# langchain-openai, instructor: ~1 s of CPU to import) is imported then, so that importing
# the package and building a tagger stay light (see benchmarks/startup.py).
if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from ..scale.batchfiles import Reask
    from ..scale.batchread import BatchOutput
    from ..servers.info import ServerInfo
    from .parser import JetLabelParser
    from .parsing import ParsedLabel

__all__ = ["JetInput", "JetTagger"]

logger = logging.getLogger(__name__)

JetInput = Jet | np.ndarray | Mapping[str, Any]
"""A :class:`Jet`, an ``(n, 4)`` or zero-padded ``(M, 4)`` array, or a mapping with ``jet``."""


def _parser_factory(digit_labels: bool) -> Callable[[], JetLabelParser]:
    """What builds the tagger's parser (on first use: it imports the parser's stack)."""

    def build() -> JetLabelParser:
        from .parser import JetLabelParser

        return JetLabelParser(name="parse_label", digit_labels=digit_labels)

    return build


class JetTagger(Runnable[JetInput, TagResult]):
    """Tag jets as quark- or gluon-initiated with a reasoning LLM on a vLLM server.

    ``JetTagger(model, **options)``: ``model`` is a model name served by vLLM (default
    ``openai/gpt-oss-120b``) or any LangChain chat model (e.g. a configured
    :class:`ChatVLLM`); ``options`` are :class:`~.options.TaggerOptions` (``base_url``,
    ``reasoning_effort``, ``template``, ``cache``, ``max_concurrency``...). Every option left
    out comes from the configuration as ``vjt`` reads it (``VJT_*`` variables, then the config
    file, see :mod:`vibe_jet_tagging.config`), then the defaults. An invalid value raises
    :class:`~vibe_jet_tagging.errors.ConfigError` (a ``ValueError``) in one line.

    The cache key leaves out the server's URL (the same model anywhere gives the same answer)
    but holds what the server is (see :attr:`settings_key`), so the emulated server's answers,
    or another model's, are never served for this one; and a cached answer is served only
    when it verifies as this user's (see :mod:`vibe_jet_tagging.store.provenance`).

    Raises :class:`TaggingError` (with ``.result`` holding the error, raw answer and usage)
    when a jet gets no label; ``abatch(..., return_exceptions=True)`` returns them in place.
    ``tagger.prompt_template`` is the :class:`JetPromptTemplate` it formats with and
    ``tagger.parser`` the :class:`JetLabelParser` that reads the answers (both usable in any
    chain, with any chat model), ``tagger.model`` the chat model (the ``ChatVLLM`` a tagger
    makes itself is built on first use, with the answer parser: building a tagger imports
    neither langchain-openai nor the openai SDK; what they would refuse is checked at
    construction all the same); ``tagger.client``,
    ``tagger.keys`` and ``tagger.gate`` are its parts.
    """

    def __init__(
        self, model: str | BaseChatModel | None = None, **options: Unpack[TaggerOptions]
    ) -> None:
        parts = resolve(model, options)
        self.prompt_template: JetPromptTemplate = parts.prompt_template
        self.prompt: JetPrompt = parts.prompt_template.jet_prompt
        """The formatting under :attr:`prompt_template` (template, format, examples)."""
        self.structured_output = parts.structured_output
        self.reask = parts.reask
        self.logprobs = parts.logprobs
        self.max_concurrency = parts.max_concurrency
        self.client = RequestClient(
            parts.model, structured_output=parts.structured_output, logprobs=parts.logprobs
        )
        self.keys = KeyPolicy(
            self.prompt,
            self.client,
            structured_output=parts.structured_output,
            reask=parts.reask,
            logprobs=parts.logprobs,
        )
        self.gate = AnswerGate(
            keys=self.keys,
            client=self.client,
            # A template that asks for 1/0 gets its JSON labels read as digits.
            parser=Deferred(_parser_factory(self.prompt.template.labels == "digits")),
            template=self.prompt.template.name,
            cache=parts.cache,
            refresh=parts.refresh,
            reask=parts.reask,
            max_answer_bytes=parts.max_answer_bytes,
        )
        self._inflight = InFlight()
        self._prompt_step = RunnableLambda(self.prompt_template.messages, name="prompt")

    def __repr__(self) -> str:
        cache = "None" if self.cache is None else repr(str(self.cache.directory))
        urls = self.base_urls if len(self.base_urls) > 1 else self.base_url
        return (
            f"JetTagger(model={self.model_name!r}, base_url={urls!r}, "
            f"reasoning_effort={self.reasoning_effort!r}, template={self.prompt.template.name!r}, "
            f"shots={self.prompt.shots}, cache={cache})"
        )

    # -- what it is (read from its parts) -----------------------------------------------------

    @property
    def model(self) -> BaseChatModel:
        """The chat model: the one passed in, or the ``ChatVLLM`` the settings configure,
        built when first needed (the first request, the settings key, or this read)."""
        return self.client.model

    @property
    def cache(self) -> ResultCache | None:
        """The result cache (written only through :attr:`gate`)."""
        return self.gate.cache

    @property
    def parser(self) -> JetLabelParser:
        """The one parser of answers (the gate's): a :class:`JetLabelParser`."""
        return self.gate.parser

    @parser.setter
    def parser(self, value: JetLabelParser) -> None:
        self.gate.parser = value

    @property
    def refresh(self) -> bool:
        """Ignore cached results (and overwrite them)."""
        return self.gate.refresh

    @refresh.setter
    def refresh(self, value: bool) -> None:
        self.gate.refresh = value

    @property
    def model_name(self) -> str:
        """The served model's name."""
        return self.client.model_name

    @property
    def reasoning_effort(self) -> str | None:
        """The reasoning effort sent with each request."""
        return self.client.reasoning_effort

    @property
    def effort(self) -> str | None:
        """Alias of :attr:`reasoning_effort`."""
        return self.client.reasoning_effort

    @property
    def base_url(self) -> str | None:
        """The (first) server's URL, as it may be shown (no password)."""
        return self.client.base_url

    @property
    def base_urls(self) -> list[str]:
        """Every server the requests go to, as they may be shown."""
        return self.client.base_urls

    def endpoint_stats(self) -> list[dict[str, Any]]:
        """Requests sent, answered and failed per server (several servers only)."""
        return self.client.endpoint_stats()

    def server_info(self) -> ServerInfo | None:
        """What the server reports about itself (``/v1/models``, ``/version``), asked once."""
        return self.client.server_info()

    def assume_server(self, info: ServerInfo) -> None:
        """Take ``info`` as what the server is, without asking it (offline batch files)."""
        self.client.assume_server(info)

    @property
    def settings_key(self) -> str:
        """The part of every cache key the settings make (see :class:`~.identity.KeyPolicy`)."""
        return self.keys.settings_key

    def key_for(self, jet: Jet, examples: Sequence[Example] | None = None) -> str:
        """The cache key of ``jet`` under this tagger's settings (its examples included)."""
        return self.keys.key_for(jet, examples)

    # -- LangChain -----------------------------------------------------------------------------

    def with_retry(
        self,
        *,
        retry_if_exception_type: tuple[type[BaseException], ...]
        | Callable[[BaseException], bool] = (TransientTaggingError,),
        wait_exponential_jitter: bool = True,
        exponential_jitter_params: ExponentialJitterParams | None = None,
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

    # -- one jet -------------------------------------------------------------------------------

    async def _read(self, message: AIMessage, config: RunnableConfig, traced: bool) -> ParsedLabel:
        """The label ``message`` states: through the gate, as a child run when traced."""
        if traced:  # tracing sees the parser step; the gate's bound is checked first
            self.gate.check_size(message)
            return await self.parser.ainvoke(message, config)
        return self.gate.read(message)

    async def _tag(
        self,
        jet: Jet,
        key: str,
        examples: list[Example],
        config: RunnableConfig,
        run_manager: AsyncCallbackManagerForChainRun | None,
    ) -> TagResult:
        """Prompt, model call(s) and the gate for one jet (no cache look-up).

        The prompt and parse steps run as child runs only when a callback handler watches
        (tracing, ``astream_events``); otherwise they are plain calls.
        """
        traced = False
        if run_manager is not None:
            child = run_manager.get_child()
            traced = bool(child.handlers)
            config = patch_config(config, callbacks=child)
        if traced:
            messages = await self._prompt_step.ainvoke(jet, config)
        else:
            messages = self.prompt.messages(jet, examples)
        import openai

        from ..servers.transport import SERVER_HEADER
        from .failures import MalformedResponseError, server_error, server_info_error
        from .parsing import LabelParseError, reask_messages

        asked = Asked.of(jet, key)
        usage, latency = Usage(), 0.0
        message: AIMessage | None = None
        try:
            message, latency = await self.client.ask(messages, config, watched=traced)
            usage = Usage.from_message(message)
            try:
                parsed = await self._read(message, config, traced)
            except LabelParseError as exc:
                if not self.gate.wants_reask(exc):
                    raise
                retry = reask_messages(messages, message.text, exc.reask)  # type: ignore[arg-type]
                message, seconds = await self.client.ask(retry, config, watched=traced)
                latency += seconds
                usage = usage + Usage.from_message(message)
                parsed = self.gate.read_reask(message)
        except (LabelParseError, OversizedAnswer) as exc:
            error: TagError | LabelParseError = (
                exc.error if isinstance(exc, OversizedAnswer) else exc
            )
        except openai.APIError as exc:
            error = server_error(exc, self.client.base_url)
        except MalformedResponseError as exc:
            error = TagError(kind="server", message=str(exc), status=200)
        except ServerError as exc:  # the server's /models could not be read
            error = server_info_error(exc)
        else:
            headers = message.response_metadata.get("headers") or {}
            server = headers.get(SERVER_HEADER) or self.client.base_url
            return self.gate.admit(asked, parsed, message, usage, latency=latency, server=server)
        raise TaggingError(self.gate.failed(asked, error, message, usage, latency))

    async def _arun(
        self,
        jet: Jet,
        run_manager: AsyncCallbackManagerForChainRun | None,
        config: RunnableConfig,
        pending: Pending | None,
    ) -> TagResult:
        """Cache look-up, then one request per key in flight (duplicates wait for it).

        ``pending``: the jet's key and examples from a batch's look-up, which found nothing
        (only a key stored since then is looked up again).
        """
        if pending is None:
            try:
                if self.keys.known is None:  # asks the server once: not on the loop
                    await asyncio.to_thread(lambda: self.keys.settings_key)
                examples = self.prompt.examples_for(jet)
                key = self.keys.key_for(jet, examples)
            except ServerError as exc:  # the server's /models could not be read
                from .failures import server_info_error

                failed = self.gate.failed(
                    Asked(key="", jet_key=jet.key, index=jet.index), server_info_error(exc)
                )
                raise TaggingError(failed) from None
            looked_up = False
        else:
            key, examples = pending.key, pending.examples
            looked_up = not self.gate.stored_since(key)
        hit = None if looked_up else self.gate.lookup(key, jet)
        if hit is not None:
            return hit
        return await self._inflight.run(
            key, jet.index, lambda: self._tag(jet, key, examples, config, run_manager)
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

    # -- many jets -----------------------------------------------------------------------------

    async def abatch_as_completed(  # type: ignore[override]
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
        memory stays bounded for any number of jets. Identical jets cause one request. When
        no callback handler watches (none in the config, no tracing, no ``track_usage``), a
        jet is a plain call rather than a run of its own.
        """
        n = len(inputs)
        if n == 0:
            return
        config_for, watched = batching.batch_configs(config, n)
        limit = config_for(0).get("max_concurrency") or self.max_concurrency

        def prepare(start: int, stop: int) -> list[tuple[int, batching.Item]]:
            return batching.prepare(
                inputs, start, keys=self.keys, prompt=self.prompt, gate=self.gate, stop=stop
            )

        async def run(i: int, item: Jet | Pending) -> TagResult:
            if isinstance(item, Jet):  # not keyed: the server could not be read
                return await self._run(item, ensure_config(config_for(i)), None)
            if watched:
                return await self._run(item.jet, ensure_config(config_for(i)), item)
            return await self._arun(item.jet, None, config_for(i), item)

        async for finished in batching.as_completed(
            n, prepare, run, limit=limit, return_exceptions=return_exceptions
        ):
            yield finished

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

    def batch_as_completed(  # type: ignore[override]
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

    # -- offline batch files (see scale.batchfiles) -------------------------------------------

    def batch_requests(
        self, jets: Iterable[JetInput], *, reasks: Iterable[Reask] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Request lines for ``vllm run-batch`` / the OpenAI Batch API, one per jet to ask.

        Each body is what this tagger sends its server over HTTP; ``custom_id`` is the cache
        key. Cached jets and repeated keys are left out. Offline, say first what will answer:
        ``tagger.assume_server(batchfiles.offline_server(...))``. With ``reasks`` (from
        :meth:`read_batch_output`), the re-ask lines of those jets.
        """
        from ..scale.batchfiles import batch_requests

        return batch_requests(self, jets, reasks=reasks)

    def read_batch_output(
        self, lines: Any, jets: Sequence[JetInput], *, cache: bool = True
    ) -> BatchOutput:
        """Results of ``jets`` from batch output lines (a file, files, or lines), read through
        the gate as answers over HTTP are; failed lines are errors, re-asks are listed, and
        the labels go to the cache once every line was read (see
        :func:`~vibe_jet_tagging.scale.batchread.read_batch_output`)."""
        from ..scale.batchread import read_batch_output

        return read_batch_output(self, lines, jets, cache=cache)
