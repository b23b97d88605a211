"""On XFS and btrfs the bundle shares the download cache's blocks (issue 18: stored members
aligned to 4 KiB "so that filesystems with reflinks share the blocks"), measured on a real
filesystem: a loop-mounted image made here. Needs root, mkfs.xfs / mkfs.btrfs and loop mounts;
skipped, with the reason, where any of them is missing (the bytes themselves are tested
everywhere by test_zip_aligned and test_reserve)."""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import subprocess
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from envpack.archive.write import write_bundle
from envpack.bundle.manifest import Entry

from channel_factory import Pkg, make_channel, standard_packages
from conftest import run_cli, write_recipe
from http_server import ChannelServer

EPOCH = 1600000000
MB = 1 << 20
# Four packages, 24 MB in all; sizes not multiples of the block size, as real ones are.
SIZES = [9 * MB + 123, 7 * MB + 4095, 5 * MB + 1, 3 * MB - 17]


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(params=["xfs", "btrfs"])
def reflink_fs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A fresh 320 MB XFS (reflink=1) or btrfs, loop-mounted in tmp_path, unmounted after."""
    kind = request.param
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a filesystem image needs root")
    mkfs = shutil.which(f"mkfs.{kind}") or shutil.which(f"mkfs.{kind}", path="/usr/sbin:/sbin")
    if mkfs is None:
        pytest.skip(
            f"mkfs.{kind} not installed (Debian: {'xfsprogs' if kind == 'xfs' else 'btrfs-progs'})"
        )
    image, mnt = tmp_path / f"{kind}.img", tmp_path / "mnt"
    with image.open("wb") as fh:
        fh.truncate(320 * MB)
    opts = ["-m", "reflink=1"] if kind == "xfs" else []
    made = _run([mkfs, "-q", *opts, str(image)])
    if made.returncode != 0:
        pytest.skip(f"mkfs.{kind} failed here: {made.stderr.strip()[:200]}")
    mnt.mkdir()
    mounted = _run(["mount", "-o", "loop", str(image), str(mnt)])
    if mounted.returncode != 0:
        pytest.skip(f"cannot loop-mount a {kind} image here: {mounted.stderr.strip()[:200]}")
    try:
        yield mnt
    finally:
        done = _run(["umount", str(mnt)])
        if done.returncode != 0:
            # Detached now, freed when released: never a mount left under pytest's folders.
            _run(["umount", "-l", str(mnt)])
        image.unlink()  # its loop device is gone with the mount: the space comes back
        if done.returncode != 0:
            pytest.fail(f"umount {mnt} failed: {done.stderr.strip()[:200]} (unmounted lazily)")


def _packages(folder: Path) -> list[Entry]:
    folder.mkdir()
    rng = random.Random(18)
    entries = []
    for i, size in enumerate(SIZES):
        data = rng.randbytes(size)
        path = folder / f"pkg{i}-1.0-0.conda"
        path.write_bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        # With its CRC-32, as a download leaves it: the body is then copied by the kernel.
        crc = zlib.crc32(data)
        entries.append(Entry(f"channel/win-64/{path.name}", size, sha, source=path, crc32=crc))
    entries.append(Entry.from_bytes("setup.bat", b"@echo off\r\n" * 300))
    return entries


def _free(path: Path) -> int:
    os.sync()
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_the_bundle_shares_the_caches_blocks(reflink_fs: Path, tmp_path: Path) -> None:
    entries = _packages(reflink_fs / "cache")
    total = sum(SIZES)
    (elsewhere,) = write_bundle(tmp_path / "plain", "b", "top", entries, EPOCH)
    before = _free(reflink_fs)
    (bundle,) = write_bundle(reflink_fs / "out", "b", "top", entries, EPOCH)
    used = before - _free(reflink_fs)
    assert bundle.read_bytes() == elsewhere.read_bytes()  # the same bytes as anywhere else
    assert bundle.stat().st_size > total
    # Shared, not copied: the 24 MB of packages cost a few blocks (headers, each package's
    # last partial block, metadata), far under a tenth of a copy.
    assert used < total // 10, f"the bundle took {used} bytes of {total}"


def test_a_disk_with_less_room_than_the_bundle_still_takes_it(
    reflink_fs: Path, tmp_path: Path
) -> None:
    """The blocks asked for up front (kcopy.reserve) do not fit, the shared ones do: the build
    must not stop at the reservation."""
    entries = _packages(reflink_fs / "cache")
    filler = reflink_fs / "filler"
    room = _free(reflink_fs) - sum(SIZES) // 2  # leave half the packages' size free
    with filler.open("wb") as fh:
        chunk = bytes(MB)
        for _ in range(room // MB):
            fh.write(chunk)
    assert _free(reflink_fs) < sum(SIZES)
    (elsewhere,) = write_bundle(tmp_path / "plain", "b", "top", entries, EPOCH)
    (bundle,) = write_bundle(reflink_fs / "out", "b", "top", entries, EPOCH)
    assert bundle.read_bytes() == elsewhere.read_bytes()


def _shared_bytes(path: Path) -> int:
    """Bytes of ``path`` in extents the filesystem flags as shared (FIEMAP, by filefrag -v)."""
    tool = shutil.which("filefrag") or shutil.which("filefrag", path="/usr/sbin:/sbin")
    if tool is None:
        pytest.skip("filefrag not installed (Debian: e2fsprogs)")
    out = _run([tool, "-v", str(path)])
    assert out.returncode == 0, out.stderr
    block = re.search(r"blocks of (\d+) bytes", out.stdout)
    assert block is not None, out.stdout[:400]
    shared = 0
    # " ext: logical_offset: physical_offset: length: expected: flags:" rows
    for line in out.stdout.splitlines():
        ext = re.match(r"\s*\d+:\s*\d+\.\.\s*\d+:\s*\d+\.\.\s*\d+:\s*(\d+):(.*)$", line)
        if ext and "shared" in ext.group(2):
            shared += int(ext.group(1)) * int(block.group(1))
    return shared


def test_a_sfx_build_shares_the_packages_blocks(
    reflink_fs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The -setup.bat is made from the finished zip by a kernel copy (sfxcopy); its batch header
    is a multiple of 4096 bytes, so the packages stay block-aligned in the .bat and the copy
    shares their blocks with the zip and the cache instead of writing them again."""
    sizes = SIZES[:3]
    total = sum(sizes)
    pkgs = [Pkg(f"big{i}", random_bytes=size) for i, size in enumerate(sizes)]
    channel = make_channel(tmp_path / "channel", [*standard_packages(), *pkgs])
    monkeypatch.setenv("ENVPACK_CACHE_DIR", str(reflink_fs / "cache"))
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    with ChannelServer(channel) as server:
        recipe = write_recipe(tmp_path / "big.yaml", [server.url], [p.name for p in pkgs])
        # the first build fills the cache on the filesystem; the one measured finds it warm
        warm = run_cli("build", str(recipe), "-o", str(reflink_fs / "warm"), "--no-sfx")
        assert warm.exit_code == 0, warm.output
        before = _free(reflink_fs)
        built = run_cli("build", str(recipe), "-o", str(reflink_fs / "out"), "--sfx")
        assert built.exit_code == 0, built.output
    used = before - _free(reflink_fs)
    bat = reflink_fs / "out" / "big-win-64-setup.bat"
    zip_path = reflink_fs / "out" / "big-win-64.zip"
    assert bat.stat().st_size > total and zip_path.stat().st_size > total
    with zipfile.ZipFile(bat) as zf:
        header = min(i.header_offset for i in zf.infolist())
        packages = [i for i in zf.infolist() if i.filename.endswith(".conda")]
    assert header % 4096 == 0 and len(packages) == 3
    assert sum(i.file_size for i in packages) > total  # each holds its payload
    # Both files of the build together: a few blocks per package (headers, last partial
    # blocks), the .bat's header and the small files; a copy of either would cost `total`.
    assert used < total // 10, f"the zip and the .bat took {used} bytes for {total} of packages"
    # and the .bat's package bytes are in shared extents, not merely somewhere
    assert _shared_bytes(bat) > total * 9 // 10
