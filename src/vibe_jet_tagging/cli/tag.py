"""``vjt tag``, ``vjt evaluate``, ``vjt compare`` and ``vjt demo``: the main job."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .app import CLIError, app, console

JetsArg = Annotated[
    str,
    typer.Argument(help="An EnergyFlow-format .npz file, a folder of QG_jets*.npz, or 'sample'."),
]
BaseUrl = Annotated[str | None, typer.Option(help="The vLLM server [env VJT_BASE_URL].")]
Model = Annotated[str | None, typer.Option(help="Served model name [env VJT_MODEL].")]
Effort = Annotated[str | None, typer.Option(help="Reasoning effort: low, medium or high.")]
Template = Annotated[str | None, typer.Option(help="Prompt template name or YAML path.")]
Shots = Annotated[int | None, typer.Option(help="Few-shot examples (overrides the template).")]
Concurrency = Annotated[int | None, typer.Option(help="Requests in flight at once.")]
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


# -- shared steps -------------------------------------------------------------------------------


def open_jets(spec: str) -> Any:
    """The data set named on the command line ('sample' or a path)."""
    from ..data import load_jets, load_sample

    if spec == "sample":
        return load_sample()
    path = Path(spec)
    if not path.exists():
        raise CLIError(f"{path}: no such jets file or folder")
    return load_jets(path)


def select(dataset: Any, limit: int | None, balanced: bool, seed: int | None) -> Any:
    """The first ``limit`` jets, or a seeded balanced subset of ``limit``."""
    if limit is None:
        return dataset
    if limit < 1:
        raise CLIError(f"--limit must be positive, got {limit}")
    if balanced:
        return dataset.balanced(limit, seed=seed or 0)
    return dataset.head(min(limit, len(dataset)))


def example_pool(dataset: Any, selection: Any) -> Any:
    """Few-shot examples: the bundled sample, minus the jets being tagged when it is them."""
    from ..data import load_sample

    sample = load_sample()
    if dataset.source != "sample":
        return sample
    keep = np.setdiff1d(np.arange(len(sample)), np.asarray(selection.indices))
    return sample[keep]


@contextlib.contextmanager
def server(emulate: bool, settings: Any, **emulator_options: Any) -> Iterator[str]:
    """The base URL to use: an emulated server started for the command, or the settings'."""
    from ..errors import ServerError
    from ..model import check_server

    if not emulate:
        try:
            check_server(settings.base_url, settings.model, settings.api_key.get_secret_value())
        except ServerError as exc:
            raise CLIError(
                f"{exc}. Start vLLM there (`vllm serve {settings.model}`), point --base-url "
                "at it, or pass --emulate to use the built-in emulated server."
            ) from None
        yield settings.base_url
        return
    from ..emulator import EmulatedServer

    with EmulatedServer(models=[settings.model], **emulator_options) as emulated:
        console.print(
            f"[dim]emulated vLLM server on {emulated.base_url} "
            "(answers from a physics heuristic, not a language model)[/]"
        )
        yield emulated.base_url


def make_tagger(settings: Any, base_url: str, examples: Any, *, cache: bool, refresh: bool) -> Any:
    """A :class:`JetTagger` from the command's settings."""
    from ..cache import ResultCache
    from ..chain import JetTagger

    return JetTagger(
        settings.model,
        base_url=base_url,
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
        cache=ResultCache(settings.cache_dir / "results")
        if cache and settings.cache_dir
        else cache,
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

    def add(self, row: dict[str, Any]) -> None:
        self.done += 1
        self.errors += row.get("error") is not None
        self.cache_hits += bool(row.get("cached"))
        if not row.get("cached"):
            self.tokens += (row.get("input_tokens") or 0) + (row.get("output_tokens") or 0)

    def line(self) -> str:
        rate = self.done / max(time.perf_counter() - self.started, 1e-9)
        return (
            f"errors {self.errors} · cached {self.cache_hits} · tokens {self.tokens:,} · "
            f"{rate:.1f} jets/s"
        )


def tag_to_file(
    tagger: Any,
    selection: Any,
    output: Path,
    *,
    reasoning: bool = False,
    description: str = "tagging",
) -> RunStats:
    """Tag ``selection`` into ``output`` (JSONL), resuming a previous run of the same settings.

    Rows already in ``output`` for the same jets and settings (same cache key) without an
    error are kept; everything else is asked for (through the cache).
    """
    from ..report import JsonlWriter, read_rows, result_row

    labels = selection.labels
    source = selection.source
    positions = {int(idx): p for p, idx in enumerate(np.asarray(selection.indices))}
    kept: dict[int, dict[str, Any]] = {}
    if output.exists():
        for row in read_rows(output):
            p = positions.get(row.get("index"))
            if p is not None and row.get("error") is None and row.get("source") == source:
                kept[p] = row
        if kept:
            # Same settings? Compare the keys the rows were made with.
            kept = {p: r for p, r in kept.items() if r.get("key") == tagger.key_for(selection[p])}
    todo = [p for p in range(len(selection)) if p not in kept]
    stats = RunStats(resumed=len(kept))
    if kept:
        console.print(f"resuming {output}: {len(kept)} jets already tagged, {len(todo)} to go")
    jets = selection[np.array(todo, dtype=np.intp)] if todo else []

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeRemainingColumn(),
        console=console,
    )

    async def stream() -> None:
        async for i, outcome in tagger.abatch_as_completed(jets, return_exceptions=True):
            p = todo[i]
            truth = None if labels is None else int(labels[p])
            row = result_row(
                outcome,
                index=int(selection.indices[p]),
                truth=truth,
                source=source,
                reasoning=reasoning,
            )
            writer.write(row)
            stats.add(row)
            progress.update(task, advance=1, stats=stats.line())

    with JsonlWriter(output, kept.values()) as writer, progress:
        task = progress.add_task(description, total=len(selection), completed=len(kept), stats="")
        asyncio.run(stream())
    return stats


def _summary_table(title: str, entries: dict[str, dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("", "AUC", "accuracy", "1/ε_g @ ε_q=30%", "1/ε_g @ ε_q=50%"):
        table.add_column(col, justify="right" if col else "left")

    def fmt(m: dict[str, Any], key: str) -> str:
        value = m.get(key)
        if value is None or not np.isfinite(value):
            return "∞" if value is not None else "-"
        interval = (m.get("intervals") or {}).get(key)
        if interval and all(v is not None and np.isfinite(v) for v in interval):
            return (
                f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"
                if key in ("auc", "accuracy")
                else f"{value:.1f} [{interval[0]:.1f}, {interval[1]:.1f}]"
            )
        return f"{value:.3f}" if key in ("auc", "accuracy") else f"{value:.1f}"

    for name, m in entries.items():
        table.add_row(
            name,
            fmt(m, "auc"),
            fmt(m, "accuracy"),
            fmt(m, "rejection_at_30"),
            fmt(m, "rejection_at_50"),
        )
    return table


def evaluate_file(results: Path, out: Path, jets: str | None = None) -> dict[str, Any]:
    """Build, print and write the report of a results file; returns the report."""
    from ..data import load_jets, load_sample
    from ..report import build_report, read_rows, save_report, write_plots

    rows = read_rows(results)
    if not rows:
        raise CLIError(f"{results}: no result rows")
    source = jets or rows[0].get("source")
    dataset = None
    if source == "sample":
        dataset = load_sample()
    elif source and Path(source).exists():
        dataset = load_jets(source)
    else:
        console.print(f"[yellow]jets {source!r} not found: no baselines (pass --jets)[/]")
    report = build_report(rows, dataset)
    out.mkdir(parents=True, exist_ok=True)
    save_report(report, out / "report.json")
    plots = write_plots(report, out)
    print_report(report)
    console.print(f"report: {out / 'report.json'}")
    for plot in plots:
        console.print(f"plot:   {plot}")
    return report


def print_report(report: dict[str, Any]) -> None:
    """The report's headline numbers as a table and a few lines."""
    entries = {}
    if report.get("metrics"):
        entries["LLM"] = report["metrics"]
    entries.update(report.get("baselines") or {})
    if entries:
        console.print(_summary_table("quark/gluon tagging (68 % intervals)", entries))
    u = report["usage"]
    per = u["per_jet"]
    console.print(
        f"{report['n_jets']} jets: {report['n_labelled']} labelled, {report['n_errors']} "
        f"without label {report['errors_by_kind'] or ''}, {report['cache_hits']} from cache · "
        f"parsed by {report['parsed_by']}"
    )
    estimated = " (reasoning estimated)" if u["reasoning_estimated"] else ""
    console.print(
        f"per jet asked: {per['input_tokens']:.0f} input, {per['output_tokens']:.0f} output, "
        f"{per['reasoning_tokens']:.0f} reasoning tokens{estimated}, ${per['cost']:.5f}; "
        f"latency p50 {report['latency']['p50']:.2f} s, p90 {report['latency']['p90']:.2f} s"
    )


def _settings(**flags: Any) -> Any:
    from ..config import load_settings

    return load_settings(**flags)


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
    dataset = open_jets(jets)
    selection = select(dataset, limit, balanced, seed)
    with server(emulate, settings) as url:
        tagger = make_tagger(
            settings, url, example_pool(dataset, selection), cache=not no_cache, refresh=refresh
        )
        stats = tag_to_file(tagger, selection, output, reasoning=reasoning)
    console.print(
        f"wrote {output}: {stats.done + stats.resumed} jets ({stats.resumed} kept from before), "
        f"{stats.errors} without label, {stats.cache_hits} from cache"
    )
    if stats.errors:
        console.print("[yellow]rerun the same command to ask again for the jets without label[/]")


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
    """The whole job on the embedded default: the emulated server, the bundled sample."""
    from ..data import load_sample

    settings = _settings(effort=effort, template=template, seed=seed)
    sample = load_sample()
    selection = select(sample, jets, True, seed)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    with server(True, settings, seed=seed, **_EMULATOR_DEMO_LATENCY) as url:
        tagger = make_tagger(
            settings, url, example_pool(sample, selection), cache=True, refresh=False
        )
        console.print(
            f"tagging {len(selection)} jets from the bundled sample with {settings.model} "
            f"(effort {settings.effort}, template {tagger.prompt.template.name}) · cache "
            f"{escape(str(tagger.cache.directory))}"
        )
        tag_to_file(tagger, selection, results)
    evaluate_file(results, out, "sample")


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
    from ..report import build_report, read_rows, save_report

    base = _settings(base_url=base_url, concurrency=concurrency, seed=seed)
    grid = [
        {"effort": e, "template": t, "model": m}
        for e in (efforts.split(",") if efforts else [base.effort])
        for t in (templates.split(",") if templates else [base.template])
        for m in (models.split(",") if models else [base.model])
    ]
    dataset = open_jets(jets)
    selection = select(dataset, limit, dataset.labels is not None, seed)
    examples = example_pool(dataset, selection)
    out.mkdir(parents=True, exist_ok=True)
    reports: dict[str, dict[str, Any]] = {}
    first = _settings(**grid[0], base_url=base_url, seed=seed)
    served = sorted({g["model"] for g in grid})
    shared = server(True, first, models=served) if emulate else contextlib.nullcontext(None)
    with shared as emulated_url:
        for g in grid:
            settings = _settings(**g, base_url=base_url, concurrency=concurrency, seed=seed)
            name = f"{g['model'].split('/')[-1]}-{g['effort']}-{Path(g['template']).stem}"
            own = contextlib.nullcontext(emulated_url) if emulate else server(False, settings)
            with own as url:
                tagger = make_tagger(settings, url, examples, cache=True, refresh=False)
                path = out / f"results-{name}.jsonl"
                tag_to_file(tagger, selection, path, description=name)
            reports[name] = build_report(read_rows(path), dataset)
    _compare_outputs(reports, out)
    save_report(
        {n: {k: v for k, v in r.items() if not k.startswith("_")} for n, r in reports.items()},
        out / "compare.json",
    )


def _compare_outputs(reports: dict[str, dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    table = Table(title="comparison on the same jets", title_justify="left")
    for col in ("run", "accuracy", "AUC", "1/ε_g@50%", "tokens/jet", "s/jet", "errors"):
        table.add_column(col, justify="left" if col == "run" else "right")
    fig, ax = plt.subplots(figsize=(6, 4.8))
    baselines_drawn = False
    for name, report in reports.items():
        m = report.get("metrics") or {}
        per = report["usage"]["per_jet"]
        table.add_row(
            name,
            f"{m.get('accuracy', float('nan')):.3f}",
            f"{m.get('auc', float('nan')):.3f}",
            "∞"
            if not np.isfinite(m.get("rejection_at_50") or np.inf)
            else f"{m['rejection_at_50']:.1f}",
            f"{per['input_tokens'] + per['output_tokens']:.0f}",
            f"{per['latency']:.2f}",
            str(report["n_errors"]),
        )
        for curve, (y, score) in (report.get("_curves") or {}).items():
            if curve != "llm" and baselines_drawn:
                continue
            fpr, tpr, _ = roc_curve(y, score)
            label = name if curve == "llm" else curve.replace("_", " ")
            ax.plot(tpr, fpr, label=label, ls="-" if curve == "llm" else "--")
        baselines_drawn = True
    ax.set(
        xlabel="quark efficiency ε_q",
        ylabel="gluon mistag rate ε_g",
        yscale="log",
        ylim=(1e-3, 1.05),
        xlim=(0, 1),
    )
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "roc.png", dpi=130)
    plt.close(fig)
    console.print(table)
    console.print(f"plot: {out / 'roc.png'}")
