"""``vjt demo``: the whole job on the embedded default (emulated server, bundled sample)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from .app import CLIError, app
from .evaluate import evaluate_file
from .options import Effort, MaxRetries, MaxTokens, Temperature, Template, Timeout
from .render import show
from .run import (
    check_template,
    example_pool,
    make_tagger,
    say,
    select,
    server,
    settings_from,
)
from .tagfile import tag_to_file


@app.command()
def demo(
    jets: Annotated[int, typer.Option("--jets", help="Balanced jets from the sample.")] = 200,
    out: Annotated[Path, typer.Option("--out", help="Folder for results and report.")] = Path(
        "vjt-demo"
    ),
    effort: Effort = None,
    template: Template = None,
    seed: Annotated[int, typer.Option(help="Seed of the subset and the emulator.")] = 0,
    max_tokens: MaxTokens = None,
    timeout: Timeout = None,
    max_retries: MaxRetries = None,
    temperature: Temperature = None,
) -> None:
    """The whole job on the embedded default: the emulated server, the bundled sample.

    Every run tags the jets afresh into OUT/results.jsonl, so a second run shows the cache
    at work (every jet a cache hit, nothing asked).
    """
    from ..evaluation.report import fmt_fraction
    from ..jets.dataset import load_sample

    settings = settings_from(
        effort=effort,
        template=template,
        seed=seed,
        max_tokens=max_tokens,
        timeout=timeout,
        max_retries=max_retries,
        temperature=temperature,
    )
    check_template(settings.template)
    if jets < 2 or jets % 2:
        raise CLIError(f"--jets must be an even number >= 2 (half quark, half gluon), got {jets}")
    sample = load_sample()
    selection = select(sample, jets, True, seed)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    with server(True, settings, seed=seed) as backend:  # the emulator's "demo" latency
        tagger = make_tagger(settings, backend, example_pool(), cache=True, refresh=False)
        backend.announce()
        say(
            f"tagging {len(selection)} jets from the bundled sample with {settings.model} "
            f"(effort {settings.effort}, template {tagger.prompt.template.name}) · cache "
            f"{escape(str(tagger.cache.directory))}"
        )
        stats = tag_to_file(tagger, selection, results, backend=backend.kind, resume=False)
    report = evaluate_file(
        results, out, "sample", server=backend.shown, command=f"vjt demo --jets {jets}"
    )
    scores = ""
    m = report.get("metrics") or {}
    base = (report.get("baselines") or {}).get("multiplicity") or {}
    if m.get("auc") is not None:
        scores = f" · AUC {fmt_fraction(m['auc'], m['intervals'].get('auc'))}"
        if base.get("auc") is not None:
            scores += f" (multiplicity {fmt_fraction(base['auc'], base['intervals'].get('auc'))})"
    show(
        f"[bold]demo done[/]: {stats.done} jets ({stats.cache_hits} from the cache, "
        f"{stats.asked} asked){scores}. For a model's numbers, run `vjt tag` with "
        "--base-url pointing at vLLM."
    )
