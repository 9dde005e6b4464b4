"""Many jets at once: chunks keyed and looked up in the cache together, a bounded number in
flight, results yielded as they finish.

:func:`prepare` turns a chunk of inputs into what each needs (a cache hit, an input error, or a
:class:`Pending` jet with its key and examples); :func:`as_completed` runs the pending ones
with at most ``limit`` in flight, chunk after chunk, so memory stays bounded for any number of
jets. The tagger's ``abatch_as_completed`` is these two around its one-jet path.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import (
    ensure_config,
    get_async_callback_manager_for_config,
    get_config_list,
)

from ..errors import ServerError
from ..jets.dataset import JetDataset
from ..jets.jet import Jet
from .examples import Example
from .gate import AnswerGate
from .identity import KeyPolicy
from .prompt import JetPrompt
from .results import TagResult

__all__ = [
    "CHUNK",
    "FIRST_CHUNK",
    "Item",
    "Pending",
    "as_completed",
    "batch_configs",
    "chunks",
    "coerced",
    "prepare",
]

CHUNK = 512
"""Jets coerced, keyed and looked up at once."""
FIRST_CHUNK = 64
"""The first chunk's size: the first result (a cache hit, or the first request sent) comes
after 64 jets' preparation (~6 ms), not 512's (~50 ms)."""


def chunks(n: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of the chunks of ``n`` inputs: :data:`FIRST_CHUNK`, then
    :data:`CHUNK` at a time."""
    start, size = 0, FIRST_CHUNK
    while start < n:
        stop = min(start + size, n)
        yield start, stop
        start, size = stop, CHUNK


@dataclass(slots=True)
class Pending:
    """A jet to ask, with what its chunk's look-up found out: its key and its examples."""

    jet: Jet
    key: str
    examples: list[Example]


Item = TagResult | Exception | Jet | Pending
"""What :func:`prepare` gives for one input: a cache hit, why it is no jet, a jet that
cannot be keyed (the server could not be read), or a jet to ask."""


def batch_configs(
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
        rest = ensure_config(
            cast(RunnableConfig, {k: v for k, v in first.items() if k != "run_id"})
        )
    if not get_async_callback_manager_for_config(first).handlers:
        return (lambda i: rest), False
    return (lambda i: rest if i else first), True


def coerced(inputs: Sequence[Any], start: int, stop: int) -> Iterator[Jet | ValueError]:
    """``inputs[start:stop]`` as jets (or why each is not one): a data set or a padded
    ``(N, M, 4)`` array in one go, anything else one by one."""
    if isinstance(inputs, JetDataset):
        yield from inputs.read_jets(inputs.indices[start:stop])
    elif isinstance(inputs, np.ndarray) and inputs.ndim == 3 and inputs.dtype.kind in "fiu":
        yield from Jet.from_rows(inputs[start:stop])
    else:
        for i in range(start, stop):
            try:
                yield Jet.coerce(inputs[i])
            except ValueError as exc:
                yield exc


def prepare(
    inputs: Sequence[Any],
    start: int,
    *,
    keys: KeyPolicy,
    prompt: JetPrompt,
    gate: AnswerGate,
    stop: int | None = None,
) -> list[tuple[int, Item]]:
    """``inputs[start:stop]`` (default: a :data:`CHUNK`) coerced, keyed and looked up
    together (see :data:`Item`)."""
    out: list[tuple[int, Item]] = []
    try:
        settings: str | None = keys.settings_key  # asks the server once
    except ServerError:
        settings = None
    stop = min(start + CHUNK if stop is None else stop, len(inputs))
    for i, jet in zip(range(start, stop), coerced(inputs, start, stop), strict=True):
        if isinstance(jet, ValueError) or settings is None:
            out.append((i, jet))
            continue
        examples = prompt.examples_for(jet)
        out.append((i, Pending(jet, keys.key(settings, jet, examples), examples)))
    if settings is None:
        return out
    hits = gate.lookup_many(item.key for _, item in out if isinstance(item, Pending))
    if not hits:
        return out
    served: set[str] = set()
    for position, (i, item) in enumerate(out):
        if not isinstance(item, Pending) or item.key not in hits:
            continue
        hit = hits[item.key]
        if item.key in served:  # the same jet again in this chunk: a result of its own
            hit = hit.model_copy()
        served.add(item.key)
        out[position] = (i, gate.served(hit, item.jet.index))
    return out


async def as_completed(
    n: int,
    prepare_chunk: Callable[[int, int], list[tuple[int, Item]]],
    run: Callable[[int, Jet | Pending], Awaitable[TagResult]],
    *,
    limit: int,
    return_exceptions: bool,
) -> AsyncIterator[tuple[int, TagResult | Exception]]:
    """Yield ``(position, result)`` of ``n`` inputs as they finish: hits first, then the rest.

    ``prepare_chunk(start, stop)`` prepares a chunk (see :func:`chunks`; in a worker thread:
    it reads the cache and maybe the server); ``run(position, item)`` tags one jet, with at
    most ``limit`` in flight. Without ``return_exceptions`` the first error is raised.
    """
    tasks: set[asyncio.Task[tuple[int, TagResult | Exception]]] = set()

    async def one(i: int, item: Jet | Pending) -> tuple[int, TagResult | Exception]:
        try:
            return i, await run(i, item)
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
        for start, stop in chunks(n):
            prepared = await asyncio.to_thread(prepare_chunk, start, stop)
            for i, item in prepared:
                if isinstance(item, TagResult | Exception):
                    yield check((i, item))
                    continue
                async for finished in drain(wait_for_all=False):
                    yield check(finished)
                tasks.add(asyncio.create_task(one(i, item)))
            del prepared
        async for finished in drain(wait_for_all=True):
            yield check(finished)
    finally:
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
