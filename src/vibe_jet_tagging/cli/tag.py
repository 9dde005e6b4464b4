"""``vjt tag``: tag jets into a results file (JSONL), streamed and resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from .app import RunIncomplete, app
from .options import (
    Balanced,
    BaseUrl,
    Concurrency,
    Effort,
    Emulate,
    JetsArg,
    Limit,
    MaxRetries,
    MaxTokens,
    Model,
    NoCache,
    Refresh,
    Seed,
    Shard,
    SharedCache,
    Shots,
    Temperature,
    Template,
    Timeout,
    Trust,
)
from .run import (
    check_template,
    example_pool,
    make_tagger,
    open_jets,
    say,
    select,
    server,
    settings_from,
)
from .tagfile import tag_to_file


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
    shard: Shard = None,
    emulate: Emulate = False,
    no_cache: NoCache = False,
    refresh: Refresh = False,
    shared_cache: SharedCache = False,
    reasoning: Annotated[
        bool, typer.Option("--reasoning", help="Keep each jet's reasoning and answer in the rows.")
    ] = False,
    max_tokens: MaxTokens = None,
    timeout: Timeout = None,
    max_retries: MaxRetries = None,
    temperature: Temperature = None,
    trust: Trust = None,
) -> None:
    """Tag jets and stream one JSON row per jet to OUTPUT as they finish (resumable).

    Exit status: 0 when every jet has a row and no server failure left one without an
    answer; 1 when server failures did (rerun to ask again); 2 for bad input or a server that
    cannot be used; 130 on Ctrl-C, 143 on SIGTERM (rows written so far are kept).
    """
    settings = settings_from(
        max_tokens=max_tokens,
        timeout=timeout,
        max_retries=max_retries,
        temperature=temperature,
        base_url=base_url,
        model=model,
        effort=effort,
        template=template,
        shots=shots,
        concurrency=concurrency,
        seed=seed,
        shared_cache=shared_cache or None,
    )
    dataset = open_jets(jets)  # a missing file is answered before the template stack loads
    check_template(settings.template)
    selection = select(dataset, limit, balanced, seed, shard)
    with server(emulate, settings) as backend:
        tagger = make_tagger(
            settings,
            backend,
            example_pool(),
            cache=not no_cache,
            refresh=refresh,
        )
        backend.announce()
        stats = tag_to_file(
            tagger,
            selection,
            output,
            backend=backend.kind,
            reasoning=reasoning,
            trusted=frozenset(str(path) for path in trust or ()),
        )
    say(
        f"wrote {escape(str(output))}: {stats.resumed + stats.done} jets ({stats.resumed} kept "
        f"from before, {stats.cache_hits} from the cache, {stats.asked} asked), "
        f"{stats.errors} without label"
    )
    if len(stats.servers) > 1:
        say(
            "per server: "
            + ", ".join(
                f"{escape(s['base_url'])} {s['ok']} answered, {s['failed']} failed"
                for s in stats.servers
            )
        )
    if stats.invalid:
        say(f"[yellow]invalid data: {stats.invalid} jets cannot be tagged (their rows say why)[/]")
    if stats.imported:
        say(f"[yellow]{stats.imported} rows are imported from a trusted file, not your runs[/]")
    if stats.retryable:
        say("[yellow]rerun the same command to ask again for the jets without label[/]")
    if stats.server_failures:
        raise RunIncomplete(
            f"{stats.server_failures} of {stats.resumed + stats.done} jets got no answer because "
            "the server failed (their rows say why); rerun the same command to ask again"
        )
