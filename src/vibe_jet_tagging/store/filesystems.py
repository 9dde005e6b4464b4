"""Which filesystem holds a folder, and a warning when a cache sits on a network one.

The caches are SQLite databases (diskcache, in WAL mode). SQLite's locking is unsafe on
network filesystems (NFS, Lustre, GPFS, CIFS...) and WAL needs every process on one host:
jobs on several nodes sharing such a folder can corrupt it (python-diskcache issues #13,
#164, #218, #249, #345). :func:`warn_if_network_filesystem` says so in one line, with what to
do: a node-local folder for the cache, and the results files as the shared record.

On Linux the mount table is ``/proc/self/mountinfo`` (else ``/proc/mounts``); on macOS and the
BSDs the output of ``mount``. The readers take the table's text or file, so tests pass their
own.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MOUNT_TABLES",
    "NETWORK_FILESYSTEMS",
    "SILENCE_VARIABLE",
    "Mount",
    "mount_of",
    "network_mount",
    "parse_bsd_mount",
    "parse_mountinfo",
    "parse_proc_mounts",
    "read_mounts",
    "warn_if_network_filesystem",
]

logger = logging.getLogger(__name__)

NETWORK_FILESYSTEMS = frozenset(
    {
        # NFS, SMB/CIFS, AFS and Plan 9 shares (9p: WSL's Windows drives, VM shares)
        "nfs", "nfs4", "cifs", "smb3", "smbfs", "afs", "9p", "ncpfs", "davfs", "webdav", "afpfs",
        # parallel and cluster filesystems of HPC sites
        "lustre", "gpfs", "beegfs", "fhgfs", "ceph", "cephfs", "glusterfs", "orangefs", "pvfs2",
        "panfs", "wekafs", "dvs", "quobyte",
        # the same through FUSE (type "fuse.<name>")
        "fuse.sshfs", "fuse.ceph-fuse", "fuse.glusterfs", "fuse.eosxd", "fuse.eos",
        "fuse.s3fs", "fuse.gcsfuse", "fuse.rclone", "fuse.juicefs", "fuse.quobyte",
        "fuse.beegfs", "fuse.davfs", "fuse.vmhgfs-fuse", "fuse.lizardfs", "fuse.moosefs",
        "fuse.cvmfs2", "fuse.xrootdfs",
    }
)  # fmt: skip
"""Filesystem types (as the mount table names them) on which SQLite's locking is unsafe."""

SILENCE_VARIABLE = "VJT_NETWORK_CACHE_OK"
"""Set to 1 to say a cache on a network filesystem is meant (one node uses it): no warning."""

MOUNT_TABLES: tuple[str, ...] = ("/proc/self/mountinfo", "/proc/mounts")
"""Where Linux keeps the mount table, tried in order."""

_OCTAL = re.compile(r"\\([0-7]{3})")
_warned: set[str] = set()


@dataclass(frozen=True)
class Mount:
    """One entry of the mount table."""

    point: str
    fstype: str
    source: str = ""

    @property
    def network(self) -> bool:
        """Whether SQLite's locking is unsafe on this filesystem."""
        return self.fstype.lower() in NETWORK_FILESYSTEMS


def _unescape(field: str) -> str:
    r"""A mount table field with its octal escapes (``\040`` for a space...) decoded."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts of a ``/proc/<pid>/mountinfo`` text, in order (later ones on top).

    A line is ``id parent major:minor root point options [tags...] - fstype source super``.
    """
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields[6:]:
            continue
        dash = fields.index("-", 6)
        if len(fields) < dash + 2:
            continue
        source = fields[dash + 2] if len(fields) > dash + 2 else ""
        mounts.append(Mount(_unescape(fields[4]), fields[dash + 1], _unescape(source)))
    return mounts


def parse_proc_mounts(text: str) -> list[Mount]:
    """The mounts of a ``/proc/mounts`` (fstab-like) text: ``source point fstype options``."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3 and not line.lstrip().startswith("#"):
            mounts.append(Mount(_unescape(fields[1]), fields[2], _unescape(fields[0])))
    return mounts


_BSD_LINE = re.compile(r"^(?P<source>.+?) on (?P<point>/.*?) \((?P<fstype>[^,)]+)")


def parse_bsd_mount(text: str) -> list[Mount]:
    """The mounts of the output of ``mount`` on macOS and the BSDs.

    A line is ``source on /point (fstype, option, ...)``.
    """
    mounts = []
    for line in text.splitlines():
        match = _BSD_LINE.match(line.strip())
        if match:
            mounts.append(Mount(match["point"], match["fstype"].strip(), match["source"]))
    return mounts


def read_mounts(table: str | os.PathLike[str] | None = None) -> list[Mount]:
    """The mount table: ``table`` (a mountinfo or mounts file), else this system's.

    Linux: ``/proc/self/mountinfo``, else ``/proc/mounts``; macOS and the BSDs: ``mount``'s
    output. Empty when it cannot be read (nothing is then known, nothing is claimed).
    """
    paths: tuple[str | os.PathLike[str], ...] = MOUNT_TABLES if table is None else (table,)
    for path in map(Path, paths):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        first = next((line for line in text.splitlines() if line.strip()), "")
        return parse_mountinfo(text) if " - " in first else parse_proc_mounts(text)
    if table is None and sys.platform != "win32" and not sys.platform.startswith("linux"):
        try:
            out = subprocess.run(
                ["mount"], capture_output=True, text=True, timeout=10, check=False
            ).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            logger.debug("cannot read the mount table: %s", exc)
            return []
        return parse_bsd_mount(out)
    return []


def _resolved(path: Path) -> Path:
    """``path`` absolute, symlinks resolved in the part that exists (a cache may not yet)."""
    path = Path(os.path.abspath(path))
    for candidate in (path, *path.parents):
        if candidate.exists():
            return Path(os.path.realpath(candidate)).joinpath(path.relative_to(candidate))
    return path


def mount_of(path: str | os.PathLike[str], mounts: Iterable[Mount]) -> Mount | None:
    """The mount that holds ``path``: the deepest mount point above it, the last listed wins."""
    target = _resolved(Path(path))
    best: Mount | None = None
    for mount in mounts:
        point = Path(mount.point)
        if (target == point or point in target.parents) and (
            best is None or len(point.parts) >= len(Path(best.point).parts)
        ):
            best = mount
    return best


def network_mount(
    path: str | os.PathLike[str], *, table: str | os.PathLike[str] | None = None
) -> Mount | None:
    """The network filesystem holding ``path``, or ``None`` (local, or not known)."""
    mount = mount_of(path, read_mounts(table))
    return mount if mount is not None and mount.network else None


def warn_if_network_filesystem(
    path: str | os.PathLike[str], *, table: str | os.PathLike[str] | None = None
) -> str | None:
    """Warn (once per folder and process) when a cache folder is on a network filesystem.

    Returns the warning (also when already said), or ``None``. Setting
    ``VJT_NETWORK_CACHE_OK=1`` says it is meant (a folder only one node uses): no warning.
    Never raises: a mount table that cannot be read means nothing is known.
    """
    if os.environ.get(SILENCE_VARIABLE, "").strip().lower() in ("1", "true", "yes"):
        return None
    try:
        mount = network_mount(path, table=table)
    except (OSError, ValueError) as exc:  # e.g. a path the OS refuses
        logger.debug("cannot tell the filesystem of %s: %s", path, exc)
        return None
    if mount is None:
        return None
    message = (
        f"the cache {path} is on a network filesystem ({mount.fstype} at {mount.point}), where "
        "SQLite's locking is unsafe and jobs on several nodes can corrupt it: put the cache in "
        "a node-local folder (VJT_CACHE_DIR, e.g. $TMPDIR/vjt-cache or /local/scratch/$USER) "
        "and keep the results files as the shared record (`vjt cache import` fills a node's "
        f"cache from them); {SILENCE_VARIABLE}=1 silences this"
    )
    key = str(Path(os.path.abspath(path)))
    if key not in _warned:
        _warned.add(key)
        logger.warning("%s", message)
    return message
