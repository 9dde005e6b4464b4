"""Many jets at once: chunks looked up in the cache together, a bounded number in flight,
and one request per cache key however often a batch repeats a jet.

:class:`TaggerBatch` is the batch path of :class:`~.tagging.tagger.JetTagger`:
``abatch_as_completed`` (and ``abatch``, ``batch``, ``batch_as_completed`` derived from it),
``_prepare`` (a chunk coerced, keyed and looked up at once) and ``_deduplicated`` (the
in-flight requests per event loop that identical jets wait for); and the offline batch files'
entry points (``batch_requests``, ``read_batch_output``: see :mod:`.batchfiles`).
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import (
    ensure_config,
    get_async_callback_manager_for_config,
    get_config_list,
)

from .._sync import iterate_sync, run_sync
from ..errors import ServerError
from ..jets.dataset import JetDataset
from ..jets.jet import Jet
from .identity import TaggerIdentity
from .results import TaggingError, TagResult, Usage
from .templates import Example

if TYPE_CHECKING:
    from ..scale.batchfiles import Reask
    from ..scale.batchread import BatchOutput
    from ..store.cache import ResultCache
    from .tagger import JetInput

__all__ = ["Pending", "TaggerBatch"]

_PREPARE_CHUNK = 512  # jets coerced, keyed and looked up at once by abatch_as_completed
_STORED_KEPT = 8192
"""Keys stored last that a jet looked up earlier checks again (see ``_stored``)."""


@dataclass(slots=True)
class Pending:
    """A jet to ask, with what its chunk's look-up found out: its key and its examples."""

    jet: Jet
    key: str
    examples: list[Example]


def _batch_configs(
    config: RunnableConfig | Sequence[RunnableConfig] | None, n: int
) -> tuple[Callable[[int], RunnableConfig], bool]:
    """Each jet's config, and whether a callback handler watches the batch.

    One config for every jet when the caller gave one (the first keeps a ``run_id``, as in
    LangChain's ``get_config_list``, with its warning), built once rather than once per jet.
    A list of configs is taken as given and counted as watched (each jet then runs as a run
    of its own). Unwatched, no jet is a run, so none takes the ``run_id``.
    """
    if isinstance(config, Sequence):
        configs = get_config_list(config, n)
        return configs.__getitem__, True
    first = ensure_config(config)
    rest = first
    if first.get("run_id") is not None:
        if n > 1:
            warnings.warn(
                "Provided run_id be used only for the first element of the batch.",
                category=RuntimeWarning,
                stacklevel=4,
            )
        rest = ensure_config({k: v for k, v in first.items() if k != "run_id"})  # type: ignore[misc]
    if not get_async_callback_manager_for_config(first).handlers:
        return (lambda i: rest), False
    return (lambda i: rest if i else first), True


def _served_from_cache(hit: TagResult, jet: Jet) -> TagResult:
    """Mark a result read from the cache (a new object, ours to mark) as this jet's hit."""
    hit.cached = True
    hit.index = jet.index
    return hit


def _coerced(inputs: Sequence[JetInput], start: int, stop: int) -> Iterator[Jet | ValueError]:
    """``inputs[start:stop]`` as jets (or why each is not one): a data set or a padded
    ``(N, M, 4)`` array in one go, anything else one by one."""
    if isinstance(inputs, JetDataset):
        yield from inputs._read_jets(inputs.indices[start:stop])
    elif isinstance(inputs, np.ndarray) and inputs.ndim == 3 and inputs.dtype.kind in "fiu":
        yield from Jet.from_rows(inputs[start:stop])
    else:
        for i in range(start, stop):
            try:
                yield Jet.coerce(inputs[i])
            except ValueError as exc:
                yield exc


class TaggerBatch(TaggerIdentity):
    """The batch path of a :class:`~.tagging.tagger.JetTagger`."""

    cache: ResultCache | None
    refresh: bool
    max_concurrency: int
    _inflight: weakref.WeakKeyDictionary[
        asyncio.AbstractEventLoop, dict[str, asyncio.Future[TagResult]]
    ]
    _stored: OrderedDict[str, None]
    """The last keys this tagger stored, oldest first: a jet whose chunk was looked up
    before an identical jet's result was stored reads it from the cache instead of asking
    again. (A result another tagger or process stores meanwhile is not looked for: the jet
    is asked again, as if it had come first.)"""

    if TYPE_CHECKING:

        async def _run(
            self, jet: Jet, config: RunnableConfig, pending: Pending | None
        ) -> TagResult: ...

        async def _arun(
            self, jet: Jet, run_manager: Any, config: RunnableConfig, pending: Pending | None
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
            if self.cache is not None and not result.cached and self.cache.put(result):
                self._stored[key] = None
                if len(self._stored) > _STORED_KEPT:
                    with contextlib.suppress(KeyError):  # another loop's batch took it
                        self._stored.popitem(last=False)
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
        memory stays bounded for any number of jets. Identical jets cause one request. When
        no callback handler watches (none in the config, no tracing, no ``track_usage``), a
        jet is a plain call rather than a run of its own.
        """
        n = len(inputs)
        if n == 0:
            return
        config_for, watched = _batch_configs(config, n)
        limit = config_for(0).get("max_concurrency") or self.max_concurrency
        tasks: set[asyncio.Task[tuple[int, TagResult | Exception]]] = set()

        async def run(i: int, item: Jet | Pending) -> tuple[int, TagResult | Exception]:
            try:
                if isinstance(item, Jet):  # not keyed: the server could not be read
                    return i, await self._run(item, ensure_config(config_for(i)), None)
                if watched:
                    return i, await self._run(item.jet, ensure_config(config_for(i)), item)
                return i, await self._arun(item.jet, None, config_for(i), item)
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
                del prepared
            async for finished in drain(wait_for_all=True):
                yield check(finished)
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    def _prepare(
        self, inputs: Sequence[JetInput], start: int
    ) -> list[tuple[int, TagResult | Exception | Jet | Pending]]:
        """A chunk of inputs coerced, keyed and looked up together: hits, errors (invalid
        jets), jets to ask (:class:`Pending`), or bare jets when the server cannot be read
        (each then fails with that error)."""
        out: list[tuple[int, TagResult | Exception | Jet | Pending]] = []
        try:
            settings: str | None = self.settings_key  # asks the server once
        except ServerError:
            settings = None
        stop = min(start + _PREPARE_CHUNK, len(inputs))
        for i, jet in zip(range(start, stop), _coerced(inputs, start, stop), strict=True):
            if isinstance(jet, ValueError):
                out.append((i, jet))
                continue
            if settings is None:
                out.append((i, jet))
                continue
            examples = self.prompt.examples_for(jet)
            out.append((i, Pending(jet, self._key(settings, jet, examples), examples)))
        if self.cache is None or self.refresh or settings is None:
            return out
        hits = self.cache.get_many(item.key for _, item in out if isinstance(item, Pending))
        if not hits:
            return out
        served: set[str] = set()
        for position, (i, item) in enumerate(out):
            hit = hits.get(item.key) if isinstance(item, Pending) else None
            if hit is None:
                continue
            if item.key in served:  # the same jet again in this chunk: a result of its own
                hit = hit.model_copy()
            served.add(item.key)
            out[position] = (i, _served_from_cache(hit, item.jet))
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
        from ..scale.batchfiles import batch_requests

        return batch_requests(self, jets, reasks=reasks)

    def read_batch_output(
        self, lines: Any, jets: Sequence[JetInput], *, cache: bool = True
    ) -> BatchOutput:
        """Results of ``jets`` from batch output lines (a file, files, or lines), parsed as
        this tagger parses answers; failed lines are errors, re-asks are listed, successes
        go to the cache. See :func:`~vibe_jet_tagging.scale.batchfiles.read_batch_output`."""
        from ..scale.batchread import read_batch_output

        return read_batch_output(self, lines, jets, cache=cache)
