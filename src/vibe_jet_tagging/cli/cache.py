"""``vjt cache path | stats | clear``: the on-disk cache of tagged jets.

The cache folder (``$VJT_CACHE_DIR``, ``cache_dir`` in the config file, else the user's cache
folder) holds two result caches: ``results`` for what ``vjt`` asked model servers, and
``results-emulated`` for what ``vjt`` asked the emulated server, kept apart so that a
heuristic's answer is never served as a model's. Python's ``JetTagger(cache=True)`` uses
``results`` for any server (its cache keys hold what the server is, so answers of the
emulated server there are never served for a model either).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .app import CLIError, CommandGroup, app, console, out
from .options import SharedCache, Trust

if TYPE_CHECKING:
    from ..store.cache import ResultCache

cache_app = typer.Typer(
    cls=CommandGroup, help="The on-disk cache of tagged jets.", no_args_is_help=True
)
app.add_typer(cache_app, name="cache")

Dir = Annotated[
    Path | None,
    typer.Option("--dir", help="Cache folder [env VJT_CACHE_DIR, config cache_dir]."),
]

RESULTS = "results"
EMULATED_RESULTS = "results-emulated"


def default_cache_root() -> Path:
    """``$VJT_CACHE_DIR``, else the user's cache folder: what
    :func:`vibe_jet_tagging.store.cache.default_cache_dir` says, without importing the cache's
    stack (diskcache, LangChain), so that ``vjt cache path`` answers at once
    (``tests/unit/test_cli_startup.py`` checks that the two agree)."""
    import os

    import platformdirs

    env = os.environ.get("VJT_CACHE_DIR")
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("vibe-jet-tagging"))


def cache_root(directory: Path | None = None) -> Path:
    """The cache folder: ``directory``, else the settings' ``cache_dir``, else the default."""
    if directory is not None:
        return directory
    from ..config import load_settings

    return load_settings().cache_dir or default_cache_root()


def results_dir(root: Path, *, emulated: bool) -> Path:
    """The result cache for a model server's answers, or for the emulated server's."""
    return root / (EMULATED_RESULTS if emulated else RESULTS)


def _shared(flag: bool) -> bool:
    """``--shared-cache``, else the settings' ``shared_cache``."""
    from ..config import load_settings

    return flag or load_settings().shared_cache


_WHOSE = {
    RESULTS: "vjt with model servers, and Python's JetTagger(cache=True) with any server",
    EMULATED_RESULTS: "vjt with the emulated server (--emulate, demo)",
}
"""Who writes each result cache, as ``vjt cache stats`` says it."""


def _caches(directory: Path | None) -> list[tuple[str, Path]]:
    root = cache_root(directory)
    return [
        (_WHOSE[RESULTS], results_dir(root, emulated=False)),
        (_WHOSE[EMULATED_RESULTS], results_dir(root, emulated=True)),
    ]


def _open(folder: Path, shared: bool) -> ResultCache | None:
    """The result cache in ``folder``, or ``None`` if there is none yet (none is created).

    A folder others can write to raises (one line, see :mod:`vibe_jet_tagging.store.cache`).
    """
    from ..store.cache import ResultCache

    return ResultCache(folder, shared=shared) if folder.exists() else None


@cache_app.command("path")
def path(
    directory: Dir = None,
    emulated: Annotated[
        bool, typer.Option("--emulated", help="The emulated server's results instead.")
    ] = False,
) -> None:
    """Print the folder of cached results (on stdout)."""
    print(results_dir(cache_root(directory), emulated=emulated))


@cache_app.command("stats")
def stats(directory: Dir = None, shared_cache: SharedCache = False) -> None:
    """Cached results and size on disk, per cache (on stdout), and who writes each."""
    for whose, folder in _caches(directory):
        cache = _open(folder, _shared(shared_cache))
        if cache is None:
            line = f"{folder}: 0 results, not created yet · {whose}"
        elif cache.problem:
            line = f"{folder}: {cache.problem} · {whose}"
        else:
            s = cache.stats()
            line = f"{s['path']}: {s['entries']} results, {s['size_bytes'] / 1e6:.1f} MB · {whose}"
        out.print(line, soft_wrap=True, highlight=False, markup=False)


@cache_app.command("clear")
def clear(
    directory: Dir = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    shared_cache: SharedCache = False,
) -> None:
    """Remove every cached result (model servers' and the emulated server's)."""
    shared = _shared(shared_cache)
    caches = [c for _, folder in _caches(directory) if (c := _open(folder, shared)) is not None]
    total = sum(len(cache) for cache in caches)
    where = " and ".join(str(cache.directory) for cache in caches) or str(cache_root(directory))
    if not yes and not typer.confirm(f"remove the {total} cached results in {where}?"):
        raise typer.Abort()
    for cache in caches:
        removed = cache.clear()
        console.print(f"removed {removed} results from {cache.directory}", soft_wrap=True)
    if not caches:
        console.print(f"nothing to remove in {where}", soft_wrap=True)


@cache_app.command("import")
def import_(
    files: Annotated[
        list[Path] | None, typer.Argument(help="Results files (from vjt tag, merge...).")
    ] = None,
    trust: Trust = None,
    directory: Dir = None,
) -> None:
    """Fill the cache from results files, so this node resumes from what others tagged.

    Rows with a label are stored under their cache key, in the cache of the backend that
    answered them (a model server's, or the emulated server's), when they verify as this
    user's (see --trust); rows without a label, or without a recorded backend, are left out.
    All files are checked before anything is stored: a row that is refused (edited, another
    user's, impossible values) stops the import with one line naming its file and line.
    """
    from ..store.cache import ResultCache
    from ..store.provenance import default_signer
    from ..store.rows import check_owned, numbered_rows
    from ..tagging.gate import check_row, store_admitted

    trusted = list(trust or [])
    named = [(file, False) for file in files or []] + [(file, True) for file in trusted]
    if not named:
        raise CLIError("give the results files to import (or --trust FILE)")
    signer = default_signer()
    staged: list[tuple[str, Any]] = []
    counts = {"stored": 0, "present": 0, "unlabelled": 0, "no_backend": 0, "imported": 0}
    for file, trusted_file in named:
        check_owned(file, trusted=trusted_file)
        for number, row in numbered_rows(file):
            backend = row.get("backend")
            if row.get("label") is None or row.get("error") is not None:
                counts["unlabelled"] += 1
                continue
            if backend not in ("server", "emulated"):
                counts["no_backend"] += 1
                continue
            result = check_row(
                row, where=f"{file} line {number}", signer=signer, trusted=trusted_file
            )
            counts["imported"] += result.origin == "imported"
            staged.append((backend, result))
    root = cache_root(directory)
    caches: dict[str, ResultCache] = {}
    for backend, result in staged:
        if backend not in caches:
            caches[backend] = ResultCache(results_dir(root, emulated=backend == "emulated"))
        cache = caches[backend]
        if result.key in cache:
            counts["present"] += 1
        elif store_admitted(cache, result, signer):
            counts["stored"] += 1
    where = ", ".join(str(cache.directory) for cache in caches.values()) or str(root)
    imported = f", {counts['imported']} of them marked imported" if counts["imported"] else ""
    console.print(
        f"imported {counts['stored']} results into {where}{imported} ({counts['present']} were "
        f"there already); left out {counts['unlabelled']} rows without label"
        + (
            f" and {counts['no_backend']} without a recorded backend"
            if counts["no_backend"]
            else ""
        ),
        soft_wrap=True,
        highlight=False,
    )
