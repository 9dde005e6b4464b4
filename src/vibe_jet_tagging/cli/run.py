"""Steps the tagging commands share: the jets, the server, the tagger and the streamed run."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .._lazy import lazy
from .app import CLIError, console
from .breaker import Breaker, RunStopped
from .cache import cache_root, results_dir

np = lazy("numpy")  # numpy is imported when a command first uses it

_EMULATED = "answers from a physics heuristic, not a language model"


def say(message: str, **options: Any) -> None:
    """One message line on stderr, unwrapped (a log or a test reads it whole)."""
    console.print(message, soft_wrap=True, highlight=False, **options)


# -- shared steps -------------------------------------------------------------------------------


def open_jets(spec: str) -> Any:
    """The data set named on the command line ('sample' or a path, kept absolute)."""
    from ..data import load_jets, load_sample

    if spec == "sample":
        return load_sample()
    path = Path(spec)
    if not path.exists():
        raise CLIError(f"{spec}: no such file or folder ('sample' is the bundled jets)")
    return load_jets(path.resolve())


def select(dataset: Any, limit: int | None, balanced: bool, seed: int | None) -> Any:
    """The first ``limit`` jets, or a seeded balanced subset of ``limit``."""
    if limit is None:
        return dataset
    if limit < 1:
        raise CLIError(f"--limit must be positive, got {limit}")
    if balanced:
        return dataset.balanced(limit, seed=seed or 0)
    return dataset.head(min(limit, len(dataset)))


def example_pool() -> Any:
    """Few-shot examples: the bundled sample's labelled jets.

    The whole sample, even when it is also what is tagged: a jet is never its own example
    (the selectors exclude it by key), and a pool that does not depend on ``--limit`` or
    ``--seed`` keeps the cache keys of jets tagged before.
    """
    from ..data import load_sample

    return load_sample()


def check_template(name: str) -> None:
    """Fail early (before any server starts) on a template that does not exist."""
    from ..prompts import load_template

    load_template(name)


@dataclass
class Backend:
    """The server(s) a command talks to, and whether it is the emulated one."""

    urls: list[str]
    emulated: bool

    @property
    def url(self) -> str:
        """The (first) server's URL."""
        return self.urls[0]

    @property
    def kind(self) -> str:
        """``"emulated"`` or ``"server"`` (what rows and reports record)."""
        return "emulated" if self.emulated else "server"

    def announce(self) -> None:
        """Say it on stderr when the answers will come from the emulated server."""
        if self.emulated:
            say(f"[dim]emulated vLLM server on {escape(self.url)} ({_EMULATED})[/]")


@contextlib.contextmanager
def server(
    emulate: bool, settings: Any, *, models: list[str] | None = None, **emulator_options: Any
) -> Iterator[Backend]:
    """The server to use: an emulated one started for the command, or the settings' one.

    A real server is checked first (reachable, serves the model); one that turns out to be
    the emulated server is treated as such.
    """
    from ..errors import ModelNotServedError, ServerError
    from ..server_info import fetch_pool_info

    if not emulate:
        urls, model = settings.base_urls, settings.model
        try:  # each server once; several must serve the same model
            info = fetch_pool_info(urls, settings.api_key.get_secret_value(), model)
        except ModelNotServedError as exc:
            raise CLIError(
                f"the server at {exc.url} does not serve the model {model!r}; it serves "
                f"{', '.join(map(repr, exc.served)) or 'nothing'}: pass one with --model "
                "(VJT_MODEL)"
            ) from None
        except ServerError as exc:
            raise CLIError(
                f"{exc}. Start vLLM there (`vllm serve {model}`) or point --base-url "
                "(VJT_BASE_URL) at a running server, or pass --emulate to use the built-in "
                "emulated server."
            ) from None
        yield Backend(urls, info.emulated)
        return
    from ..emulator import EmulatedServer

    with EmulatedServer(models=models or [settings.model], **emulator_options) as emulated:
        yield Backend([emulated.base_url], True)


def make_tagger(
    settings: Any, backend: Backend, examples: Any, *, cache: bool, refresh: bool
) -> Any:
    """A :class:`JetTagger` from the command's settings.

    The emulated server's answers go to a cache of their own: the cache key does not say
    which server answered, and a heuristic's answer must never be served as a model's.
    """
    from ..cache import ResultCache
    from ..chain import JetTagger

    store = None
    if cache:
        store = ResultCache(results_dir(cache_root(settings.cache_dir), emulated=backend.emulated))
    return JetTagger(
        settings.model,
        base_url=backend.urls if len(backend.urls) > 1 else backend.url,
        effort=settings.effort,
        temperature=settings.temperature,
        seed=settings.seed,
        max_tokens=settings.max_tokens,
        timeout=settings.timeout,
        max_retries=settings.max_retries,
        api_key=settings.api_key.get_secret_value(),
        template=settings.template,
        examples=examples,
        shots=settings.shots,
        structured_output=settings.structured_output,
        cache=store,
        refresh=refresh,
        max_concurrency=settings.concurrency,
    )


@dataclass
class RunStats:
    """Counts shown on the progress bar and in the summary."""

    done: int = 0
    resumed: int = 0
    errors: int = 0
    input_errors: int = 0  # this run's jets whose own data cannot be tagged
    kept_input_errors: int = 0  # such jets' rows kept from a previous run
    cache_hits: int = 0
    tokens: int = 0
    started: float = field(default_factory=time.perf_counter)
    servers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def asked(self) -> int:
        """Jets sent to the server in this run."""
        return self.done - self.cache_hits - self.input_errors

    @property
    def invalid(self) -> int:
        """Jets in the output that can never be tagged: their data is invalid."""
        return self.input_errors + self.kept_input_errors

    @property
    def retryable(self) -> int:
        """Jets of this run without label that a rerun asks again."""
        return self.errors - self.input_errors

    def add(self, row: dict[str, Any]) -> None:
        self.done += 1
        self.errors += row.get("error") is not None
        self.input_errors += row.get("error_kind") == "input"
        self.cache_hits += bool(row.get("cached"))
        if not row.get("cached"):
            self.tokens += row.get("tokens") or 0

    def line(self) -> str:
        """Errors, cache hits, tokens and jets per second, short enough for 80 columns."""
        rate = self.done / max(time.perf_counter() - self.started, 1e-9)
        tokens = next(
            f"{self.tokens / scale:.1f}{unit}"
            for scale, unit in ((1e6, "M"), (1e3, "k"), (1, ""))
            if self.tokens >= scale or scale == 1
        )
        line = f"{self.errors} err · {self.cache_hits} cached · {tokens} tok · {rate:.1f} jets/s"
        if len(self.servers) > 1:  # answered (failed) per server, by host:port
            line += " · " + " ".join(
                f"{urlsplit(s['base_url']).netloc} {s['ok']}"
                + (f" ({s['failed']} failed)" if s["failed"] else "")
                for s in self.servers
            )
        return line


def _resumable(
    rows: list[dict[str, Any]], tagger: Any, selection: Any, backend: str
) -> tuple[dict[int, dict[str, Any]], int, int]:
    """Rows of a previous run to keep (by position), rows to ask again, rows dropped.

    A row is kept when it is for a jet of the selection, made by the same kind of backend, and
    either has a label and the same settings (same cache key), or is an ``input`` error for a
    jet whose data still fails the same way (asking again could never succeed). Other rows of
    jets without a label are asked again; rows for other jets or made with other settings are
    dropped, never mixed. The jets are read once, in order, and an invalid one stops nothing.
    """
    source = selection.source
    positions = {int(idx): p for p, idx in enumerate(np.asarray(selection.indices))}
    candidates: list[tuple[int, dict[str, Any]]] = []
    dropped = 0
    for row in rows:
        p = positions.get(row.get("index"))  # type: ignore[arg-type]
        if p is None or row.get("source") != source or row.get("backend", backend) != backend:
            dropped += 1
        else:
            candidates.append((p, row))
    wanted = sorted({p for p, _ in candidates})
    read = selection[np.array(wanted, dtype=np.intp)].jets_or_errors()
    jets = dict(zip(wanted, read, strict=True))
    kept: dict[int, dict[str, Any]] = {}
    retry = 0
    for p, row in candidates:
        jet = jets[p]
        if row.get("error_kind") == "input":
            if isinstance(jet, ValueError) and str(jet) == row.get("error"):
                kept.setdefault(p, row)
            else:  # the jet's data changed since: tag it again
                retry += 1
        elif isinstance(jet, ValueError) or row.get("key") != tagger.key_for(jet):
            dropped += 1
        elif row.get("error") is not None:
            retry += 1
        else:
            kept.setdefault(p, row)
    return kept, retry, dropped


def tag_to_file(
    tagger: Any,
    selection: Any,
    output: Path,
    *,
    backend: str,
    reasoning: bool = False,
    description: str = "tagging",
    resume: bool = True,
) -> RunStats:
    """Tag ``selection`` into ``output`` (JSONL), one row per jet as it finishes.

    With ``resume``, rows already in ``output`` for the same jets and settings are kept (see
    :func:`_resumable`) and only the rest is asked for (through the cache); otherwise the file
    starts over. Ctrl-C leaves whole lines and is re-raised after a message.
    """
    from ..report import JsonlWriter, read_rows, result_row

    labels = selection.labels
    kept: dict[int, dict[str, Any]] = {}
    if resume and output.exists():
        kept, retry, dropped = _resumable(read_rows(output), tagger, selection, backend)
        if dropped:
            say(
                f"[yellow]dropping {dropped} rows of {escape(str(output))} made for other jets "
                "or with other settings or server (they stay in the cache)[/]"
            )
        invalid = sum(row.get("error") is not None for row in kept.values())
        if kept or retry:
            say(
                f"resuming {escape(str(output))}: {len(kept) - invalid} jets already tagged, "
                f"{invalid} with invalid data kept as they are, {retry} without label asked again"
            )
    todo = [p for p in range(len(selection)) if p not in kept]
    stats = RunStats(
        resumed=len(kept),
        kept_input_errors=sum(row.get("error") is not None for row in kept.values()),
    )
    jets = selection[np.array(todo, dtype=np.intp)] if todo else []
    breaker = Breaker(streak=max(tagger.max_concurrency, 1) + 10)

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=16),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeRemainingColumn(),
        console=console,
    )

    async def stream() -> None:
        async for i, outcome in tagger.abatch_as_completed(jets, return_exceptions=True):
            p = todo[i]
            row = result_row(
                outcome,
                index=int(selection.indices[p]),
                truth=None if labels is None else int(labels[p]),
                source=selection.source,
                backend=backend,  # type: ignore[arg-type]
                reasoning=reasoning,
            )
            writer.write(row)
            stats.add(row)
            stats.servers = tagger.endpoint_stats()
            progress.update(task, advance=1, stats=stats.line())
            breaker.observe(row)

    try:
        with JsonlWriter(output, kept.values()) as writer, progress:
            task = progress.add_task(
                description, total=len(selection), completed=len(kept), stats=""
            )
            asyncio.run(stream())
    except KeyboardInterrupt:
        say(
            f"[yellow]interrupted[/]: {stats.resumed + stats.done} of {len(selection)} jets "
            f"are in {escape(str(output))}; rerun the same command to resume"
        )
        raise
    except RunStopped as exc:
        raise CLIError(
            f"stopped: {exc}; {stats.resumed + stats.done - stats.errors} jets are tagged in "
            f"{output} (kept): fix the cause and rerun the same command to resume"
        ) from None
    return stats


def settings_from(**flags: Any) -> Any:
    from ..config import load_settings

    return load_settings(**flags)
