"""The folder of a batch export: request files, the jets list and the manifest.

``DIR/requests-00000.jsonl``...: request lines (at most ``shard_size`` each), for ``vllm
run-batch -i`` (one per Slurm task) or the OpenAI Batch API (50,000 lines a file at most).
``DIR/jets.jsonl``: one line per exported jet (``custom_id``, ``jet_key``, ``index``, ``truth``,
``asked``; an invalid jet's ``error`` instead of keys), what import needs to write the rows
``vjt tag`` writes. ``DIR/manifest.json``: the
settings, the source and the selection, the constraint and backend, the files; written last, so
a folder without it is an interrupted export. ``DIR/reasks.jsonl``: answers an import found to
need a re-ask; ``DIR/reask-requests-00000.jsonl``...: their second round.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .app import CLIError

if TYPE_CHECKING:  # numpy and LangChain wait until a batch command runs
    from ..scale.batchfiles import ExportIndex, Reask

FORMAT = "vjt batch export 1"
MANIFEST = "manifest.json"
JETS = "jets.jsonl"
REASKS = "reasks.jsonl"
REQUESTS = "requests"
REASK_REQUESTS = "reask-requests"

SETTINGS = ("model", "effort", "template", "shots", "seed", "temperature", "max_tokens")
"""The settings that shape a request, recorded so that import rebuilds the same tagger."""


class RequestFiles:
    """Writes request lines into ``DIR/PREFIX-00000.jsonl``... of at most ``size`` lines."""

    def __init__(self, folder: Path, prefix: str, size: int) -> None:
        if size < 1:
            raise CLIError(f"--shard-size must be positive, got {size}")
        self.folder, self.prefix, self.size = folder, prefix, size
        self.files: list[str] = []
        self.lines = 0
        self._file: Any = None

    def write(self, line: dict[str, Any]) -> None:
        if self.lines % self.size == 0:
            self.close()
            name = f"{self.prefix}-{len(self.files):05d}.jsonl"
            self.files.append(name)
            self._file = (self.folder / name).open("w", encoding="utf-8")
        self._file.write(json.dumps(line, separators=(",", ":")) + "\n")
        self.lines += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def remove_old(self) -> None:
        """Remove earlier files of this prefix (a re-ask round written again)."""
        for path in self.folder.glob(f"{self.prefix}-*.jsonl"):
            path.unlink()


def new_folder(folder: Path) -> None:
    """Create the export folder; refuse one that holds an export already."""
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / MANIFEST).exists() or any(folder.glob(f"{REQUESTS}-*.jsonl")):
        raise CLIError(
            f"{folder} already holds a batch export: export into a new (or empty) folder"
        )


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def find_folder(outputs: list[Path], given: Path | None) -> Path:
    """The export folder: ``--export``, else the first output file's folder."""
    folder = given or outputs[0].parent
    if not (folder / MANIFEST).is_file():
        hint = "" if given else " (pass the export folder with --export)"
        raise CLIError(f"{folder}: no {MANIFEST} of a vjt batch export{hint}")
    return folder


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of the export in ``folder``; one line when it is not one."""
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CLIError(f"{folder}: no {MANIFEST}: not a vjt batch export folder") from None
    except (OSError, ValueError) as exc:
        raise CLIError(f"{path}: unreadable ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CLIError(f"{path}: not a manifest of this vjt ({FORMAT!r} expected)")
    return manifest


def read_index(folder: Path) -> tuple[ExportIndex, list[tuple[int, int | None, str]]]:
    """The jets of the export by custom id, and its invalid jets ``(index, truth, error)``."""
    from ..scale.batchfiles import ExportIndex

    index = ExportIndex()
    invalid = []
    path = folder / JETS
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            try:
                jet = json.loads(line)
                if "error" in jet:
                    invalid.append((jet["index"], jet["truth"], jet["error"]))
                    continue
                index.add(
                    number - 1,
                    jet["custom_id"],
                    jet["jet_key"],
                    jet["index"],
                    jet["truth"],
                    jet["asked"],
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise CLIError(f"{path} line {number}: not a jet of an export ({exc})") from None
    return index, invalid


def write_reasks(folder: Path, reasks: list[Reask]) -> Path | None:
    """Record the answers waiting for a re-ask (or remove an old record when none)."""
    path = folder / REASKS
    if not reasks:
        path.unlink(missing_ok=True)
        return None
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for reask in reasks:
            f.write(json.dumps({"custom_id": reask.custom_id, "response": reask.response}) + "\n")
    os.replace(tmp, path)
    return path


def read_reasks(folder: Path) -> Iterator[Reask]:
    """The answers an import left waiting for a re-ask."""
    from ..scale.batchfiles import Reask

    path = folder / REASKS
    if not path.exists():
        raise CLIError(f"{folder}: no {REASKS}: no import has found answers to re-ask")
    with path.open(encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            yield Reask(record["custom_id"], record["response"])
