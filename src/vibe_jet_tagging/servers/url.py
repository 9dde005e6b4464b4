"""Server URLs as they may be shown: never with the password of ``http://user:secret@host``.

A base URL may carry credentials (``userinfo``); only the HTTP client sees them. Everything
else (result rows, cache entries, manifests, reports, log and error lines) gets
:func:`redact`'s form, which keeps the user name and drops the password.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = ["redact"]


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
