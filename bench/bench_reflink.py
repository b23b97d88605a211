"""The warm build on XFS with reflinks: bench/run.py's optional row.

envpack stores each package at a 4 KiB-aligned offset and copies it from the download cache with
``os.copy_file_range``, so that on a filesystem with reflinks (XFS with reflink=1, btrfs) the
bundle shares the cache's blocks instead of copying them (issue 18). This row makes such a
filesystem (a sparse image in the run folder, ``mkfs.xfs -m reflink=1``, loop-mounted there),
copies the warm cache onto it outside the clock, and times, in pairs, ``envpack build --locked``
with both its cache and its output on the XFS against ``cp --reflink=always`` of the cached
package files on the same XFS (the best a reflink copy can do). It also takes the disk space each
used (statvfs free space before and after, after sync) and checks the bundle has the bytes of the
same build written beside the run folder (ext4 here). Needs root, xfsprogs and loop devices;
without them the row says "skipped" and why. The image is unmounted and deleted at the end,
whatever happened.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from bench_common import (
    BenchError,
    Deaths,
    Row,
    Sample,
    clean_env,
    med,
    pair_ratio,
    paired,
    rm,
    run_retrying,
    run_timed,
    secs,
    verdict,
)
from make_channel import MB

MEASURE = (
    "warm build on XFS with reflinks (`build`, cache and bundle on XFS) vs `cp --reflink=always`"
)
# Shared, not copied: what the bundle may take of the disk, as a fraction of the packages it
# holds. A copy takes 100%; sharing leaves the zip headers, each package's last partial block and
# the bundle's own small files (1.2% at 1.5 GB when measured by hand).
SHARE_GOAL = 0.05
GOAL = f"shares the blocks: disk used ≤ {SHARE_GOAL:.0%} of the packages"


def find_mkfs_xfs() -> str | None:
    # /usr/sbin is not on every user's PATH, though root's has it
    return shutil.which("mkfs.xfs") or shutil.which("mkfs.xfs", path="/usr/sbin:/sbin")


def _skipped(reason: str) -> Row:
    return Row("warm_reflink", MEASURE, "skipped", "", "", GOAL, "n/a", f"skipped: {reason}")


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)


def _why(proc: subprocess.CompletedProcess[str]) -> str:
    text = " ".join((proc.stderr or proc.stdout).split())
    return text[:160] or f"exit {proc.returncode}"


def _free(path: Path) -> int:
    """Free bytes of the filesystem at ``path``, once its dirty pages are written."""
    os.sync()
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


EXTENT = re.compile(r"\s*\d+:\s*\d+\.\.\s*\d+:\s*\d+\.\.\s*\d+:\s*(\d+):(.*)$")


def shared_extents(filefrag_v: str) -> tuple[int, int] | None:
    """(bytes in extents flagged "shared", bytes in all extents) from ``filefrag -v``'s output."""
    m = re.search(r"blocks of (\d+) bytes", filefrag_v)
    if m is None:
        return None
    block = int(m.group(1))
    shared = every = 0
    for line in filefrag_v.splitlines():
        ext = EXTENT.match(line)
        if ext:
            length = int(ext.group(1)) * block
            every += length
            shared += length if "shared" in ext.group(2) else 0
    return shared, every


def _filefrag(path: Path, what: str = "the bundle's") -> str:
    """What filefrag -v says of the bundle's extents, as a second witness to statvfs."""
    tool = shutil.which("filefrag") or shutil.which("filefrag", path="/usr/sbin:/sbin")
    if tool is None:
        return "filefrag not installed (e2fsprogs)"
    got = _run([tool, "-v", str(path)])
    counted = shared_extents(got.stdout) if got.returncode == 0 else None
    if counted is None:
        return f"filefrag -v failed: {_why(got)}"
    shared, every = counted
    return f"filefrag -v: {shared / MB:.1f} MB of {what} {every / MB:.1f} MB in shared extents"


def _sfx_use(
    mnt: Path,
    build_argv: list[str],
    bundle_name: str,
    env: dict[str, str],
    timeout: float,
    crashes: Deaths,
) -> str:
    """One ``--sfx`` build on the XFS, outside the clock: the disk the .zip and the -setup.bat
    take together (the .bat is a kernel copy of the zip behind a header padded to 4 KiB, so it
    can share the same blocks) and filefrag's word on the .bat."""
    out = mnt / "out-sfx"
    rm(out)
    try:
        before = _free(mnt)
        try:
            run_retrying([*build_argv, "-o", str(out), "--sfx"], crashes, env=env, timeout=timeout)
        except BenchError as exc:  # a note, not the row's end: the timed build succeeded
            return f"--sfx once failed: {' '.join(str(exc).split())[:160]}"
        used = before - _free(mnt)
        bat = out / bundle_name.replace(".zip", "-setup.bat")
        if not bat.is_file():
            return f"--sfx once: no {bat.name} written"
        return (
            f"--sfx once: .zip and -setup.bat together {used / MB:.1f} MB on disk, "
            f"{_filefrag(bat, 'the .bat')}"
        )
    finally:
        rm(out)


def fs_type(path: Path) -> str:
    """The type of the filesystem holding ``path`` (the longest mount point above it)."""
    best, kind = "", "unknown"
    target = str(path.resolve())
    with open("/proc/self/mounts", encoding="utf-8") as fh:
        for line in fh:
            fields = line.split()
            if len(fields) < 3:
                continue
            point = fields[1].replace("\\040", " ")
            inside = target == point or target.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                best, kind = point, fields[2]
    return kind


def _unmount(mnt: Path, log: Callable[[str], None]) -> None:
    done = _run(["umount", str(mnt)])
    if done.returncode != 0:
        # Busy (a process still in it): detach it now, the kernel frees it when the last user goes
        log(f"  umount {mnt} failed ({_why(done)}); lazy unmount")
        _run(["umount", "-l", str(mnt)])


def reflink_row(
    *,
    run: Path,
    build_argv: list[str],
    bundle_name: str,
    cache: Path,
    cached: Sequence[Path],
    total: int,
    reps: int,
    timeout: float,
    crashes: Deaths,
    log: Callable[[str], None],
) -> Row:
    """``build_argv``: the warm build without ``-o`` (``envpack build RECIPE --locked ...``);
    ``cached``: the package files, relative to ``cache``; ``total``: their bytes."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return _skipped("mounting a filesystem image needs root")
    mkfs = find_mkfs_xfs()
    if mkfs is None:
        return _skipped("mkfs.xfs not installed (Debian: apt-get install xfsprogs)")
    cache_bytes = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file())
    # Room for the cache and headroom: the bundle shares the cache's blocks, but a build that
    # fell back to copying (or cp's copy) must not fill the filesystem.
    size = int(cache_bytes * 1.3) + 512 * MB
    size -= size % MB
    free_here = shutil.disk_usage(run).free
    if free_here < size:
        return _skipped(f"{size / MB:.0f} MB needed for the image, {free_here / MB:.0f} MB free")
    image, mnt = run / "reflink-xfs.img", run / "reflink-xfs"
    try:
        with image.open("wb") as fh:
            fh.truncate(size)  # sparse: takes only what is written
        made = _run([mkfs, "-q", "-m", "reflink=1", str(image)])
        if made.returncode != 0:
            return _skipped(f"mkfs.xfs -m reflink=1 failed: {_why(made)}")
        mnt.mkdir()
        mounted = _run(["mount", "-o", "loop", str(image), str(mnt)])
        if mounted.returncode != 0:
            return _skipped(f"cannot loop-mount an XFS image here: {_why(mounted)}")
        try:
            log(f"warm build on XFS with reflinks ({size / MB:.0f} MB image, loop-mounted)")
            return _measure(
                mnt, run, build_argv, bundle_name, cache, cached, total, reps, timeout, crashes, log
            )
        finally:
            _unmount(mnt, log)
    finally:
        image.unlink(missing_ok=True)
        if mnt.is_dir() and not os.path.ismount(mnt):
            shutil.rmtree(mnt, ignore_errors=True)


def _measure(
    mnt: Path,
    run: Path,
    build_argv: list[str],
    bundle_name: str,
    cache: Path,
    cached: Sequence[Path],
    total: int,
    reps: int,
    timeout: float,
    crashes: Deaths,
    log: Callable[[str], None],
) -> Row:
    here = fs_type(run)
    # The reference bytes: the same warm build, cache and output beside the run folder.
    plain_out = run / "out-reflink-plain"
    rm(plain_out)
    run_retrying(
        [*build_argv, "-o", str(plain_out)],
        crashes,
        env=clean_env(ENVPACK_CACHE_DIR=str(cache)),
        timeout=timeout,
    )
    plain_sha = _sha256(plain_out / bundle_name)
    rm(plain_out)

    xcache = mnt / "cache"
    copied = _run(["cp", "-a", "--", str(cache), str(xcache)])  # across filesystems: a real copy
    if copied.returncode != 0:
        raise BenchError(f"could not copy the cache onto the XFS image: {_why(copied)}")
    env = clean_env(ENVPACK_CACHE_DIR=str(xcache))
    out, cp_out = mnt / "out", mnt / "ref-cp"
    used: dict[str, list[int]] = {"envpack": [], "cp": []}
    shas: list[str] = []
    extents: list[str] = []

    def envpack() -> Sample:
        rm(out)
        before = _free(mnt)
        sample = run_retrying([*build_argv, "-o", str(out)], crashes, env=env, timeout=timeout)
        used["envpack"].append(before - _free(mnt))
        bundle = out / bundle_name
        if not bundle.is_file() or bundle.stat().st_size < total:
            raise BenchError(f"envpack build on XFS wrote no plausible {bundle_name}")
        if not shas:  # once: reading 1.5 GB back costs seconds, and every run writes the same
            shas.append(_sha256(bundle))
            extents.append(_filefrag(bundle))
        rm(out)
        return sample

    def cp() -> Sample:
        rm(cp_out)
        cp_out.mkdir()
        before = _free(mnt)
        argv = ["cp", "--reflink=always", "-t", str(cp_out), *(str(xcache / p) for p in cached)]
        sample = run_timed(argv, env=clean_env(), timeout=timeout)
        used["cp"].append(before - _free(mnt))
        rm(cp_out)
        return sample

    got = paired(reps, {"cp": cp, "envpack": envpack}, log, "xfs")
    sfx_note = _sfx_use(mnt, build_argv, bundle_name, env, timeout, crashes)
    same = shas == [plain_sha]
    worst = max(used["envpack"])
    share = worst / total
    cp_worst = max(used["cp"])
    ratio = pair_ratio(got["envpack"], got["cp"])
    bytes_note = (
        f"same bytes as the build on {here} (sha256 {plain_sha[:12]})"
        if same
        else f"DIFFERENT BYTES from the build on {here}: sha256 {shas[0][:12]} vs {plain_sha[:12]}"
    )
    note = (
        f"disk used (statvfs free space before and after, after sync; the most of {reps} runs): "
        f"bundle {worst / MB:.1f} MB for {total / MB:.0f} MB of packages ({share:.1%}), "
        f"cp --reflink=always {cp_worst / MB:.1f} MB ({cp_worst / total:.1%}); "
        f"{extents[0]}; {sfx_note}; {bytes_note}; "
        f"envpack {total / MB / med(got['envpack']):.0f} MB/s (the warm row: the same build "
        f"on {here})"
    )
    return Row(
        "warm_reflink",
        MEASURE,
        f"{secs(got['envpack'])}, {worst / MB:.1f} MB on disk",
        f"{secs(got['cp'])} cp --reflink=always",
        f"{ratio:.2f}x",
        GOAL,
        verdict(same and share <= SHARE_GOAL),
        note,
    )
