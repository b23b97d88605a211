"""The aligned zip writer (issue 18): stored members at 4 KiB offsets, bodies by kernel copy,
deterministic, read by zipfile, bsdtar and 7zz; plain, self-extracting and split."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import random
import re
import shutil
import struct
import subprocess
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest

import envpack.archive.kcopy as kcopy
from envpack.archive.readers import open_bundle
from envpack.archive.write import write_bundle
from envpack.archive.zip import write_zip_stream
from envpack.bundle.manifest import Entry
from envpack.errors import BundleError

EPOCH = 1600000000  # 2020-09-13 12:26:40 UTC
HEADER = b"@echo off\r\nrem a stand-in batch header\r\nexit /b 0\r\n"
# sizes around the block size and one that spans several copy steps of a 1 MiB part
SIZES = [0, 1, 4095, 4096, 4097, 100_000, 3 << 20]


def make_entries(folder: Path) -> list[Entry]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(18)
    entries = []
    for i, size in enumerate(SIZES):
        path = folder / f"pkg{i}-1.0-0.conda"
        data = rng.randbytes(size)
        path.write_bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        entries.append(Entry.from_file(f"channel/win-64/{path.name}", path, size, sha))
    wheel = folder / "w-1.0-py3-none-any.whl"
    wheel.write_bytes(rng.randbytes(5000))
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    entries.append(Entry.from_file(f"wheels/{wheel.name}", wheel, 5000, sha))
    entries += [
        Entry.from_bytes("README.txt", b"read me\r\n"),
        Entry.from_bytes("setup.bat", b"@echo off\r\n" * 1000),  # 12 KB, made in memory
        Entry.from_bytes("env.txt", b"@EXPLICIT\n"),
        Entry.from_bytes("post-install/01-caf\u00e9.bat", "rem \u00e9\r\n".encode()),
        Entry.from_bytes("channel/win-64/repodata.json", b"{}"),
    ]
    return entries


def with_crcs(entries: list[Entry]) -> list[Entry]:
    """The entries with their CRC-32 known, as a download leaves them."""
    return [
        Entry(e.arcname, e.size, e.sha256, source=e.source, crc32=zlib.crc32(e.source.read_bytes()))
        if e.source is not None
        else e
        for e in entries
    ]


def data_offset(path: Path, info: zipfile.ZipInfo) -> int:
    """Where the member's data starts, from its local header (whose extra is not the central one)."""
    with path.open("rb") as fh:
        fh.seek(info.header_offset)
        head = fh.read(30)
    assert head[:4] == b"PK\x03\x04"
    name_len, extra_len = struct.unpack("<HH", head[26:30])
    return int(info.header_offset + 30 + name_len + extra_len)


def local_extra(path: Path, info: zipfile.ZipInfo) -> bytes:
    with path.open("rb") as fh:
        fh.seek(info.header_offset)
        head = fh.read(30)
        name_len, extra_len = struct.unpack("<HH", head[26:30])
        fh.seek(info.header_offset + 30 + name_len)
        return fh.read(extra_len)


def check_zip(path: Path, entries: list[Entry], skip: int = 0) -> None:
    """Every member reads back with the right bytes and CRC; the packages' and wheels' data at
    4 KiB offsets from the zip's start, the other files unpadded."""
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        infos = zf.infolist()
        assert len(infos) == len(entries)
        by_name = {e.arcname: e for e in entries}
        for info in infos:
            entry = by_name[info.filename.removeprefix("top/")]
            want = entry.data if entry.data is not None else entry.source.read_bytes()  # type: ignore[union-attr]
            assert zf.read(info) == want
            assert zlib.crc32(want) == info.CRC
            assert info.compress_type == zipfile.ZIP_STORED
            assert info.date_time == (2020, 9, 13, 12, 26, 40)
            assert info.create_system == 3 and info.external_attr == 0o100644 << 16
            extra = local_extra(path, info)
            assert info.extra == b""  # the padding is in the local header only, as zipalign does
            if info.filename.endswith((".conda", ".tar.bz2", ".whl")):
                # copied from the download cache: aligned, so a reflink can share the blocks
                assert (data_offset(path, info) - skip) % 4096 == 0, info.filename
                assert extra[:6] == struct.pack("<HHH", 0xD935, len(extra) - 4, 4096)
                assert extra[6:] == bytes(len(extra) - 6)
            else:  # made in memory: nothing to share, no padding
                assert extra == b"", info.filename


def test_members_read_back_aligned_and_identical_twice(tmp_path: Path) -> None:
    entries = make_entries(tmp_path / "src")
    (a,) = write_bundle(tmp_path / "a", "b", "top", entries, EPOCH)
    shuffled = list(entries)
    random.Random(1).shuffle(shuffled)
    (b,) = write_bundle(tmp_path / "b", "b", "top", shuffled, EPOCH)
    check_zip(a, entries)
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as zf:
        first = zf.infolist()[0]
        assert first.header_offset == 0
        assert data_offset(a, first) == 4096
        assert zf.getinfo("top/post-install/01-caf\u00e9.bat").flag_bits & 0x800


def test_self_extracting_form_is_aligned_from_the_zips_start(tmp_path: Path) -> None:
    entries = make_entries(tmp_path / "src")
    (plain,) = write_bundle(tmp_path / "z", "b", "top", entries, EPOCH)
    (sfx,) = write_bundle(tmp_path / "s", "b-setup", "top", entries, EPOCH, header=HEADER)
    assert sfx.name == "b-setup.bat"
    check_zip(sfx, entries, skip=len(HEADER))
    raw, body = sfx.read_bytes(), plain.read_bytes()
    assert raw.startswith(HEADER)
    with zipfile.ZipFile(plain) as zp, zipfile.ZipFile(sfx) as zs:
        assert zs.infolist()[0].header_offset == len(HEADER)  # absolute offsets
        cd_plain, cd_sfx = zp.start_dir, zs.start_dir
    assert cd_sfx == cd_plain + len(HEADER)
    # every byte before the central directory is the plain zip's, moved by the header
    assert raw[len(HEADER) : cd_sfx] == body[:cd_plain]


def test_split_parts_join_to_the_same_zip(tmp_path: Path) -> None:
    entries = make_entries(tmp_path / "src")
    (whole,) = write_bundle(tmp_path / "w", "b", "top", entries, EPOCH)
    out = write_bundle(tmp_path / "p", "b", "top", entries, EPOCH, split=1 << 20)
    parts = [p for p in out if re.fullmatch(r"b\.zip\.\d{3}", p.name)]
    assert [p.name for p in parts] == ["b.zip.001", "b.zip.002", "b.zip.003", "b.zip.004"]
    assert b"".join(p.read_bytes() for p in parts) == whole.read_bytes()
    joined = tmp_path / "joined.zip"
    joined.write_bytes(b"".join(p.read_bytes() for p in parts))
    check_zip(joined, entries)


class NoSeek(io.BytesIO):
    """A stream that cannot go back (a pipe): the CRC must be known before the header."""

    def seekable(self) -> bool:
        return False

    def seek(self, *args: Any) -> int:
        raise io.UnsupportedOperation("seek")


@pytest.mark.parametrize("crcs", [False, True], ids=["crc-unknown", "crc-known"])
def test_every_kind_of_output_gets_the_same_bytes(tmp_path: Path, crcs: bool) -> None:
    """Part files (copy_from), a real file (its descriptor), a BytesIO (plain writes), a stream
    that cannot seek (the CRC read first): one set of bytes, with or without known CRCs."""
    entries = make_entries(tmp_path / "src")
    if crcs:
        entries = with_crcs(entries)
    (whole,) = write_bundle(tmp_path / "w", "b", "top", entries, EPOCH, header=HEADER)
    for buf in (io.BytesIO(), NoSeek()):
        write_zip_stream(buf, "top", entries, EPOCH, HEADER)
        assert buf.getvalue() == whole.read_bytes()
    with (tmp_path / "f.bat").open("wb") as fh:
        write_zip_stream(fh, "top", entries, EPOCH, HEADER)
    assert (tmp_path / "f.bat").read_bytes() == whole.read_bytes()


@pytest.mark.parametrize(
    "refuse",
    ["copy_file_range", "copy_file_range+sendfile", "copy_file_range_returns_0"],
)
def test_kernel_copy_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refuse: str
) -> None:
    entries = with_crcs(make_entries(tmp_path / "src"))  # known CRCs: the bodies are copied
    (want,) = write_bundle(tmp_path / "w", "b", "top", entries, EPOCH)
    calls: list[str] = []
    # a filesystem that may share blocks (not ext4, where only the plain copy is asked)
    monkeypatch.setattr(kcopy, "_filesystem_type", lambda fd: None)

    def no_cfr(*args: Any) -> int:
        calls.append("copy_file_range")
        if refuse == "copy_file_range_returns_0":
            return 0  # what some FUSE filesystems answer
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    def no_sendfile(*args: Any) -> int:
        calls.append("sendfile")
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(os, "copy_file_range", no_cfr)
    if "sendfile" in refuse:
        monkeypatch.setattr(os, "sendfile", no_sendfile)
    for split in (None, 1 << 20):
        out = write_bundle(tmp_path / f"o{split}", "b", "top", entries, EPOCH, split=split)
        got = b"".join(p.read_bytes() for p in out if re.search(r"\.(zip|\d{3})$", p.name))
        assert got == want.read_bytes()
    assert "copy_file_range" in calls
    assert ("sendfile" in calls) == ("sendfile" in refuse)


def test_a_builder_without_copy_file_range_whose_sendfile_needs_a_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """macOS: no copy_file_range, and sendfile to a regular file fails with ENOTSOCK. The bundle
    is still written (the plain copy), whether or not sendfile is offered at all."""
    entries = with_crcs(make_entries(tmp_path / "src"))
    (want,) = write_bundle(tmp_path / "w", "b", "top", entries, EPOCH)

    def socket_only(*args: Any) -> int:
        raise OSError(errno.ENOTSOCK, "Socket operation on non-socket")

    asked: list[str] = []

    def socket_only_counted(*args: Any) -> int:
        asked.append("sendfile")
        return socket_only(*args)

    monkeypatch.setattr(kcopy, "_filesystem_type", lambda fd: None)  # not ext4: kernel first
    monkeypatch.delattr(os, "copy_file_range", raising=False)
    monkeypatch.setattr(os, "sendfile", socket_only_counted)
    for platform in ("darwin", "linux"):
        monkeypatch.setattr(kcopy.sys, "platform", platform)
        (got,) = write_bundle(tmp_path / platform, "b", "top", entries, EPOCH)
        assert got.read_bytes() == want.read_bytes()
        assert ("sendfile" in asked) == (platform == "linux")  # only Linux offers it
        asked.clear()


def test_copy_range_reports_a_short_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # methods=None: the kernel's copy first, as on a filesystem that may share blocks (not ext4)
    monkeypatch.setattr(kcopy, "_filesystem_type", lambda fd: None)
    src = tmp_path / "src"
    src.write_bytes(b"x" * 10_000)
    dst = tmp_path / "dst"
    for methods in (None, [kcopy.copy_methods()[-1]]):
        with src.open("rb") as s, dst.open("wb") as d:
            assert kcopy.copy_range(s.fileno(), 100, d.fileno(), 5, 20_000, methods=methods) == 9900
        assert dst.read_bytes() == bytes(5) + b"x" * 9900


def test_a_package_that_changed_size_is_refused(tmp_path: Path) -> None:
    entries = make_entries(tmp_path / "src")
    victim = next(e for e in entries if e.size == 4097)
    assert victim.source is not None
    victim.source.write_bytes(b"y" * 5000)
    with pytest.raises(BundleError) as err:
        write_bundle(tmp_path / "o", "b", "top", entries, EPOCH)
    assert str(err.value) == (
        "channel/win-64/pkg4-1.0-0.conda changed while the bundle was written "
        "(5000 bytes, expected 4097)"
    )
    assert list((tmp_path / "o").iterdir()) == []


def test_a_given_crc_is_written_as_given(tmp_path: Path) -> None:
    """Decision: a known CRC-32 (from the download that checked the sha256) is trusted, not
    re-read: reading it back would cost the read the kernel copy saves. A wrong one is caught
    where it matters: zipfile and tar.exe refuse the member, and verify names it."""
    entries = make_entries(tmp_path / "src")
    good = [
        Entry.from_file(e.arcname, e.source, e.size, e.sha256) if e.source else e for e in entries
    ]
    target = next(e for e in good if e.size == 100_000)
    assert target.source is not None
    right = zlib.crc32(target.source.read_bytes())
    with_crc = [
        Entry(e.arcname, e.size, e.sha256, source=e.source, crc32=right) if e is target else e
        for e in good
    ]
    (a,) = write_bundle(tmp_path / "a", "b", "top", with_crc, EPOCH)
    (b,) = write_bundle(tmp_path / "b", "b", "top", good, EPOCH)
    assert a.read_bytes() == b.read_bytes()  # a right CRC changes nothing
    wrong = [
        Entry(e.arcname, e.size, e.sha256, source=e.source, crc32=right ^ 1) if e is target else e
        for e in good
    ]
    (c,) = write_bundle(tmp_path / "c", "b", "top", wrong, EPOCH)
    with zipfile.ZipFile(c) as zf:
        assert right ^ 1 == zf.getinfo(f"top/{target.arcname}").CRC
        assert zf.testzip() == f"top/{target.arcname}"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


@pytest.mark.parametrize("form", ["zip", "bat"])
def test_bsdtar_and_7zz_read_it(tmp_path: Path, form: str) -> None:
    entries = make_entries(tmp_path / "src")
    header = HEADER if form == "bat" else b""
    (path,) = write_bundle(tmp_path / "o", "b", "top", entries, EPOCH, header=header)
    bsdtar = _tool("bsdtar")
    listing = subprocess.run(
        [bsdtar, "-tvf", str(path)], capture_output=True, text=True, timeout=120, check=True
    ).stdout.splitlines()
    assert len(listing) == len(entries)
    assert any(line.endswith("top/channel/win-64/pkg6-1.0-0.conda") for line in listing)
    if not header:  # read as a stream too: from the local headers alone, no directory
        streamed = subprocess.run(
            [bsdtar, "-tf", "-"], input=path.read_bytes(), capture_output=True, timeout=120
        )
        assert streamed.returncode == 0, streamed.stderr
        assert len(streamed.stdout.splitlines()) == len(entries)
    dest = tmp_path / "x"
    dest.mkdir()
    subprocess.run([bsdtar, "-xf", str(path), "-C", str(dest)], check=True, timeout=120)
    for e in entries:
        want = e.data if e.data is not None else e.source.read_bytes()  # type: ignore[union-attr]
        assert (dest / "top" / e.arcname).read_bytes() == want, e.arcname
    seven = _tool("7zz")
    tested = subprocess.run([seven, "t", str(path)], capture_output=True, text=True, timeout=120)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "Everything is Ok" in tested.stdout
    assert f"Files: {len(entries)}" in tested.stdout


def test_overlap_is_measured_from_the_local_headers_data_start(tmp_path: Path) -> None:
    """A member whose data runs one byte into the next member's header is caught, although its
    local header is 4 KiB long (the padding): counting a bare 30-byte header would miss it."""
    entries = [*make_entries(tmp_path / "src"), Entry.from_bytes("envpack.json", b"{}\n")]
    (path,) = write_bundle(tmp_path / "o", "b", "top", entries, EPOCH)
    name = "top/channel/win-64/pkg5-1.0-0.conda"  # 100,000 bytes, then pkg6's header
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
        after = min(i.header_offset for i in zf.infolist() if i.header_offset > info.header_offset)
    start = data_offset(path, info)
    assert start - info.header_offset > 4000  # the padding
    lie = after - start + 1  # one byte into the next local header
    assert info.header_offset + 30 + lie <= after  # what a bare-header count would accept
    raw = bytearray(path.read_bytes())
    at = info.header_offset
    raw[at + 18 : at + 26] = struct.pack("<II", lie, lie)
    central = raw.find(b"PK\x01\x02")
    while raw[central + 46 : central + 46 + len(name)] != name.encode():
        central = raw.find(b"PK\x01\x02", central + 4)
    raw[central + 20 : central + 28] = struct.pack("<II", lie, lie)
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(raw))
    with open_bundle(bad) as reader:
        assert reader.damaged("channel/win-64/pkg5-1.0-0.conda") == (
            "overlaps the member after it in the archive (zip bomb?)"
        )
        assert reader.damaged("channel/win-64/pkg4-1.0-0.conda") is None
    with open_bundle(path) as reader:
        assert all(reader.damaged(n) is None for n in reader.names())
