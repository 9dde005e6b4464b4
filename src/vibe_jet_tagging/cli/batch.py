"""``vjt batch export | import``: offline batch files (``vllm run-batch``, OpenAI Batch API).

Export writes request files whose bodies are what ``vjt tag`` would send (``custom_id`` = the
cache key; jets in the cache are left out) and a manifest (see :mod:`.batchdir`). Import reads
the output files through the tagger's parser into the rows ``vjt tag`` writes, fills the cache,
and records the answers that need a re-ask for a second round (``export --reasks``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from .app import CLIError, CommandGroup, app
from .batchdir import (
    FORMAT,
    JETS,
    MANIFEST,
    REASK_REQUESTS,
    REQUESTS,
    SETTINGS,
    RequestFiles,
    find_folder,
    new_folder,
    read_index,
    read_manifest,
    read_reasks,
    write_json,
    write_reasks,
)
from .options import (
    Balanced,
    BaseUrl,
    Effort,
    Limit,
    MaxTokens,
    Model,
    NoCache,
    Refresh,
    Seed,
    Shots,
    Temperature,
    Template,
)
from .run import (
    Backend,
    check_template,
    example_pool,
    make_tagger,
    open_jets,
    say,
    select,
    server,
    settings_from,
)

batch_app = typer.Typer(
    cls=CommandGroup,
    help="Offline batch files for vllm run-batch and the OpenAI Batch API.",
    no_args_is_help=True,
)
app.add_typer(batch_app, name="batch")

Folder = Annotated[Path, typer.Option("-o", "--output", help="The export folder.")]


def _recorded(settings: Any) -> dict[str, Any]:
    """The settings that shape a request, a template file's path made absolute."""
    values = {name: getattr(settings, name) for name in SETTINGS}
    if Path(values["template"]).is_file():
        values["template"] = str(Path(values["template"]).resolve())
    values["structured_output"] = settings.structured_output
    return values


def _server_record(info: Any) -> dict[str, Any]:
    """A :class:`ServerInfo` as JSON (what the manifest says will answer)."""
    models = [dataclasses.asdict(card) for card in info.models]
    return {"base_url": info.base_url, "version": info.version, "models": models}


def _tagger(manifest: dict[str, Any], folder: Path, *, cache: bool) -> tuple[Any, Any]:
    """The tagger of an export (checked to have its settings key), and its backend.

    It takes the server the manifest recorded as its own (none is asked).
    """
    from ..config import Settings
    from ..servers.info import ModelCard, ServerInfo

    settings = Settings(**manifest["settings"])  # recorded values win over env and config
    backend = manifest["backend"]
    tagger = make_tagger(
        settings,
        Backend(settings.base_urls, backend == "emulated"),
        example_pool(),
        cache=cache,
        refresh=False,
    )
    recorded = manifest["server"]
    cards = tuple(ModelCard(**card) for card in recorded["models"])
    tagger.assume_server(ServerInfo(recorded["base_url"], cards, recorded["version"]))
    if tagger.settings_key != manifest["settings_key"]:
        raise CLIError(
            f"{folder / MANIFEST}: this vjt makes other settings of it (a changed template "
            "file, few-shot pool or vjt version): its answers cannot be read as the export's"
        )
    return tagger, backend


# -- export ---------------------------------------------------------------------------------------


@batch_app.command("export")
def export(
    output: Folder,
    jets: Annotated[
        str | None,
        typer.Argument(help="An EnergyFlow-format .npz, a folder of them, or 'sample'."),
    ] = None,
    shard_size: Annotated[
        int, typer.Option(help="Request lines per file (the OpenAI Batch API takes 50,000).")
    ] = 50_000,
    reasks: Annotated[
        bool,
        typer.Option(
            "--reasks", help="Write the re-ask round of the answers the last import set aside."
        ),
    ] = False,
    constraint: Annotated[
        str,
        typer.Option(
            help="What will answer takes: regex, vLLM's structured_outputs (vLLM >= 0.10.2, "
            "run-batch); response_format, a JSON schema (OpenAI, older vLLM); server: ask the "
            "server at --base-url what it is (then --weights and --emulated are its)."
        ),
    ] = "regex",
    weights: Annotated[
        str | None,
        typer.Option(
            help="The weights the batch runner loads (vLLM's --model; default: --model): part "
            "of the cache key, as the root /v1/models reports."
        ),
    ] = None,
    emulated: Annotated[
        bool,
        typer.Option(
            "--emulated",
            help="The emulated server will answer (tests, demos): use its cache, mark its rows.",
        ),
    ] = False,
    base_url: BaseUrl = None,
    model: Model = None,
    effort: Effort = None,
    template: Template = None,
    shots: Shots = None,
    seed: Seed = None,
    limit: Limit = None,
    balanced: Balanced = False,
    max_tokens: MaxTokens = None,
    temperature: Temperature = None,
    no_cache: NoCache = False,
    refresh: Refresh = False,
) -> None:
    """Write request files for the jets not in the cache, and a manifest, into OUTPUT."""
    if reasks:
        _export_reasks(output, shard_size)
        return
    if jets is None:
        raise CLIError("give the jets to export (or --reasks -o DIR for a re-ask round)")
    if constraint not in ("regex", "response_format", "server"):
        raise CLIError(f"--constraint {constraint!r}: use regex, response_format or server")
    settings = settings_from(
        base_url=base_url,
        model=model,
        effort=effort,
        template=template,
        shots=shots,
        seed=seed,
        max_tokens=max_tokens,
        temperature=temperature,
    )
    check_template(settings.template)
    selection = select(open_jets(jets), limit, balanced, seed)
    new_folder(output)
    from ..scale.batchfiles import offline_server

    if constraint == "server":  # what the server is: asked here, and by the tagger
        with server(False, settings) as backend:
            pass
    else:
        backend = Backend(settings.base_urls, emulated)
    tagger = make_tagger(settings, backend, example_pool(), cache=not no_cache, refresh=refresh)
    if constraint != "server":
        tagger.assume_server(
            offline_server(
                settings.model,
                constraint=constraint,  # type: ignore[arg-type]
                emulated=emulated,
                root=weights,
            )
        )
    _write_export(tagger, selection, output, shard_size, backend, settings)


def _write_export(
    tagger: Any,
    selection: Any,
    folder: Path,
    shard_size: int,
    backend: Backend,
    settings: Any,
) -> None:
    from ..scale.batchfiles import constraint_of, export_jets

    resolved = constraint_of(tagger)
    files = RequestFiles(folder, REQUESTS, shard_size)
    labels, indices = selection.labels, selection.indices
    jets = cached = invalid = 0
    items = export_jets(tagger, selection.jets_or_errors())
    with (folder / JETS).open("w", encoding="utf-8") as listed:
        for item in items:
            record: dict[str, Any] = {
                "index": int(indices[item.position]),
                "truth": None if labels is None else int(labels[item.position]),
            }
            if item.error is not None:  # kept, to be the input error row vjt tag writes
                record["error"] = str(item.error)
                invalid += 1
            else:
                record.update(custom_id=item.key, jet_key=item.jet_key, asked=item.asked)
                cached += not item.asked
            listed.write(json.dumps(record, separators=(",", ":")) + "\n")
            jets += 1
            if item.request is not None:
                files.write(item.request)
    files.close()
    from .. import __version__

    write_json(
        folder / MANIFEST,
        {
            "format": FORMAT,
            "vjt_version": __version__,
            "source": selection.source,
            "jets": jets,
            "requests": files.lines,
            "cached": cached,
            "invalid": invalid,
            "request_files": files.files,
            "reask_files": [],
            "settings": _recorded(settings),
            "settings_key": tagger.settings_key,
            "model": tagger.model_name,
            "constraint": resolved,
            "server": _server_record(tagger.server_info()),
            "backend": backend.kind,
            "url": "/v1/chat/completions",
        },
    )
    say(
        f"wrote {files.lines} requests in {len(files.files)} files to {escape(str(folder))} "
        f"({jets} jets, {cached} already in the cache or repeated; constraint {resolved})"
    )
    if invalid:
        say(f"[yellow]invalid data: {invalid} jets cannot be tagged (import writes why)[/]")
    if files.files:
        first = folder / files.files[0]
        # The weights to load, served under the name the cache keys hold (vLLM answers with
        # the served name): --model DIR --served-model-name NAME when they differ.
        info = None if backend.emulated else tagger.server_info()
        card = info.card(tagger.model_name) if info is not None else None
        name = tagger.model_name
        model = name
        if card is not None and card.root and card.root != name:
            model = f"{card.root} --served-model-name {name}"
        say(
            f"next: vllm run-batch -i {escape(str(first))} -o OUT.jsonl --model "
            f"{escape(model)} (one per file), then vjt batch import OUT*.jsonl "
            f"--export {escape(str(folder))} -o results.jsonl"
        )


def _export_reasks(folder: Path, shard_size: int) -> None:
    from ..scale.batchfiles import reask_request

    manifest = read_manifest(folder)
    tagger, _ = _tagger(manifest, folder, cache=False)
    index, _ = read_index(folder)
    dataset = open_jets(manifest["source"])
    files = RequestFiles(folder, REASK_REQUESTS, shard_size)
    files.remove_old()
    for reask in read_reasks(folder):
        jets = index.jets(reask.custom_id)
        if not jets or jets[0][1] is None:
            raise CLIError(f"{folder}: re-ask {reask.custom_id} is not a jet of this export")
        files.write(reask_request(tagger, dataset[jets[0][1]], reask))
    files.close()
    manifest["reask_files"] = files.files
    write_json(folder / MANIFEST, manifest)
    say(
        f"wrote {files.lines} re-ask requests in {len(files.files)} files to "
        f"{escape(str(folder))}: run them like the first round, then import the outputs of "
        "both rounds together"
    )


# -- import ---------------------------------------------------------------------------------------


@batch_app.command("import")
def import_(
    outputs: Annotated[list[Path], typer.Argument(help="Output files of vllm run-batch.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Results file (JSONL).")],
    export: Annotated[
        Path | None,
        typer.Option(help="The export folder (default: the first output file's folder)."),
    ] = None,
    no_cache: NoCache = False,
) -> None:
    """Read output files into the rows vjt tag writes; fill the cache; note re-asks."""
    from ..errors import VJTError
    from ..scale.batchread import BatchReader, copies, file_lines
    from ..store.rows import JsonlWriter, check_owned, result_row

    folder = find_folder(outputs, export)
    manifest = read_manifest(folder)
    tagger, backend = _tagger(manifest, folder, cache=not no_cache)
    index, invalid = read_index(folder)
    reader = BatchReader(tagger, index, cache=not no_cache)
    counts = {"labelled": 0, "errors": 0, "cached": 0, "missing": 0, "invalid": len(invalid)}
    partial = output.with_name(output.name + ".partial")
    check_owned(output)

    def emit(result: Any, writer: JsonlWriter) -> None:
        for _, truth, copy in copies(result, index):
            writer.write(
                result_row(
                    copy,
                    index=-1 if copy.index is None else copy.index,
                    truth=truth,
                    source=manifest["source"],
                    backend=backend,
                )
            )
            counts["labelled" if copy.ok else "errors"] += 1
            counts["cached"] += copy.ok and copy.cached

    try:
        with JsonlWriter(partial) as writer:
            for jet_index, truth, error in invalid:
                writer.write(
                    result_row(
                        ValueError(error),
                        index=jet_index,
                        truth=truth,
                        source=manifest["source"],
                        backend=backend,
                    )
                )
            for path in outputs:
                if not path.is_file():
                    raise CLIError(f"{path}: no such output file")
                for result in reader.read(
                    file_lines(path, tagger.gate.max_answer_bytes), str(path)
                ):
                    emit(result, writer)
            for result in reader.finish():
                emit(result, writer)
            for key, asked in index.unique_keys():
                if index.state(key) or key in reader.reasks:
                    continue
                hit = None if asked else tagger.gate.lookup_many([key]).get(key)
                if hit is None:
                    counts["missing"] += len(index.jets(key))
                else:
                    emit(hit.model_copy(update={"cached": True}), writer)
        reader.commit()  # every line was read and belongs: the labels go to the cache now
        os.replace(partial, output)
    except (VJTError, CLIError):
        partial.unlink(missing_ok=True)
        raise
    reasks = write_reasks(folder, list(reader.reasks.values()))
    say(
        f"wrote {escape(str(output))}: {sum(counts[k] for k in ('labelled', 'errors', 'invalid'))}"
        f" jets ({counts['labelled']} labelled, {counts['cached']} of them from the cache; "
        f"{counts['errors']} without label) from {reader.lines} lines"
    )
    if counts["invalid"]:
        say(f"[yellow]invalid data: {counts['invalid']} jets cannot be tagged (rows say why)[/]")
    if reasks is not None:
        say(
            f"[yellow]{len(reader.reasks)} answers need a re-ask: vjt batch export --reasks "
            f"-o {escape(str(folder))}, run the new files, then import all the outputs again[/]"
        )
    if counts["missing"]:
        say(f"[yellow]{counts['missing']} jets of the export have no answer in these files[/]")
    if reader.duplicates:
        say(f"{reader.duplicates} repeated lines for jets already labelled were skipped")
    if reader.orphans:
        say(
            f"[yellow]{len(reader.orphans)} re-ask answers without their first answer: pass "
            "the first round's outputs too[/]"
        )
