"""The filesystem under a cache folder, read from fake mount tables (no real NFS needed)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest

from vibe_jet_tagging.store import filesystems
from vibe_jet_tagging.store.cache import DiskLLMCache, ResultCache
from vibe_jet_tagging.store.filesystems import (
    SILENCE_VARIABLE,
    Mount,
    mount_of,
    network_mount,
    parse_bsd_mount,
    parse_mountinfo,
    parse_proc_mounts,
    read_mounts,
    warn_if_network_filesystem,
)
from vibe_jet_tagging.tagging.results import TagResult

# Real lines (from a Slurm node and a laptop), one with optional tags, one with an escaped space.
MOUNTINFO = """\
22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw
25 22 0:23 / /tmp rw,nosuid shared:5 - tmpfs tmpfs rw,size=8g
40 22 0:45 / /home rw,relatime shared:20 master:3 - nfs4 fs01:/export/home rw,vers=4.2
41 22 0:46 / /scratch rw,relatime - lustre 10.0.0.1@o2ib:/scratch rw,flock
42 41 8:3 / /scratch/local rw,relatime - xfs /dev/sdb1 rw
43 22 0:47 / /my\\040data rw - gpfs gpfs0 rw
44 22 0:48 / /remote rw,nosuid - fuse.sshfs alice@login:/data rw
"""


def table(tmp_path: Path, text: str, name: str = "mountinfo") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_mountinfo_lines_give_point_type_and_source() -> None:
    mounts = parse_mountinfo(MOUNTINFO + "garbage line without separator\n\n")
    assert [m.point for m in mounts] == [
        "/", "/tmp", "/home", "/scratch", "/scratch/local", "/my data", "/remote"
    ]  # fmt: skip
    assert mounts[2] == Mount("/home", "nfs4", "fs01:/export/home")
    assert [m.network for m in mounts] == [False, False, True, True, False, True, True]


def test_proc_mounts_and_bsd_mount_formats() -> None:
    mounts = parse_proc_mounts(
        "/dev/sda2 / ext4 rw 0 0\nfs01:/home /home nfs rw,vers=3 0 0\n"
        "beegfs_nodev /mnt/beegfs beegfs rw 0 0\n"
    )
    assert [(m.point, m.fstype, m.network) for m in mounts] == [
        ("/", "ext4", False), ("/home", "nfs", True), ("/mnt/beegfs", "beegfs", True)
    ]  # fmt: skip
    mac = parse_bsd_mount(
        "/dev/disk3s1s1 on / (apfs, sealed, local, read-only, journaled)\n"
        "map auto_home on /System/Volumes/Data/home (autofs, automounted, nobrowse)\n"
        "fs01:/export/home on /Users/alice/net (nfs, nodev, nosuid, mounted by alice)\n"
        "//alice@nas/share on /Volumes/share (smbfs, nodev, nosuid, mounted by alice)\n"
    )
    assert [(m.point, m.fstype, m.network) for m in mac] == [
        ("/", "apfs", False),
        ("/System/Volumes/Data/home", "autofs", False),
        ("/Users/alice/net", "nfs", True),
        ("/Volumes/share", "smbfs", True),
    ]


def test_read_mounts_tells_the_format_of_a_file(tmp_path: Path) -> None:
    assert read_mounts(table(tmp_path, MOUNTINFO)) == parse_mountinfo(MOUNTINFO)
    mounts_text = "fs01:/home /home nfs4 rw 0 0\n"
    assert read_mounts(table(tmp_path, mounts_text, "mounts")) == [
        Mount("/home", "nfs4", "fs01:/home")
    ]
    assert read_mounts(tmp_path / "missing") == []


def test_the_deepest_mount_holds_a_path_and_a_later_one_covers_an_earlier() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert mount_of("/scratch/alice/cache", mounts).fstype == "lustre"  # type: ignore[union-attr]
    assert mount_of("/scratch/local/vjt", mounts).fstype == "xfs"  # type: ignore[union-attr]
    assert mount_of("/scratchpad", mounts).point == "/"  # type: ignore[union-attr]
    assert mount_of("/my data/cache", mounts).fstype == "gpfs"  # type: ignore[union-attr]
    over = [*mounts, Mount("/home", "autofs"), Mount("/home", "nfs", "fs02:/home")]
    assert mount_of("/home/alice", over) == Mount("/home", "nfs", "fs02:/home")
    assert mount_of("/anything", []) is None


def test_a_cache_folder_not_yet_made_and_a_symlink_into_a_network_mount(tmp_path: Path) -> None:
    root = Path(os.path.realpath(tmp_path))
    (root / "nfs" / "alice").mkdir(parents=True)
    (root / "local").mkdir()
    (root / "local" / "link").symlink_to(root / "nfs" / "alice")
    fake = table(
        tmp_path,
        f"1 0 8:1 / / rw - ext4 /dev/sda1 rw\n2 1 0:50 / {root}/nfs rw - nfs4 fs:/x rw\n",
    )
    assert network_mount(root / "nfs" / "alice" / "not" / "yet", table=fake) == Mount(
        f"{root}/nfs", "nfs4", "fs:/x"
    )
    assert network_mount(root / "local" / "link" / "cache", table=fake) is not None
    assert network_mount(root / "local" / "cache", table=fake) is None


def test_one_warning_line_per_folder_saying_what_to_do(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = table(tmp_path, MOUNTINFO)
    with caplog.at_level(logging.WARNING, logger="vibe_jet_tagging.store.filesystems"):
        message = warn_if_network_filesystem("/home/alice/.cache/vjt", table=fake)
        again = warn_if_network_filesystem("/home/alice/.cache/vjt", table=fake)
        other = warn_if_network_filesystem("/scratch/alice/vjt", table=fake)
        local = warn_if_network_filesystem("/tmp/vjt", table=fake)
    assert message is not None and message == again
    assert "\n" not in message
    for part in ("/home/alice/.cache/vjt", "nfs4 at /home", "node-local", "VJT_CACHE_DIR",
                 "vjt cache import", SILENCE_VARIABLE):  # fmt: skip
        assert part in message
    assert other is not None and "lustre at /scratch" in other
    assert local is None
    assert [r.getMessage() for r in caplog.records] == [message, other]


def test_the_warning_is_silenced_by_saying_the_cache_is_meant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(SILENCE_VARIABLE, "1")
    with caplog.at_level(logging.WARNING):
        assert warn_if_network_filesystem("/home/bob/c", table=table(tmp_path, MOUNTINFO)) is None
    assert not caplog.records


def test_an_unreadable_mount_table_claims_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(filesystems, "MOUNT_TABLES", (str(tmp_path / "none"),))
    if sys.platform.startswith("linux"):
        assert read_mounts() == []
    assert warn_if_network_filesystem(tmp_path / "cache") is None
    binary = table(tmp_path, "\x00\xff\n" * 3)
    assert warn_if_network_filesystem(tmp_path / "cache", table=binary) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_this_machines_mount_table_is_read() -> None:
    mounts = read_mounts()
    assert mount_of("/proc/self", mounts).fstype == "proc"  # type: ignore[union-attr]


def test_opening_a_cache_on_a_network_filesystem_warns_and_still_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    root = Path(os.path.realpath(tmp_path))
    fake = table(
        tmp_path,
        f"1 0 8:1 / / rw - ext4 /dev/sda1 rw\n2 1 0:60 / {root}/shared rw - lustre mds:/fs rw\n",
    )
    monkeypatch.setattr(filesystems, "MOUNT_TABLES", (str(fake),))
    with caplog.at_level(logging.WARNING, logger="vibe_jet_tagging.store.filesystems"):
        cache = ResultCache(root / "shared" / "results")
        DiskLLMCache(root / "shared" / "llm")
        ResultCache(root / "local" / "results")
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2
    assert f"{root}/shared/results" in warned[0] and "lustre" in warned[0]
    assert f"{root}/shared/llm" in warned[1]
    result = TagResult(jet_key="j", key="k", label="quark", model="m")
    assert cache.put(result)
    assert cache.get("k") is not None and cache.get("k").label == "quark"  # type: ignore[union-attr]
