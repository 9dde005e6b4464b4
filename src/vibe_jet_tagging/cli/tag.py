"""``vjt tag``, ``vjt evaluate``, ``vjt compare`` and ``vjt demo``: the main job."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich import box
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .app import CLIError, app, console
from .cache import cache_root, results_dir

JetsArg = Annotated[
    str,
    typer.Argument(help="An EnergyFlow-format .npz file, a folder of QG_jets*.npz, or 'sample'."),
]
BaseUrl = Annotated[str | None, typer.Option(help="The vLLM server [env VJT_BASE_URL].")]
Model = Annotated[str | None, typer.Option(help="Served model name [env VJT_MODEL].")]
Effort = Annotated[
    str | None, typer.Option(help="Reasoning effort: low, medium or high [env VJT_EFFORT].")
]
Template = Annotated[
    str | None, typer.Option(help="Prompt template name or YAML path [env VJT_TEMPLATE].")
]
Shots = Annotated[int | None, typer.Option(help="Few-shot examples (overrides the template).")]
Concurrency = Annotated[
    int | None, typer.Option(help="Requests in flight at once [env VJT_CONCURRENCY].")
]
Limit = Annotated[int | None, typer.Option(help="Tag only this many jets.")]
Balanced = Annotated[
    bool, typer.Option(help="With --limit: a seeded balanced quark/gluon subset, not the first N.")
]
Seed = Annotated[int | None, typer.Option(help="Seed of the model, the examples and subsets.")]
Emulate = Annotated[
    bool,
    typer.Option(help="Start the built-in emulated vLLM server (a physics heuristic, not an LLM)."),
]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the cache.")]
Refresh = Annotated[bool, typer.Option("--refresh", help="Ask again even for cached jets.")]

_EMULATOR_DEMO_LATENCY = {"ttft": 0.02, "itl": 0.0002}
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
        raise CLIError(f"{spec}: no such jets file or folder ('sample' is the bundled jets)")
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
    """The server a command talks to, and whether it is the emulated one."""

    url: str
    emulated: bool

    @property
    def kind(self) -> str:
        """``"emulated"`` or ``"server"`` (what rows and reports record)."""
        return "emulated" if self.emulated else "server"

    def announce(self) -> None:
        """Say it on stderr when the answers will come from the emulated server."""
        if self.emulated:
            say(f"[dim]emulated vLLM server on {escape(self.url)} ({_EMULATED})[/]")


def _is_emulator(base_url: str) -> bool:
    """Whether the server at ``base_url`` says it is this package's emulated server."""
    import httpx

    root = base_url.rstrip("/")
    root = root.removesuffix("/v1")
    try:
        version = httpx.get(f"{root}/version", timeout=5).json().get("version", "")
    except (httpx.HTTPError, ValueError, AttributeError):
        return False
    return isinstance(version, str) and version.startswith("emulated")


@contextlib.contextmanager
def server(
    emulate: bool, settings: Any, *, models: list[str] | None = None, **emulator_options: Any
) -> Iterator[Backend]:
    """The server to use: an emulated one started for the command, or the settings' one.

    A real server is checked first (reachable, serves the model); one that turns out to be
    the emulated server is treated as such.
    """
    from ..errors import ModelNotServedError, ServerError
    from ..model import check_server

    if not emulate:
        url, model = settings.base_url, settings.model
        try:
            check_server(url, model, settings.api_key.get_secret_value())
        except ModelNotServedError as exc:
            raise CLIError(
                f"the server at {url} does not serve the model {model!r}; it serves "
                f"{', '.join(map(repr, exc.served)) or 'nothing'}: pass one with --model "
                "(VJT_MODEL)"
            ) from None
        except ServerError as exc:
            raise CLIError(
                f"{exc}. Start vLLM there (`vllm serve {model}`) or point --base-url "
                "(VJT_BASE_URL) at a running server, or pass --emulate to use the built-in "
                "emulated server."
            ) from None
        yield Backend(url, _is_emulator(url))
        return
    from ..emulator import EmulatedServer

    with EmulatedServer(models=models or [settings.model], **emulator_options) as emulated:
        yield Backend(emulated.base_url, True)


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
        base_url=backend.url,
        effort=settings.effort,
        temperature=settings.temperature,
        seed=settings.seed,
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
    cache_hits: int = 0
    tokens: int = 0
    started: float = field(default_factory=time.perf_counter)

    @property
    def asked(self) -> int:
        """Jets sent to the server in this run."""
        return self.done - self.cache_hits

    def add(self, row: dict[str, Any]) -> None:
        self.done += 1
        self.errors += row.get("error") is not None
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
        return f"{self.errors} err · {self.cache_hits} cached · {tokens} tok · {rate:.1f} jets/s"


class _ServerGone(Exception):
    """Many jets in a row could not reach the server: stop instead of failing them all."""


def _resumable(
    rows: list[dict[str, Any]], tagger: Any, selection: Any, backend: str
) -> tuple[dict[int, dict[str, Any]], int, int]:
    """Rows of a previous run to keep (by position), rows to ask again, rows dropped.

    A row is kept when it is for a jet of the selection, has a label, and was made with the
    same settings (same cache key) by the same kind of backend. Rows of jets without a label
    are asked again; rows for other jets or made with other settings are dropped, never mixed.
    """
    source = selection.source
    positions = {int(idx): p for p, idx in enumerate(np.asarray(selection.indices))}
    kept: dict[int, dict[str, Any]] = {}
    retry = dropped = 0
    for row in rows:
        p = positions.get(row.get("index"))  # type: ignore[arg-type]
        same = (
            p is not None
            and row.get("source") == source
            and row.get("backend", backend) == backend
            and row.get("key") == tagger.key_for(selection[p])
        )
        if not same:
            dropped += 1
        elif row.get("error") is not None:
            retry += 1
        elif p not in kept:
            kept[p] = row  # type: ignore[index]
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
        if kept or retry:
            say(
                f"resuming {escape(str(output))}: {len(kept)} jets already tagged, "
                f"{retry} without label asked again"
            )
    todo = [p for p in range(len(selection)) if p not in kept]
    stats = RunStats(resumed=len(kept))
    jets = selection[np.array(todo, dtype=np.intp)] if todo else []
    streak_limit = max(tagger.max_concurrency, 1) + 10

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=16),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeRemainingColumn(),
        console=console,
    )

    async def stream() -> None:
        streak = 0
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
            progress.update(task, advance=1, stats=stats.line())
            streak = streak + 1 if row.get("error_kind") == "connection" else 0
            if streak >= streak_limit:
                raise _ServerGone(row["error"])

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
    except _ServerGone as exc:
        raise CLIError(
            f"{exc} (stopped after {streak_limit} jets in a row failed); "
            f"{stats.resumed + stats.done - stats.errors} jets are tagged in {output}: rerun "
            "the same command to resume"
        ) from None
    return stats


# -- tables -----------------------------------------------------------------------------------


def _num(value: float | None) -> str:
    """A rejection factor in a few characters: 6.5, 15, 230, ∞."""
    if value is None or not np.isfinite(value):
        return "∞" if value is not None and value > 0 else "-"
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def _cell(m: dict[str, Any], key: str) -> str:
    """``0.836 ± 0.028`` for AUC and accuracy, ``15 (6.5–30)`` for rejections."""
    value = m.get(key)
    interval = (m.get("intervals") or {}).get(key)
    if key in ("auc", "accuracy"):
        if value is None:
            return "-"
        if interval and all(v is not None and np.isfinite(v) for v in interval):
            return f"{value:.3f} ± {(interval[1] - interval[0]) / 2:.3f}"
        return f"{value:.3f}"
    if value is None and m.get(key, 0) is None:
        value = float("inf")  # a saved report writes inf as null
    if interval and len(interval) == 2:
        lo, hi = (float("inf") if v is None else v for v in interval)
        if _num(lo) != _num(hi):
            return f"{_num(value)} ({_num(lo)}–{_num(hi)})"
    return _num(value)


def summary_table(title: str, entries: dict[str, dict[str, Any]], caption: str) -> Table:
    """Metrics of the tagger and the baselines, one row each, within 80 columns."""
    table = Table(
        title=title,
        title_justify="left",
        caption=caption,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
    )
    table.add_column("")
    for col in ("AUC", "accuracy", "1/εg @ 30%", "1/εg @ 50%"):
        table.add_column(col, justify="right")
    for name, m in entries.items():
        table.add_row(
            name,
            *(_cell(m, k) for k in ("auc", "accuracy", "rejection_at_30", "rejection_at_50")),
        )
    return table


def print_report(report: dict[str, Any]) -> None:
    """The report's headline numbers as a table and a few lines."""
    from ..report import tagger_name

    names = {"multiplicity": "multiplicity", "logistic_regression": "logistic regr."}
    entries = {}
    if report.get("metrics"):
        entries[tagger_name(report)] = report["metrics"]
    for key, metrics in (report.get("baselines") or {}).items():
        entries[names.get(key, key)] = metrics
    if entries:
        n = (report.get("metrics") or {}).get("n", report["n_labelled"])
        console.print(
            summary_table(
                f"quark/gluon tagging on {n} jets",
                entries,
                "±, (…): 68% intervals · 1/εg @ x%: gluon rejection at quark efficiency x%",
            )
        )
    if report.get("backend_note"):
        say(f"[yellow]{report['backend_note']} (these numbers say nothing about an LLM)[/]")
    errors = report["n_errors"]
    kinds = ", ".join(f"{k} {v}" for k, v in (report.get("errors_by_kind") or {}).items())
    parsed = ", ".join(f"{k} {v}" for k, v in (report.get("parsed_by") or {}).items())
    say(
        f"{report['n_jets']} jets: {report['n_labelled']} labelled, {errors} without label"
        f"{f' ({kinds})' if kinds else ''}, {report['cache_hits']} from the cache · answers "
        f"read by {parsed or 'nothing'}"
    )
    u = report["usage"]
    estimated = " (estimated)" if u["reasoning_estimated"] else ""
    if report["cache_hits"] >= report["n_jets"]:
        rec = u["per_jet_recorded"]
        say(
            f"all from the cache: nothing asked, nothing paid (when asked, per jet: "
            f"{rec['input_tokens']:,.0f} input, {rec['output_tokens']:,.0f} output tokens)"
        )
        return
    per = u["per_jet"]
    lat = report["latency"]
    say(
        f"per jet asked: {per['input_tokens']:,.0f} input, {per['output_tokens']:,.0f} output "
        f"tokens ({per['reasoning_tokens']:,.0f} reasoning{estimated}), ${per['cost']:.5f} · "
        f"latency p50 {lat['p50']:.2f} s, p90 {lat['p90']:.2f} s"
    )


def _settings(**flags: Any) -> Any:
    from ..config import load_settings

    return load_settings(**flags)


def _dataset_for(rows: list[dict[str, Any]], jets: str | None) -> Any:
    """The jets results index: ``--jets``, else the source the rows recorded (if found)."""
    from ..data import load_jets, load_sample

    if jets is not None:
        return open_jets(jets)
    source = rows[0].get("source")
    if source == "sample":
        return load_sample()
    if source and Path(source).exists():
        return load_jets(source)
    say(f"[yellow]jets {source!r} not found: no baselines (pass --jets)[/]")
    return None


def evaluate_file(results: Path, out: Path, jets: str | None = None) -> dict[str, Any]:
    """Build, print and write the report of a results file; returns the report."""
    from ..report import build_report, read_rows, save_report, write_plots

    rows = read_rows(results)
    if not rows:
        raise CLIError(f"{results}: no result rows")
    report = build_report(rows, _dataset_for(rows, jets))
    out.mkdir(parents=True, exist_ok=True)
    save_report(report, out / "report.json")
    plots = write_plots(report, out)
    print_report(report)
    say(f"report: {escape(str(out / 'report.json'))}")
    for plot in plots:
        say(f"plot:   {escape(str(plot))}")
    return report


# -- commands ---------------------------------------------------------------------------------


@app.command()
def tag(
    jets: JetsArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="Results file (JSONL).")],
    base_url: BaseUrl = None,
    model: Model = None,
    effort: Effort = None,
    template: Template = None,
    shots: Shots = None,
    concurrency: Concurrency = None,
    limit: Limit = None,
    balanced: Balanced = False,
    seed: Seed = None,
    emulate: Emulate = False,
    no_cache: NoCache = False,
    refresh: Refresh = False,
    reasoning: Annotated[
        bool, typer.Option(help="Keep each jet's reasoning and answer in the rows.")
    ] = False,
) -> None:
    """Tag jets and stream one JSON row per jet to OUTPUT as they finish (resumable)."""
    settings = _settings(
        base_url=base_url,
        model=model,
        effort=effort,
        template=template,
        shots=shots,
        concurrency=concurrency,
        seed=seed,
    )
    check_template(settings.template)
    dataset = open_jets(jets)
    selection = select(dataset, limit, balanced, seed)
    with server(emulate, settings) as backend:
        tagger = make_tagger(
            settings,
            backend,
            example_pool(),
            cache=not no_cache,
            refresh=refresh,
        )
        backend.announce()
        stats = tag_to_file(tagger, selection, output, backend=backend.kind, reasoning=reasoning)
    say(
        f"wrote {escape(str(output))}: {stats.resumed + stats.done} jets ({stats.resumed} kept "
        f"from before, {stats.cache_hits} from the cache, {stats.asked} asked), "
        f"{stats.errors} without label"
    )
    if stats.errors:
        say("[yellow]rerun the same command to ask again for the jets without label[/]")


@app.command()
def evaluate(
    results: Annotated[Path, typer.Argument(help="A results file from vjt tag.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for report.json and plots.")] = Path(
        "vjt-out"
    ),
    jets: Annotated[
        str | None, typer.Option(help="The jets the results index (default: as recorded).")
    ] = None,
) -> None:
    """Metrics with intervals beside the baselines, usage and latency; report.json and plots."""
    evaluate_file(results, out, jets)


@app.command()
def demo(
    jets: Annotated[int, typer.Option("--jets", help="Balanced jets from the sample.")] = 200,
    out: Annotated[Path, typer.Option("--out", help="Folder for results and report.")] = Path(
        "vjt-demo"
    ),
    effort: Effort = None,
    template: Template = None,
    seed: Annotated[int, typer.Option(help="Seed of the subset and the emulator.")] = 0,
) -> None:
    """The whole job on the embedded default: the emulated server, the bundled sample.

    Every run tags the jets afresh into OUT/results.jsonl, so a second run shows the cache
    at work (every jet a cache hit, nothing asked).
    """
    from ..data import load_sample

    settings = _settings(effort=effort, template=template, seed=seed)
    check_template(settings.template)
    if jets < 2 or jets % 2:
        raise CLIError(f"--jets must be an even number >= 2 (half quark, half gluon), got {jets}")
    sample = load_sample()
    selection = select(sample, jets, True, seed)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    with server(True, settings, seed=seed, **_EMULATOR_DEMO_LATENCY) as backend:
        tagger = make_tagger(settings, backend, example_pool(), cache=True, refresh=False)
        backend.announce()
        say(
            f"tagging {len(selection)} jets from the bundled sample with {settings.model} "
            f"(effort {settings.effort}, template {tagger.prompt.template.name}) · cache "
            f"{escape(str(tagger.cache.directory))}"
        )
        stats = tag_to_file(tagger, selection, results, backend=backend.kind, resume=False)
    report = evaluate_file(results, out, "sample")
    auc = (report.get("metrics") or {}).get("auc")
    baseline = (report.get("baselines") or {}).get("multiplicity", {}).get("auc")
    scores = "" if auc is None else f" · AUC {auc:.3f}"
    if auc is not None and baseline is not None:
        scores += f" (multiplicity {baseline:.3f})"
    say(
        f"[bold]demo done[/]: {stats.done} jets ({stats.cache_hits} from the cache, "
        f"{stats.asked} asked){scores}. For a model's numbers, run `vjt tag` with "
        "--base-url pointing at vLLM."
    )


def _split(values: str | None) -> list[str] | None:
    if values is None:
        return None
    items = [v.strip() for v in values.split(",") if v.strip()]
    if not items:
        raise CLIError(f"empty list {values!r}: give comma-separated values")
    return items


def _run_names(grid: list[dict[str, str]]) -> list[str]:
    """Short run names from the settings that vary (``low``, ``few_shot/high``...)."""
    short = {"model": lambda v: v.split("/")[-1], "template": lambda v: Path(v).stem}
    varying = [k for k in ("model", "template", "effort") if len({g[k] for g in grid}) > 1]
    keys = varying or ["effort"]
    names = ["/".join(short.get(k, str)(g[k]) for k in keys) for g in grid]
    if len(set(names)) < len(names):
        raise CLIError("the runs to compare are not all different: drop the repeated values")
    return names


@app.command()
def compare(
    jets: JetsArg,
    out: Annotated[Path, typer.Option("--out", help="Folder for results, table and plot.")] = Path(
        "vjt-compare"
    ),
    efforts: Annotated[
        str | None, typer.Option(help="Comma-separated efforts, e.g. low,medium,high.")
    ] = None,
    templates: Annotated[str | None, typer.Option(help="Comma-separated templates.")] = None,
    models: Annotated[str | None, typer.Option(help="Comma-separated model names.")] = None,
    base_url: BaseUrl = None,
    concurrency: Concurrency = None,
    limit: Limit = 100,
    seed: Seed = None,
    emulate: Emulate = False,
) -> None:
    """The same jets over several efforts, templates or models: one table, one ROC plot."""
    from ..report import build_report, read_rows

    base = _settings(base_url=base_url, concurrency=concurrency, seed=seed)
    for e in _split(efforts) or []:
        if e not in ("low", "medium", "high"):
            raise CLIError(f"invalid effort {e!r} in --efforts: use low, medium or high")
    grid = [
        {"effort": e, "template": t, "model": m}
        for e in _split(efforts) or [base.effort]
        for t in _split(templates) or [base.template]
        for m in _split(models) or [base.model]
    ]
    # Every setting is checked before any server starts or any jet is asked.
    runs = [_settings(**g, base_url=base_url, concurrency=concurrency, seed=seed) for g in grid]
    for settings in runs:
        check_template(settings.template)
    names = _run_names(grid)
    dataset = open_jets(jets)
    selection = select(dataset, limit, dataset.labels is not None, seed)
    examples = example_pool()
    out.mkdir(parents=True, exist_ok=True)
    reports: dict[str, dict[str, Any]] = {}
    served = sorted({g["model"] for g in grid})
    shared = server(True, runs[0], models=served) if emulate else contextlib.nullcontext(None)
    with shared as emulated:
        if emulated is not None:
            emulated.announce()
        for settings, name, g in zip(runs, names, grid, strict=True):
            own = contextlib.nullcontext(emulated) if emulate else server(False, settings)
            with own as backend:
                assert backend is not None
                if not emulate:
                    backend.announce()
                tagger = make_tagger(settings, backend, examples, cache=True, refresh=False)
                path = out / f"results-{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.jsonl"
                tag_to_file(tagger, selection, path, backend=backend.kind, description=name)
            reports[name] = build_report(read_rows(path), dataset, backend=backend.kind)
            reports[name]["settings"] = g
    _compare_outputs(reports, out, len(selection))


def _compare_outputs(reports: dict[str, dict[str, Any]], out: Path, n_jets: int) -> None:
    """The comparison table, ``roc.png`` and ``compare.json``."""
    from ..report import EMULATED_NOTE, draw_roc, save_report

    backends = {r["backend"] for r in reports.values()}
    backend = backends.pop() if len(backends) == 1 else "mixed"
    note = EMULATED_NOTE if backend in ("emulated", "mixed") else None

    table = Table(
        title=f"comparison on the same {n_jets} jets",
        title_justify="left",
        caption="tokens and seconds: per jet, as recorded when asked (cache hits included)",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
    )
    table.add_column("run", no_wrap=True)
    for col in ("AUC", "acc.", "1/εg@50%", "in tok", "out tok", "s/jet", "err"):
        table.add_column(col, justify="right", no_wrap=True)
    for name, report in reports.items():
        m = report.get("metrics") or {}
        rec = report["usage"]["per_jet_recorded"]
        table.add_row(
            name,
            "-" if m.get("auc") is None else f"{m['auc']:.3f}",
            "-" if m.get("accuracy") is None else f"{m['accuracy']:.3f}",
            _num(m.get("rejection_at_50")) if m else "-",
            f"{rec['input_tokens']:,.0f}",
            f"{rec['output_tokens']:,.0f}",
            f"{rec['latency']:.2f}",
            str(report["n_errors"]),
        )

    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.8))
    ax = fig.subplots()
    entries = []
    baselines: dict[str, Any] = {}
    for name, report in reports.items():
        curves = report.get("_curves") or {}
        if "llm" in curves:
            y, score = curves["llm"]
            label = f"{name} (AUC {report['metrics']['auc']:.3f})"
            entries.append((label, y, score, {"lw": 2}))
        for curve, (y, score) in curves.items():
            if curve != "llm" and curve not in baselines:
                auc = report["baselines"][curve]["auc"]
                label = f"{curve.replace('_', ' ')} (AUC {auc:.3f})"
                baselines[curve] = (label, y, score, {"lw": 1.2, "ls": "--"})
    draw_roc(
        ax,
        [*entries, *baselines.values()],
        title=f"{n_jets} jets, {len(reports)} settings",
        note=note,
    )
    fig.tight_layout()
    fig.savefig(out / "roc.png", dpi=130)

    save_report(
        {
            "backend": backend,
            "backend_note": note,
            "n_jets": n_jets,
            "runs": {
                n: {k: v for k, v in r.items() if not k.startswith("_")} for n, r in reports.items()
            },
        },
        out / "compare.json",
    )
    console.print(table)
    if note:
        say(f"[yellow]{note} (these numbers say nothing about an LLM)[/]")
    say(f"plot:   {escape(str(out / 'roc.png'))}")
    say(f"table:  {escape(str(out / 'compare.json'))}")
