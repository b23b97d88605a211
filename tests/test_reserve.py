"""Blocks reserved before a bundle is written (issue 18, warm build): fallocate with KEEP_SIZE,
never past what is written, the same bytes with or without it, whatever the filesystem answers
(a full one too: with reflinks, the bundle may need almost none of the blocks asked for)."""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

import envpack.archive.kcopy as kcopy
from envpack.archive.write import stage_sfx_from_zip, write_bundle
from envpack.bundle.manifest import Entry
from test_zip_aligned import EPOCH, HEADER, make_entries, with_crcs

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="fallocate(2) is Linux's"
)


def fake_fallocate(err: int, calls: list[tuple[int, int, int]]) -> Callable[..., int]:
    """libc's fallocate as a filesystem that answers ``err`` (0: success) would."""

    def call(fd: int, mode: int, offset: int, length: int) -> int:
        calls.append((mode, offset, length))
        if err:
            ctypes.set_errno(err)
            return -1
        return 0

    return call


def outputs(paths: list[Path]) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in paths}


@linux_only
def test_reserve_allocates_blocks_and_keeps_the_size(tmp_path: Path) -> None:
    target = tmp_path / "f"
    with target.open("wb") as fh:
        kcopy.reserve(fh.fileno(), 0, 8 << 20)
        st = os.fstat(fh.fileno())
    assert st.st_size == 0  # KEEP_SIZE: the writes give the file its size
    if st.st_blocks == 0:
        pytest.skip(f"the filesystem of {tmp_path} does not do fallocate")
    assert st.st_blocks * 512 >= 8 << 20


@linux_only
@pytest.mark.parametrize("form", ["zip", "sfx", "tar", "split"])
def test_nothing_is_reserved_past_the_end(tmp_path: Path, form: str) -> None:
    """What is reserved is at most what is written: no output holds blocks past its end."""
    entries = with_crcs(make_entries(tmp_path / "src"))
    kw: dict[str, object] = {
        "zip": {},
        "sfx": {"header": HEADER},
        "tar": {"fmt": "tar"},
        "split": {"split": 1 << 20},
    }[form]
    paths = write_bundle(tmp_path / "o", "b", "top", entries, EPOCH, **kw)  # type: ignore[arg-type]
    for p in paths:
        st = p.stat()
        block = st.st_blksize or 4096
        # a few blocks of room: ext4 counts an extent-tree block once a file has more than
        # four extents (a package reserved apart from its neighbours is one)
        assert st.st_blocks * 512 <= -(-st.st_size // block) * block + 4 * block, p.name


@pytest.mark.parametrize(
    "err", [0, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINTR, errno.ENOSPC, errno.EDQUOT]
)
def test_the_same_bytes_whatever_the_filesystem_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int
) -> None:
    """fallocate done, refused or unknown: the bundle (whole, split, with a header) is the same
    bytes as one written without asking; the size asked for is what the zip stores at least."""
    entries = with_crcs(make_entries(tmp_path / "src"))
    monkeypatch.setattr(kcopy, "_FALLOCATE", [None])  # never asked: the reference bytes
    want = {
        split: outputs(
            write_bundle(tmp_path / f"w{split}", "b", "top", entries, EPOCH, "zip", HEADER, split)
        )
        for split in (None, 1 << 20)
    }
    calls: list[tuple[int, int, int]] = []
    monkeypatch.setattr(kcopy, "_FALLOCATE", [fake_fallocate(err, calls)])
    monkeypatch.setattr(kcopy.sys, "platform", "linux")
    for split in (None, 1 << 20):
        got = write_bundle(tmp_path / f"g{split}", "b", "top", entries, EPOCH, "zip", HEADER, split)
        assert outputs(got) == want[split]
    bodies = sorted(e.size for e in entries if e.source is not None and e.size)
    # one call per package/wheel body, just before its copy: where its bytes then are
    whole = calls[: len(bodies)]
    assert sorted(length for _, _, length in whole) == bodies
    data = want[None]["b.bat"]
    sources = {e.source.read_bytes() for e in entries if e.source is not None}  # type: ignore[union-attr]
    for mode, offset, length in whole:
        assert mode == 1  # FALLOC_FL_KEEP_SIZE
        assert (offset - len(HEADER)) % 4096 == 0  # aligned from the zip's start
        assert data[offset : offset + length] in sources
    # split in 1 MiB parts: the same bodies, cut where the parts are
    parts = calls[len(bodies) :]
    assert sum(length for _, _, length in parts) == sum(bodies)
    assert all(offset + length <= 1 << 20 for _, offset, length in parts)


def test_the_self_extracting_copy_reserves_the_header_and_the_zip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = with_crcs(make_entries(tmp_path / "src"))
    (zip_path,) = write_bundle(tmp_path / "z", "b", "top", entries, EPOCH)
    (want,) = write_bundle(tmp_path / "w", "b-setup", "top", entries, EPOCH, header=HEADER)
    monkeypatch.setattr(kcopy.sys, "platform", "linux")
    calls: list[tuple[int, int, int]] = []
    monkeypatch.setattr(kcopy, "_FALLOCATE", [fake_fallocate(errno.ENOSPC, calls)])
    staged = stage_sfx_from_zip(zip_path, tmp_path / "out", "b-setup", HEADER)
    try:
        assert staged.files[0].read_bytes() == want.read_bytes()
    finally:
        staged.discard()
    assert calls == [(1, 0, len(HEADER) + zip_path.stat().st_size)]


def test_other_systems_are_not_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int, int]] = []
    monkeypatch.setattr(kcopy, "_FALLOCATE", [fake_fallocate(errno.ENOSPC, calls)])
    for platform in ("darwin", "win32", "freebsd14"):
        monkeypatch.setattr(kcopy.sys, "platform", platform)
        with (tmp_path / "f").open("wb") as fh:
            kcopy.reserve(fh.fileno(), 0, 1 << 20)
    assert calls == []


@pytest.mark.parametrize("fs_type", [0x9123683E, 0xCA451A4E], ids=["btrfs", "bcachefs"])
def test_filesystems_that_free_whole_extents_are_not_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fs_type: int
) -> None:
    """btrfs keeps a reserved extent while any block of it is used: reserving there would cost
    the bundle's full size beside the blocks it shares with the cache (tests/test_reflink)."""
    calls: list[tuple[int, int, int]] = []
    monkeypatch.setattr(kcopy.sys, "platform", "linux")
    monkeypatch.setattr(kcopy, "_FALLOCATE", [fake_fallocate(0, calls)])
    monkeypatch.setattr(kcopy, "_filesystem_type", lambda fd: fs_type)
    with (tmp_path / "f").open("wb") as fh:
        kcopy.reserve(fh.fileno(), 0, 1 << 20)
    assert calls == []
    monkeypatch.setattr(kcopy, "_filesystem_type", lambda fd: 0xEF53)  # ext4
    with (tmp_path / "f").open("wb") as fh:
        kcopy.reserve(fh.fileno(), 0, 1 << 20)
    assert calls == [(1, 0, 1 << 20)]


@linux_only
def test_the_filesystem_type_is_read() -> None:
    fd = os.open("/proc", os.O_RDONLY)
    try:
        assert kcopy._filesystem_type(fd) == 0x9FA0  # PROC_SUPER_MAGIC
    finally:
        os.close(fd)


def test_a_build_with_packages_still_downloading_reserves_each_as_it_is_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cold build's packages are reserved one by one, once each has arrived (before that, the
    cache needs the room): the same calls and bytes as a build with everything there."""
    entries = with_crcs(make_entries(tmp_path / "src"))
    calls: list[tuple[int, int, int]] = []
    monkeypatch.setattr(kcopy.sys, "platform", "linux")
    monkeypatch.setattr(kcopy, "_FALLOCATE", [fake_fallocate(0, calls)])
    arrived: list[str] = []

    def later(e: Entry) -> Callable[[], tuple[Path, int | None]]:
        def wait() -> tuple[Path, int | None]:
            arrived.append(e.arcname)
            assert e.source is not None
            return e.source, e.crc32

        return wait

    waiting = [
        replace(e, source=None, pending=later(e)) if e.source is not None else e for e in entries
    ]
    (streamed,) = write_bundle(tmp_path / "s", "b", "top", waiting, EPOCH)
    from_streamed, calls[:] = list(calls), []
    (whole,) = write_bundle(tmp_path / "w", "b", "top", entries, EPOCH)
    # two copy threads reserve (envpack.archive.copier): the same calls, in either order
    assert sorted(from_streamed) == sorted(calls)
    assert len(calls) == len([e for e in entries if e.source and e.size])
    assert len(arrived) == len(calls) + 1  # the empty package arrives too, and asks nothing
    assert streamed.read_bytes() == whole.read_bytes()


def test_7z_reserves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its small files are compressed: how many bytes it will write is not known."""
    entries = with_crcs(make_entries(tmp_path / "src"))
    calls: list[tuple[int, int, int]] = []
    monkeypatch.setattr(kcopy.sys, "platform", "linux")
    monkeypatch.setattr(kcopy, "_FALLOCATE", [fake_fallocate(0, calls)])
    write_bundle(tmp_path / "o", "b", "top", entries, EPOCH, "7z")
    assert calls == []
