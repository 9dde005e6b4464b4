"""``vjt generate`` (Pythia jets to an npz) and ``vjt baselines`` (multiplicity and LR)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from .app import CLIError, app, console, out
from .run import open_jets

__all__ = ["baselines", "generate"]


class _RateColumn(ProgressColumn):
    """Jets per second since the start: the rate the summary line gives at the end.

    Not rich's moving estimate, which counts only the last few updates: jets come in bursts
    from the worker processes after their start-up, so it showed e.g. 18.7 jets/s beside a
    summary of 0.6 jets/s.
    """

    def render(self, task: Task) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        if not elapsed or not task.completed:
            return Text("-- jets/s", style="cyan")
        return Text(f"{task.completed / elapsed:.1f} jets/s", style="cyan")


@app.command()
def generate(
    jets: Annotated[int, typer.Option("--jets", "-n", min=2, help="Number of jets (half quark).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The .npz file to write.")],
    seed: Annotated[int, typer.Option("--seed", "-s", min=0, help="Random seed.")] = 0,
    workers: Annotated[
        int | None,
        typer.Option("--workers", "-w", min=1, help="Worker processes (default: all cores)."),
    ] = None,
    with_bc: Annotated[
        bool, typer.Option("--with-bc", help="Keep jets from c and b quarks (vetoed by default).")
    ] = False,
) -> None:
    """Generate quark and gluon jets with Pythia 8 + FastJet (EnergyFlow's recipe)."""
    from ..jets.generate import generate_jets, save_jets

    if output.suffix != ".npz":
        raise CLIError(f"{output}: the output file must end in .npz")
    if output.is_dir():
        raise CLIError(f"{output}: is a folder, expected a .npz file name")
    start = time.perf_counter()
    with Progress(
        TextColumn("[bold]generating"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("jets", total=jets)
        X, y, meta = generate_jets(
            jets,
            seed,
            workers=workers,
            with_bc=with_bc,
            progress=lambda done: bar.update(task, completed=done),
        )
    elapsed = time.perf_counter() - start  # the time the bar's rate counts, saving not included
    save_jets(output, X, y, meta)
    size_mb = output.stat().st_size / 1e6
    out.print(
        f"wrote {len(X)} jets ({meta['n_quark']} quark, {meta['n_gluon']} gluon; "
        f"up to {X.shape[1]} constituents) to {output} ({size_mb:.1f} MB) "
        f"in {elapsed:.0f} s ({len(X) / elapsed:.1f} jets/s)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def _json_safe(value: Any) -> Any:
    """Replace inf/nan (not valid JSON) by None, numpy scalars by Python numbers."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "tolist"):
        return _json_safe(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _fmt_rejection(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.1f}"


@app.command()
def baselines(
    jets: Annotated[str, typer.Argument(help="An .npz file, a folder of them, or 'sample'.")],
    json_out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the metrics as JSON here.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", min=2, help="Use only the first N jets.")
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", "-s", min=0, help="Seed of the folds and the bootstrap.")
    ] = 0,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples for the intervals.")
    ] = 1000,
    with_scores: Annotated[
        bool, typer.Option("--with-scores", help="Also write every jet's score to the JSON.")
    ] = False,
) -> None:
    """Multiplicity cut and logistic regression on jet observables: AUC, accuracy, rejection.

    Accuracies are at the best cut on these jets (an optimistic reference). The logistic
    regression scores each jet with a model fitted on the other folds (5-fold CV).
    """
    dataset = open_jets(jets)  # a missing file is answered before scikit-learn loads
    from ..evaluation.baselines import run_baselines

    if limit is not None:
        dataset = dataset[:limit]
    if dataset.labels is None:
        raise CLIError(f"{dataset.source}: the jets have no labels 'y'; baselines need them")
    results = run_baselines(dataset, seed=seed, n_bootstrap=bootstrap)

    level = next(iter(results.values()))["interval_level"]
    table = Table(
        title=Text(f"Baselines on {len(dataset)} jets from {dataset.source}"),
        caption=(
            f"AUC [{level:.0%} bootstrap interval]; acc.: accuracy at the best cut on these "
            "jets; R(x): gluon rejection 1/eps_g at quark efficiency x"
        ),
    )
    for header in ("baseline", "AUC", "acc.", "R(30%)", "R(50%)"):
        table.add_column(header, justify="left" if header == "baseline" else "right", no_wrap=True)
    for name, res in results.items():
        auc = f"{res['auc']:.3f}"
        if "auc" in res["intervals"]:
            lo, hi = res["intervals"]["auc"]
            auc += f" [{lo:.3f}, {hi:.3f}]"
        table.add_row(
            name,
            auc,
            f"{res['accuracy']:.3f}",
            _fmt_rejection(res["rejection_at_30"]),
            _fmt_rejection(res["rejection_at_50"]),
        )
    out.print(table)
    if json_out is not None:
        payload = {}
        for name, res in results.items():
            entry = {k: v for k, v in res.items() if k not in ("scores", "indices")}
            if with_scores:
                entry["indices"] = res["indices"]
                entry["scores"] = res["scores"]
            payload[name] = _json_safe(entry)
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(payload, indent=2) + "\n")
        out.print(f"wrote {json_out}", markup=False, highlight=False, soft_wrap=True)
