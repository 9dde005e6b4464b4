"""Steps the tagging commands share: the jets, the server, the tagger and the streamed run."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from . import interrupt
from .app import CLIError, console
from .breaker import Breaker, RunStopped
from .cache import cache_root, results_dir
from .checks import url_problem
from .lazy import lazy

np = lazy("numpy")  # numpy is imported when a command first uses it

_EMULATED = "answers from a physics heuristic, not a language model"


def say(message: str, **options: Any) -> None:
    """One message line on stderr, unwrapped (a log or a test reads it whole)."""
    console.print(message, soft_wrap=True, highlight=False, **options)


# -- shared steps -------------------------------------------------------------------------------


def open_jets(spec: str) -> Any:
    """The data set named on the command line ('sample' or a path, kept absolute).

    A path that does not exist is answered before numpy and the readers are imported.
    """
    path = Path(spec)
    if spec != "sample" and not path.exists():
        raise CLIError(f"{spec}: no such file or folder ('sample' is the bundled jets)")
    from ..jets.dataset import load_jets, load_sample

    return load_sample() if spec == "sample" else load_jets(path.resolve())


def select(
    dataset: Any, limit: int | None, balanced: bool, seed: int | None, shard: str | None = None
) -> Any:
    """The first ``limit`` jets, or a seeded balanced subset of ``limit``; then ``--shard``."""
    if limit is not None:
        if limit < 1:
            raise CLIError(f"--limit must be positive, got {limit}")
        if balanced:
            dataset = dataset.balanced(limit, seed=seed or 0)
        else:
            dataset = dataset.head(min(limit, len(dataset)))
    if shard is not None:
        k, n = parse_shard(shard)
        dataset = dataset.shard(k, n)
    return dataset


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` as ``(K, N)``, with ``0 <= K < N``."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise CLIError(f"--shard {text!r}: expected K/N, e.g. 0/4") from None
    if n < 1 or not 0 <= k < n:
        raise CLIError(f"--shard {text}: need 0 <= K < N (K counts from 0, as Slurm array ids)")
    return k, n


def example_pool() -> Any:
    """Few-shot examples: the bundled sample's labelled jets.

    The whole sample, even when it is also what is tagged: a jet is never its own example
    (the selectors exclude it by key), and a pool that does not depend on ``--limit`` or
    ``--seed`` keeps the cache keys of jets tagged before.
    """
    from ..jets.dataset import load_sample

    return load_sample()


def check_template(name: str) -> None:
    """Fail early (before any server starts) on a template that does not exist."""
    from ..tagging.templates import load_template

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
    if not emulate:
        urls, model = settings.base_urls, settings.model
        for url in urls:  # a typo is to fix, not a server to start: said before any request
            problem = url_problem(url)
            if problem:
                raise CLIError(
                    f"base URL {url!r}: {problem}; fix --base-url (or VJT_BASE_URL, or "
                    "base_url in the config file), e.g. http://localhost:8000/v1"
                )
        from ..errors import ModelNotServedError, ServerError
        from ..servers.info import fetch_pool_info

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
                f"{str(exc).rstrip('.')}. Start vLLM there (`vllm serve {model}`) or point "
                "--base-url (VJT_BASE_URL) at a running server, or pass --emulate to use the "
                "built-in emulated server."
            ) from None
        yield Backend(urls, info.emulated)
        return
    from ..emulator import LATENCY_PRESETS, EmulatedServer

    # The "demo" latency: an answer takes longer at a higher effort, as on vLLM (not instant).
    options = {**LATENCY_PRESETS["demo"], **emulator_options}
    with EmulatedServer(models=models or [settings.model], **options) as emulated:
        yield Backend([emulated.base_url], True)


def make_tagger(
    settings: Any, backend: Backend, examples: Any, *, cache: bool, refresh: bool
) -> Any:
    """A :class:`JetTagger` from the command's settings.

    The emulated server's answers go to a cache of their own (the cache key says what the
    server is too, so they could never be served as a model's anyway). A cache folder others
    can write to stops the command (one line; ``--shared-cache`` allows it); one that cannot
    be opened or written is set aside with one warning and the run goes on without it.
    """
    from ..store.cache import ResultCache
    from ..tagging.tagger import JetTagger

    store = None
    if cache:
        folder = results_dir(cache_root(settings.cache_dir), emulated=backend.emulated)
        store = ResultCache(folder, shared=settings.shared_cache)
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


def set_aside_path(output: Path) -> Path:
    """The side file of ``output``: ``results.jsonl`` -> ``results.set-aside.jsonl``."""
    return output.with_name(f"{output.stem}.set-aside{output.suffix}")


@dataclass
class Plan:
    """What becomes of the rows already in an output and its side file (see _plan_rows)."""

    kept: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Rows kept in the output, by position in the selection."""
    aside: list[dict[str, Any]] = field(default_factory=list)
    """What the side file holds afterwards."""
    moved: list[dict[str, Any]] = field(default_factory=list)
    """Rows of the output that move to the side file."""
    restored: int = 0
    """Rows of the side file that come back to the output."""
    retry: int = 0
    """Jets whose row had no label with these settings: asked again, the row replaced."""


def _identity(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True)


def _plan_rows(
    rows: list[dict[str, Any]],
    earlier: list[dict[str, Any]],
    tagger: Any,
    selection: Any,
    backend: str,
    *,
    resume: bool = True,
) -> Plan:
    """Sort the rows of the output (``rows``) and of its side file (``earlier``).

    Kept in the output (with ``resume``): a row for a jet of the selection, made by the same
    kind of backend, with a label and the same settings (same cache key), or an ``input``
    error for a jet whose data still fails the same way. Replaced by this run: a row of the
    same settings without a label (asked again), and without ``resume`` any row of the same
    settings (the run makes it again). Every other row (other jets, other settings or server,
    a second copy of a jet) goes to the side file: rows are never deleted. Rows of the side
    file that fit the run come back; exact copies are kept once. The jets are read once, in
    order, and an invalid one stops nothing.
    """
    source = selection.source
    positions = {int(idx): p for p, idx in enumerate(np.asarray(selection.indices))}
    candidates: list[tuple[int, dict[str, Any], bool]] = []
    plan = Plan()
    seen: set[str] = set()

    def aside(row: dict[str, Any], from_output: bool) -> None:
        identity = _identity(row)
        if identity not in seen:
            seen.add(identity)
            plan.aside.append(row)
            if from_output:
                plan.moved.append(row)

    outside: list[tuple[dict[str, Any], bool]] = []
    for row, from_output in [(r, True) for r in rows] + [(r, False) for r in earlier]:
        p = positions.get(row.get("index"))  # type: ignore[arg-type]
        if p is None or row.get("source") != source or row.get("backend", backend) != backend:
            outside.append((row, from_output))
        else:
            candidates.append((p, row, from_output))
    wanted = sorted({p for p, _, _ in candidates})
    read = selection[np.array(wanted, dtype=np.intp)].jets_or_errors()
    jets = dict(zip(wanted, read, strict=True))
    kept_from_output: set[int] = set()
    retried: set[int] = set()
    for p, row, from_output in candidates:
        jet = jets[p]
        if row.get("error_kind") == "input":
            fits = isinstance(jet, ValueError) and str(jet) == row.get("error")
            replaced = not fits  # the jet's data changed since: tag it again
        elif isinstance(jet, ValueError) or row.get("key") != tagger.key_for(jet):
            aside(row, from_output)
            continue
        else:
            fits, replaced = row.get("error") is None, row.get("error") is not None
        if replaced:
            retried.add(p)
        elif not resume:
            continue  # made again by this run
        elif p not in plan.kept:
            plan.kept[p] = row
            if from_output:
                kept_from_output.add(p)
            else:
                plan.restored += 1
            seen.add(_identity(row))
        else:
            aside(row, from_output)  # a second row for the same jet
    for row, from_output in outside:
        aside(row, from_output)
    plan.retry = len(retried - set(plan.kept))
    return plan


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Replace ``path`` by ``rows`` at once (a kill leaves the old file or the new one)."""
    from ..store.rows import JsonlWriter

    JsonlWriter(path, rows).close()


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

    With ``resume``, rows already in ``output`` for the same jets and settings are kept and
    only the rest is asked for (through the cache); otherwise they are made again. Rows made
    for other jets or with other settings or server are never deleted: they move to a side
    file next to ``output`` (:func:`set_aside_path`), and come back when a later run fits
    them (see :func:`_plan_rows`). A side file, not the same file, so that ``output`` always
    holds one run's settings, one row per jet, for ``vjt evaluate``; the side file is a
    results file too. The side file is written before ``output`` is, and trimmed only after,
    so a kill at any point loses no row (at worst a row is in both). Ctrl-C leaves whole
    lines and is re-raised after a message.
    """
    from ..store.rows import JsonlWriter, read_rows, result_row

    labels = selection.labels
    side = set_aside_path(output)
    plan = Plan()
    earlier: list[dict[str, Any]] = []
    if output.exists() or side.exists():
        earlier = read_rows(side) if side.exists() else []
        rows = read_rows(output) if output.exists() else []
        plan = _plan_rows(rows, earlier, tagger, selection, backend, resume=resume)
        if plan.moved:  # first a side file that holds everything
            seen = {_identity(row) for row in earlier}
            _write_rows(side, earlier + [r for r in plan.moved if _identity(r) not in seen])
            say(
                f"[yellow]moved {len(plan.moved)} rows of {escape(str(output))} made for other "
                f"jets or with other settings or server to {escape(str(side))}[/] (kept there "
                "for later runs; `vjt evaluate` reads it too)"
            )
        invalid = sum(row.get("error") is not None for row in plan.kept.values())
        if plan.kept or plan.retry:
            restored = f" ({plan.restored} from {escape(str(side))})" if plan.restored else ""
            say(
                f"resuming {escape(str(output))}: {len(plan.kept) - invalid} jets already "
                f"tagged{restored}, {invalid} with invalid data kept as they are, "
                f"{plan.retry} without label asked again"
            )
    kept = plan.kept
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
            # The output now holds the rows kept: the side file keeps only the others.
            before = {_identity(r) for r in earlier + plan.moved}
            if side.exists() and {_identity(r) for r in plan.aside} != before:
                if plan.aside:
                    _write_rows(side, plan.aside)
                else:
                    side.unlink()
            task = progress.add_task(
                description, total=len(selection), completed=len(kept), stats=""
            )
            interrupt.run(stream)
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
