"""Many jets at once: chunks looked up in the cache together, a bounded number in flight,
and one request per cache key however often a batch repeats a jet.

:class:`TaggerBatch` is the batch path of :class:`~vibe_jet_tagging.chain.JetTagger`:
``abatch_as_completed`` (and ``abatch``, ``batch``, ``batch_as_completed`` derived from it),
``_prepare`` (a chunk coerced, keyed and looked up at once) and ``_deduplicated`` (the
in-flight requests per event loop that identical jets wait for); and the offline batch files'
entry points (``batch_requests``, ``read_batch_output``: see :mod:`.batchfiles`).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import get_config_list

from ._sync import iterate_sync, run_sync
from .errors import ServerError
from .jets import Jet
from .results import TaggingError, TagResult, Usage
from .tagger_identity import TaggerIdentity

if TYPE_CHECKING:
    from .batchfiles import Reask
    from .batchread import BatchOutput
    from .cache import ResultCache
    from .chain import JetInput

__all__ = ["TaggerBatch"]

_PREPARE_CHUNK = 512  # jets coerced, keyed and looked up at once by abatch_as_completed


class TaggerBatch(TaggerIdentity):
    """The batch path of a :class:`~vibe_jet_tagging.chain.JetTagger`."""

    cache: ResultCache | None
    refresh: bool
    max_concurrency: int
    _inflight: weakref.WeakKeyDictionary[
        asyncio.AbstractEventLoop, dict[str, asyncio.Future[TagResult]]
    ]

    if TYPE_CHECKING:

        async def ainvoke(
            self, input: JetInput, config: RunnableConfig | None = None, **kwargs: Any
        ) -> TagResult: ...

    async def _deduplicated(
        self, key: str, jet: Jet, tag: Callable[[], Awaitable[TagResult]]
    ) -> TagResult:
        """``tag()``, unless a request for ``key`` is in flight: then a copy of its result.

        A new result goes to the cache. A duplicate's copy is ``cached`` (it cost nothing);
        when the original fails, the duplicate fails with the same error and no usage.
        """
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
            result = await tag()
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
