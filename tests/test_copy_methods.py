"""Which copy a bundle's package bodies get (envpack.archive.kcopy.copy_methods): into ext2/3/4
only the plain copy through a 128 KiB buffer (the kernel's copy is a slower splice there), into
any other filesystem the kernel's copy first (it may share blocks, or copy on the server). Either
way the bytes are the same, for the zip, its split parts and the self-extracting .bat."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

import envpack.archive.kcopy as kcopy
from cached_packages import cached_packages
from envpack.archive.write import stage_sfx_from_zip, write_bundle
from envpack.bundle.manifest import Entry

if not sys.platform.startswith("linux"):
    pytest.skip("the filesystem type is read on Linux only", allow_module_level=True)

EPOCH = 1_700_000_000
EXT4 = 0xEF53
XFS = 0x58465342


def _entries(tmp_path: Path) -> list[Entry]:
    sizes = [3 << 20, 200_001, 1, 4096, (1 << 20) + 7]
    return [
        *cached_packages(tmp_path / "cache", sizes),
        Entry.from_bytes("setup.bat", b"@echo off\r\n"),
    ]


class _Spy:
    """Counts the kernel copies and the plain copy's read sizes, passing every call on."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.kernel: list[str] = []
        self.reads: list[int] = []
        real_cfr, real_sendfile, real_preadv = os.copy_file_range, os.sendfile, os.preadv

        def cfr(*args: Any) -> int:
            self.kernel.append("copy_file_range")
            return real_cfr(*args)

        def sendfile(*args: Any) -> int:
            self.kernel.append("sendfile")
            return real_sendfile(*args)

        def preadv(fd: int, buffers: list[memoryview], offset: int) -> int:
            self.reads.append(sum(len(b) for b in buffers))
            return real_preadv(fd, buffers, offset)

        monkeypatch.setattr(os, "copy_file_range", cfr)
        monkeypatch.setattr(os, "sendfile", sendfile)
        monkeypatch.setattr(os, "preadv", preadv)


def _build_all(tmp_path: Path, tag: str, entries: list[Entry]) -> dict[str, bytes]:
    (whole,) = write_bundle(tmp_path / f"{tag}-w", "b", "b", entries, EPOCH)
    parts = write_bundle(tmp_path / f"{tag}-s", "b", "b", entries, EPOCH, split=1 << 20)
    sfx = stage_sfx_from_zip(whole, tmp_path / f"{tag}-x", "b-setup", b"@rem header\r\n" * 9)
    try:
        bat = sfx.files[0].read_bytes()
    finally:
        sfx.discard()
    joined = b"".join(p.read_bytes() for p in parts if p.name.startswith("b.zip."))
    return {"zip": whole.read_bytes(), "split": joined, "bat": bat}


def test_into_ext4_only_the_plain_copy_with_a_128_kib_buffer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = _entries(tmp_path)
    monkeypatch.setattr(kcopy, "_filesystem_type", lambda fd: None)
    want = _build_all(tmp_path, "ref", entries)
    monkeypatch.setattr(kcopy, "_filesystem_type", lambda fd: EXT4)
    spy = _Spy(monkeypatch)
    got = _build_all(tmp_path, "ext4", entries)
    assert got == want
    assert spy.kernel == []
    # the bodies (3 MiB the largest) were read 128 KiB at a time, never more
    assert max(spy.reads) == 131072
    assert sum(spy.reads) >= 3 * (3 << 20)  # zip, parts, and the .bat's copy of the zip


def test_into_other_filesystems_the_kernel_copy_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = _entries(tmp_path)
    monkeypatch.setattr(kcopy, "_filesystem_type", lambda fd: EXT4)
    want = _build_all(tmp_path, "ref", entries)
    monkeypatch.setattr(kcopy, "_filesystem_type", lambda fd: XFS)
    spy = _Spy(monkeypatch)
    got = _build_all(tmp_path, "xfs", entries)
    assert got == want
    assert "copy_file_range" in spy.kernel
    assert spy.reads == []  # the kernel did every copy


def test_the_methods_offered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with open(tmp_path / "f", "wb") as fh:
        fd = fh.fileno()
        monkeypatch.setattr(kcopy, "_filesystem_type", lambda fd: EXT4)
        [plain] = kcopy.copy_methods(fd)
        assert isinstance(plain, kcopy._ReadWrite)
        monkeypatch.setattr(kcopy, "_filesystem_type", lambda fd: XFS)
        assert kcopy.copy_methods(fd)[0] is kcopy._by_copy_file_range
        assert len(kcopy.copy_methods(fd)) == 3
        assert len(kcopy.copy_methods()) == 3  # no descriptor: nothing to ask
