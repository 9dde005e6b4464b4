"""Checks of what the user typed that need no server, no file read and no heavy import."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from .app import CLIError

__all__ = ["check_results_files", "url_problem"]


def check_results_files(files: list[Path]) -> None:
    """A missing results file (or a folder given for one) is answered at once, before the
    report's stack (numpy, LangChain, matplotlib) is imported."""
    for file in files:
        if not file.exists():
            raise CLIError(f"{file}: no such results file")
        if file.is_dir():
            raise CLIError(f"{file}: is a folder; give the results files (JSONL) of vjt tag")


def url_problem(url: str) -> str | None:
    """What is wrong with a server URL as written (``None``: nothing seen without asking)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (reading it checks it)
    except ValueError as exc:
        return str(exc).rstrip(".")
    if parts.scheme not in ("http", "https"):
        if not parts.scheme or "://" not in url:
            return "no http:// or https:// in front"
        return f"unsupported scheme '{parts.scheme}://' (a typo of http:// or https://?)"
    if not parts.hostname:
        return "no host name"
    return None
