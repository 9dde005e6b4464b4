"""Provenance a later run can check: results signed with a key only this user holds.

Every labelled result the gate admits is signed (HMAC-SHA256) with a per-user secret kept in
the user's config folder (``~/.config/vibe-jet-tagging/provenance.key``, mode 0600, created on
first use; ``VJT_KEY_FILE`` names another file). The signature covers what makes the result
this model's answer for this jet (:data:`SIGNED`): the cache key (the jet, the prompt and the
settings, the server's identity among them), the jet's key, the settings key, the label, the
stated probability, how it was read, a digest of the answer text, the identity of the server
that answered, and the origin (``model``, or ``imported`` for rows a user chose to trust).

A results row or cache entry whose signature does not verify was edited, made by someone
else, or made before results were signed: the doors that read them (resume, ``vjt cache
import``, cache look-ups) refuse it, unless the user says to trust it, and then it is marked
imported wherever it is used.

A shared home folder gives every node of a cluster the same key, so one user's rows verify on
all of them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import platformdirs

from ..errors import VJTError

__all__ = [
    "SIGNED",
    "ProvenanceKeyError",
    "Signer",
    "answer_digest",
    "default_key_path",
    "default_signer",
]

SIGNED = (
    "key",
    "jet_key",
    "settings",
    "label",
    "quark_probability",
    "parsed_by",
    "answer_digest",
    "identity",
    "origin",
)
"""The fields of a result (or row) the signature covers, in this order."""

_KEY_BYTES = 32


class ProvenanceKeyError(VJTError):
    """The signing key file cannot be used (another user's, readable by others, a link...)."""


def default_key_path() -> Path:
    """``$VJT_KEY_FILE``, else ``provenance.key`` in the user's config folder."""
    env = os.environ.get("VJT_KEY_FILE")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_config_dir("vibe-jet-tagging")) / "provenance.key"


def answer_digest(text: str | None) -> str | None:
    """A short digest of an answer text (what a signature covers in place of the text)."""
    if text is None:
        return None
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _payload(fields: Mapping[str, Any]) -> bytes:
    return json.dumps([fields.get(name) for name in SIGNED], separators=(",", ":")).encode()


def _read_key(path: Path) -> bytes:
    """The key in ``path``, checked to be this user's alone; ``FileNotFoundError`` if none."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ProvenanceKeyError(f"{path}: the signing key is not a regular file")
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            raise ProvenanceKeyError(
                f"{path}: the signing key belongs to another user (uid {st.st_uid}); use a key "
                "of your own (remove it, or set VJT_KEY_FILE)"
            )
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ProvenanceKeyError(
                f"{path}: others can read or write the signing key (mode "
                f"{stat.S_IMODE(st.st_mode):o}), so they could sign results as you; `chmod 600` "
                "it, or remove it to get a new one (earlier results then no longer verify)"
            )
        # Any bound above a long key's hex reads the same (a test reads a 64-byte key).
        data = os.read(fd, 4 * _KEY_BYTES + 16).strip()  # pragma: no mutate
    finally:
        os.close(fd)
    try:
        # Codec names are case-insensitive.
        key = bytes.fromhex(data.decode("ascii"))  # pragma: no mutate
    except ValueError:
        raise ProvenanceKeyError(f"{path}: not a signing key (expected hex digits)") from None
    if len(key) < 16:
        raise ProvenanceKeyError(f"{path}: the signing key is too short")
    return key


def _load_or_create(path: Path) -> bytes:
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    except OSError as exc:  # a symlink (O_NOFOLLOW), no permission...
        raise ProvenanceKeyError(f"{path}: cannot read the signing key ({exc})") from None
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(_KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:  # another process made it meanwhile: use theirs
        return _read_key(path)
    except OSError as exc:
        raise ProvenanceKeyError(f"{path}: cannot create the signing key ({exc})") from None
    try:
        os.write(fd, key.hex().encode() + b"\n")
    finally:
        os.close(fd)
    return key


class Signer:
    """Signs and verifies results with one key (see the module doc).

    Args:
        key: the secret (tests pass their own); default: the user's key file, read (or made)
            on first use.
        path: the key file to use instead of :func:`default_key_path`.
    """

    def __init__(self, key: bytes | None = None, *, path: Path | None = None) -> None:
        self._key = key
        self._path = path
        self._lock = threading.Lock()

    @property
    def key(self) -> bytes:
        """The secret (read or created on first use)."""
        if self._key is None:
            with self._lock:
                if self._key is None:
                    self._key = _load_or_create(self._path or default_key_path())
        return self._key

    def sign(self, fields: Mapping[str, Any]) -> str:
        """The signature of ``fields`` (a result's or a row's :data:`SIGNED` fields)."""
        return hmac.new(self.key, _payload(fields), hashlib.sha256).hexdigest()[:32]

    def verifies(self, fields: Mapping[str, Any]) -> bool:
        """Whether ``fields["signature"]`` is this key's signature of ``fields``."""
        signature = fields.get("signature")
        if not isinstance(signature, str):
            return False
        return hmac.compare_digest(signature, self.sign(fields))


_DEFAULT: dict[Path, Signer] = {}
_DEFAULT_LOCK = threading.Lock()


def default_signer() -> Signer:
    """The signer of the user's key file (one per key file per process)."""
    path = default_key_path()
    with _DEFAULT_LOCK:
        signer = _DEFAULT.get(path)
        if signer is None:
            # Signer(path=None) reads the same default path when first used.
            signer = _DEFAULT[path] = Signer(path=path)  # pragma: no mutate
        return signer
