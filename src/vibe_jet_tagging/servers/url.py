"""Server URLs as they may be shown: never with the password of ``http://user:secret@host``;
and a list of them checked as one pool of servers takes it (:func:`check_base_urls`).

A base URL may carry credentials (``userinfo``); only the HTTP client sees them. Everything
else (result rows, cache entries, manifests, reports, log and error lines) gets
:func:`redact`'s form, which keeps the user name and drops the password.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import SplitResult, urlsplit, urlunsplit

__all__ = ["check_base_urls", "redact"]


def check_base_urls(base_urls: Sequence[str]) -> list[tuple[str, SplitResult]]:
    """The servers' base URLs (without a trailing ``/``) and their parts, as
    :class:`~vibe_jet_tagging.servers.pool.EndpointPool` takes them.

    Raises ``ValueError`` for none, the same URL twice, URLs of different paths (requests are
    built for the first) or one that cannot be parsed.
    """
    urls = [u.rstrip("/") for u in base_urls]
    if not urls:
        raise ValueError("an endpoint pool needs at least one base URL")
    if len(set(urls)) < len(urls):
        shown = ", ".join(redact(u) or "" for u in urls)
        raise ValueError(f"the same base URL is given twice: {shown}")
    parts = [urlsplit(u) for u in urls]
    paths = {p.path for p in parts}
    if len(paths) > 1:
        raise ValueError(f"the base URLs must share one path (e.g. /v1), got {sorted(paths)}")
    return list(zip(urls, parts, strict=True))


def redact(url: str | None) -> str | None:
    """``url`` without the password of its userinfo (``http://user@host:8000/v1``).

    A URL that cannot be parsed is returned as a placeholder, never as given.
    """
    if url is None or "@" not in url:
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return "<a URL that cannot be shown>"
    if parts.password is None and "@" not in parts.netloc:
        return url
    if ":" in host:  # IPv6
        host = f"[{host}]"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(
        (parts.scheme, f"{user}{host}{port}", parts.path, parts.query, parts.fragment)
    )
