"""Entry.ready()/pending/crc32 and the member order every container writes (issue 18)."""

from __future__ import annotations

import tarfile
import threading
import zipfile
from pathlib import Path

from envpack.archive.write import write_bundle
from envpack.bundle.manifest import Entry, arcname_key, manifest_files

EPOCH = 1600000000


def test_ready_without_pending_is_the_entry_itself(tmp_path: Path) -> None:
    e = Entry.from_bytes("env.txt", b"x")
    assert e.ready() is e
    assert e.crc32 is None and e.pending is None


def test_ready_fills_source_and_crc(tmp_path: Path) -> None:
    f = tmp_path / "a.conda"
    f.write_bytes(b"abc")
    calls: list[int] = []

    def pending() -> tuple[Path, int | None]:
        calls.append(1)
        return f, 0x352441C2

    e = Entry("channel/noarch/a.conda", 3, "0" * 64, pending=pending)
    r = e.ready()
    assert (r.source, r.crc32, r.pending) == (f, 0x352441C2, None)
    assert (r.arcname, r.size, r.sha256) == ("channel/noarch/a.conda", 3, "0" * 64)
    assert calls == [1]
    assert r.ready() is r


def test_ready_keeps_a_known_crc_when_the_download_knows_none(tmp_path: Path) -> None:
    f = tmp_path / "a.conda"
    f.write_bytes(b"abc")
    e = Entry("channel/noarch/a.conda", 3, "0" * 64, crc32=7, pending=lambda: (f, None))
    assert e.ready().crc32 == 7


def test_order_packages_first_then_the_rest_by_name() -> None:
    names = [
        "setup.bat",
        "channel/win-64/repodata.json",
        "channel/win-64/zlib-1.conda",
        "README.txt",
        "channel/noarch/b-1.tar.bz2",
        "envpack.json",
        "channel/noarch/repodata.json",
        "channel/win-64/a-1.conda",
        "wheels/x-1-py3-none-any.whl",
    ]
    entries = [Entry.from_bytes(n, b"") for n in names]
    assert [e.arcname for e in sorted(entries, key=arcname_key)] == [
        "channel/noarch/b-1.tar.bz2",
        "channel/win-64/a-1.conda",
        "channel/win-64/zlib-1.conda",
        "README.txt",
        "channel/noarch/repodata.json",
        "channel/win-64/repodata.json",
        "envpack.json",
        "setup.bat",
        "wheels/x-1-py3-none-any.whl",
    ]
    # the manifest's file list stays by name
    assert list(manifest_files(entries)) == sorted(names)


def _entries(tmp_path: Path) -> list[Entry]:
    pkg = tmp_path / "z-1.conda"
    pkg.write_bytes(b"PK package bytes")
    return [
        Entry.from_bytes("setup.bat", b"@echo off\r\n"),
        Entry.from_bytes("envpack.json", b"{}\n"),
        Entry.from_file("channel/win-64/z-1.conda", pkg, 16, "0" * 64),
        Entry.from_bytes("channel/win-64/repodata.json", b"{}"),
        Entry.from_bytes("channel/noarch/a-1.tar.bz2", b"BZh"),
    ]


WANT = [
    "top/channel/noarch/a-1.tar.bz2",
    "top/channel/win-64/z-1.conda",
    "top/channel/win-64/repodata.json",
    "top/envpack.json",
    "top/setup.bat",
]


def test_zip_and_tar_members_are_in_that_order(tmp_path: Path) -> None:
    (z,) = write_bundle(tmp_path / "z", "b", "top", _entries(tmp_path), EPOCH)
    with zipfile.ZipFile(z) as zf:
        assert zf.namelist() == WANT
    (t,) = write_bundle(tmp_path / "t", "b", "top", _entries(tmp_path), EPOCH, fmt="tar")
    with tarfile.open(t) as tf:
        assert [m.name for m in tf.getmembers() if m.isfile()] == WANT


def test_writers_wait_for_a_pending_package(tmp_path: Path) -> None:
    """The first package is written before the second one has arrived."""
    first = tmp_path / "a-1.tar.bz2"
    first.write_bytes(b"BZh first")
    late = tmp_path / "late"
    late.mkdir()
    arrived = threading.Event()
    first_written = threading.Event()
    calls: list[str] = []

    def wait_for_second() -> tuple[Path, int | None]:
        calls.append("second")
        first_written.set()
        assert arrived.wait(60)
        return late / "z-1.conda", None

    def first_ready() -> tuple[Path, int | None]:
        calls.append("first")
        return first, None

    def deliver() -> None:
        # the second package arrives only once the writer has asked for it
        assert first_written.wait(60)
        (late / "z-1.conda").write_bytes(b"PK late")
        arrived.set()

    entries = [
        Entry("channel/noarch/a-1.tar.bz2", 9, "0" * 64, pending=first_ready),
        Entry("channel/win-64/z-1.conda", 7, "0" * 64, pending=wait_for_second),
        Entry.from_bytes("envpack.json", b"{}\n"),
    ]
    thread = threading.Thread(target=deliver)
    thread.start()
    try:
        (z,) = write_bundle(tmp_path / "out", "b", "top", entries, EPOCH)
    finally:
        arrived.set()
        thread.join(60)
    assert calls == ["first", "second"]  # one at a time, in member order
    with zipfile.ZipFile(z) as zf:
        assert zf.read("top/channel/win-64/z-1.conda") == b"PK late"
        assert zf.read("top/channel/noarch/a-1.tar.bz2") == b"BZh first"
        assert zf.testzip() is None
