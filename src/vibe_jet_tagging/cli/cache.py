"""``vjt cache stats | clear | path``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from .app import app, console

if TYPE_CHECKING:
    from ..cache import ResultCache

cache_app = typer.Typer(help="The on-disk cache of tagged jets.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")

Dir = Annotated[str | None, typer.Option("--dir", help="Cache folder [env VJT_CACHE_DIR].")]


def _open(directory: str | None) -> ResultCache:
    from ..cache import ResultCache, default_cache_dir

    return ResultCache(directory or default_cache_dir() / "results")


@cache_app.command("path")
def path(directory: Dir = None) -> None:
    """Print the cache folder."""
    print(_open(directory).directory)


@cache_app.command("stats")
def stats(directory: Dir = None) -> None:
    """Entries and size on disk."""
    s = _open(directory).stats()
    console.print(f"{s['path']}: {s['entries']} results, {s['size_bytes'] / 1e6:.1f} MB")


@cache_app.command("clear")
def clear(
    directory: Dir = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Remove every cached result."""
    cache = _open(directory)
    if not yes and not typer.confirm(f"remove the {len(cache)} results in {cache.directory}?"):
        raise typer.Abort()
    console.print(f"removed {cache.clear()} results from {cache.directory}")
