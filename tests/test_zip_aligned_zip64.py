"""ZIP64 in the aligned writer: a member over 4 GiB, offsets past 4 GiB, and the fields exactly
as APPNOTE 4.5.3 wants them. The big member is a sparse file of zeros; the fast tests write it
through a sink that leaves a hole for a body of zeros (the same bytes a copy gives, without
writing 4.3 GB), the slow one copies it for real."""

from __future__ import annotations

import errno
import io
import os
import shutil
import struct
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import envpack.archive.sfxcopy as sfxcopy
import envpack.archive.zipwriter as zipwriter
from envpack.archive.kcopy import copy_range
from envpack.archive.write import stage_sfx_from_zip, write_bundle
from envpack.archive.zip import write_zip_stream
from envpack.archive.zipwriter import Member, central_directory, local_header
from envpack.bundle.manifest import Entry

EPOCH = 1600000000
BIG = 4_300_000_000  # over 4 GiB (4,294,967,296)
BIG_CRC = 0xE4D49DB3  # zlib.crc32 of BIG zero bytes
HEADER = b"@echo off\r\nexit /b 0\r\n"


# --------------------------------------------------------------------------- the fields


def test_local_header_below_and_at_the_limit() -> None:
    small = local_header(Member(b"a", 0, 0x12345678, 0xFFFFFFFE, 0, 0x6355, 0x512D), True)
    assert small[:30] == struct.pack(
        "<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0x6355, 0x512D, 0x12345678,
        0xFFFFFFFE, 0xFFFFFFFE, 1, 4096 - 31,
    )  # fmt: skip
    assert small[31:37] == struct.pack("<HHH", 0xD935, 4096 - 31 - 4, 4096)
    big = local_header(Member(b"a", 0, 0x12345678, 0xFFFFFFFF, 0, 0x6355, 0x512D), True)
    assert big[:30] == struct.pack(
        "<4sHHHHHIIIHH", b"PK\x03\x04", 45, 0, 0, 0x6355, 0x512D, 0x12345678,
        0xFFFFFFFF, 0xFFFFFFFF, 1, 4096 - 31,
    )  # fmt: skip
    assert big[31:51] == struct.pack("<HHQQ", 1, 16, 0xFFFFFFFF, 0xFFFFFFFF)
    assert big[51:57] == struct.pack("<HHH", 0xD935, 4096 - 31 - 20 - 4, 4096)
    assert len(big) == len(small) == 4096
    # a member made in memory is not padded: the zip64 extra alone, or nothing
    plain = local_header(Member(b"a", 0, 0x12345678, 0xFFFFFFFF, 8, 0x6355, 0x512D), False)
    assert plain == big[:28] + struct.pack("<H", 20) + b"a" + big[31:51]
    assert len(local_header(Member(b"a", 0, 1, 10, 8, 0x6355, 0x512D), False)) == 31


def test_central_directory_zip64_fields_only_where_they_overflow() -> None:
    members = [
        Member(b"a", 0, 1, 10, 0, 0, 0x21),  # nothing overflows
        Member(b"b", 0, 2, 0xFFFFFFFF, 4096, 0, 0x21),  # the size
        Member(b"c", 0, 3, 5, 0xFFFFF000, 0, 0x21),  # the offset, once moved by the header
    ]
    cd = central_directory(members, 0x1000, 0x1_0000_0000)
    entries = []
    at = 0
    for _ in members:
        fixed = struct.unpack_from("<4sBBHHHHHIIIHHHHHII", cd, at)
        extra_len = fixed[12]
        extra = cd[at + 47 : at + 47 + extra_len]
        entries.append((fixed[1], fixed[3], fixed[9], fixed[10], fixed[17], extra))
        at += 46 + 1 + extra_len
    assert entries == [
        (20, 20, 10, 10, 0x1000, b""),
        (
            45,
            45,
            0xFFFFFFFF,
            0xFFFFFFFF,
            0x2000,
            struct.pack("<HHQQ", 1, 16, 0xFFFFFFFF, 0xFFFFFFFF),
        ),
        (45, 45, 5, 5, 0xFFFFFFFF, struct.pack("<HHQ", 1, 8, 0x1_0000_0000)),
    ]
    cd_size = at
    # the directory starts past 4 GiB: a ZIP64 end record, its locator, then the plain one
    end64 = struct.unpack_from("<4sQBBHIIQQQQ", cd, at)
    assert end64 == (b"PK\x06\x06", 44, 45, 3, 45, 0, 0, 3, 3, cd_size, 0x1_0000_1000)
    locator = struct.unpack_from("<4sIQI", cd, at + 56)
    assert locator == (b"PK\x06\x07", 0, 0x1_0000_1000 + cd_size, 1)
    end = struct.unpack_from("<4sHHHHIIH", cd, at + 76)
    assert end == (b"PK\x05\x06", 0, 0, 3, 3, cd_size, 0xFFFFFFFF, 0)
    assert len(cd) == at + 76 + 22


def test_no_zip64_end_record_below_the_limits() -> None:
    cd = central_directory([Member(b"a", 0, 1, 10, 0, 0, 0x21)], 0, 4106)
    assert b"PK\x06\x06" not in cd and b"PK\x06\x07" not in cd
    assert cd[-22:] == struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, 47, 4106, 0)


# --------------------------------------------------------------------------- sparse files


class SparseSink(io.FileIO):
    """A real output file in which a copied body of zeros becomes a hole."""

    def copy_from(
        self,
        src: int,
        src_off: int,
        count: int,
        advance: Callable[[int], None] | None = None,
        short: Callable[[int], BaseException] | None = None,
    ) -> int:
        assert not list(data_regions(src, src_off, src_off + count)), "only for zeros"
        end = self.tell() + count
        self.truncate(max(end, os.fstat(self.fileno()).st_size))
        self.seek(end)
        return count


def data_regions(fd: int, start: int, end: int) -> Iterator[tuple[int, int]]:
    pos = start
    while pos < end:
        try:
            data = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                return
            raise
        if data >= end:
            return
        hole = min(os.lseek(fd, data, os.SEEK_HOLE), end)
        yield data, hole
        pos = hole


def sparse_copy_range(
    src: int,
    src_off: int,
    dst: int,
    dst_off: int,
    count: int,
    advance: Callable[[int], None] | None = None,
    methods: object = None,
) -> int:
    """copy_range that copies only a sparse source's data and leaves its holes holes."""
    for start, stop in list(data_regions(src, src_off, src_off + count)):
        assert copy_range(src, start, dst, dst_off + start - src_off, stop - start) == stop - start
    if os.fstat(dst).st_size < dst_off + count:
        os.ftruncate(dst, dst_off + count)
    return count


def same_sparse_files(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with a.open("rb") as fa, b.open("rb") as fb:
        size = a.stat().st_size
        regions = sorted({*data_regions(fa.fileno(), 0, size), *data_regions(fb.fileno(), 0, size)})
        for start, stop in regions:
            fa.seek(start)
            fb.seek(start)
            if fa.read(stop - start) != fb.read(stop - start):
                return False
    return True


@pytest.fixture(scope="module")
def big_zip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[Entry]]]:
    folder = tmp_path_factory.mktemp("zip64")
    big = folder / "big-1.0-0.conda"
    with big.open("wb") as fh:
        fh.truncate(BIG)
    entries = [
        # the CRC as the download would give it (the writer computing it is tested below)
        Entry("channel/win-64/big-1.0-0.conda", BIG, "0" * 64, source=big, crc32=BIG_CRC),
        Entry.from_bytes("channel/win-64/repodata.json", b"{}"),
        Entry.from_bytes("envpack.json", b"{}\n"),
    ]
    path = folder / "b.zip"
    with SparseSink(path, "w") as sink:
        write_zip_stream(sink, "top", entries, EPOCH)
    yield path, entries
    shutil.rmtree(folder, ignore_errors=True)


def test_a_member_over_4_gib_reads_back(big_zip: tuple[Path, list[Entry]]) -> None:
    path, _ = big_zip
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        assert [(i.filename, i.file_size) for i in infos] == [
            ("top/channel/win-64/big-1.0-0.conda", BIG),
            ("top/channel/win-64/repodata.json", 2),
            ("top/envpack.json", 3),
        ]
        assert infos[0].CRC == BIG_CRC
        assert infos[1].header_offset > 0xFFFFFFFF  # offsets past 4 GiB
        assert zf.read("top/envpack.json") == b"{}\n"
        assert zf.testzip() is None  # reads all 4.3 GB and checks the CRC
    raw_tail = _tail(path, 200)
    assert b"PK\x06\x06" in raw_tail and b"PK\x06\x07" in raw_tail


def _tail(path: Path, n: int) -> bytes:
    with path.open("rb") as fh:
        fh.seek(-n, os.SEEK_END)
        return fh.read()


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def test_bsdtar_and_7zz_list_it(big_zip: tuple[Path, list[Entry]]) -> None:
    path, _ = big_zip
    listing = subprocess.run(
        [_tool("bsdtar"), "-tvf", str(path)], capture_output=True, text=True, timeout=120
    )
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert len(lines) == 3
    assert f" {BIG} " in lines[0] and lines[0].endswith("top/channel/win-64/big-1.0-0.conda")
    seven = subprocess.run(
        [_tool("7zz"), "l", "-slt", str(path)], capture_output=True, text=True, timeout=120
    )
    assert seven.returncode == 0, seven.stdout + seven.stderr
    assert f"Size = {BIG}" in seven.stdout
    assert "CRC = E4D49DB3" in seven.stdout
    assert "ERROR" not in seven.stdout and "Warnings" not in seven.stdout


def test_the_bat_from_the_zip_crossing_4_gib_is_the_full_write(
    big_zip: tuple[Path, list[Entry]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The header moves the directory and the last members' offsets: the shifted directory of
    stage_sfx_from_zip must be what a full write with the header gives."""
    path, entries = big_zip
    full = tmp_path / "full.bat"
    with SparseSink(full, "w") as sink:
        write_zip_stream(sink, "top", entries, EPOCH, HEADER)
    monkeypatch.setattr(sfxcopy, "copy_range", sparse_copy_range)
    staged = stage_sfx_from_zip(path, tmp_path / "out", "b-setup", HEADER)
    try:
        (made,) = staged.commit()
    finally:
        staged.discard()
    assert made.name == "b-setup.bat"
    assert same_sparse_files(made, full)
    with zipfile.ZipFile(made) as zf:
        assert zf.infolist()[0].header_offset == len(HEADER)
        assert zf.read("top/envpack.json") == b"{}\n"
        assert zf.getinfo("top/channel/win-64/big-1.0-0.conda").file_size == BIG


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("ENVPACK_SLOW"),
    reason="writes 4.3 GB for real (13-30 s, 4.3 GB of disk); set ENVPACK_SLOW=1 to run",
)
@pytest.mark.parametrize("crc", [BIG_CRC, None], ids=["kernel-copy", "read-sum-write"])
def test_real_write_of_a_member_over_4_gib(tmp_path: Path, crc: int | None) -> None:
    """With the CRC known the body is kernel-copied; without, it is read, summed and written and
    the CRC patched into the zip64 local header afterwards."""
    big = tmp_path / "big-1.0-0.conda"
    with big.open("wb") as fh:
        fh.truncate(BIG)
    entries = [
        Entry("channel/win-64/big-1.0-0.conda", BIG, "0" * 64, source=big, crc32=crc),
        Entry.from_bytes("envpack.json", b"{}\n"),
    ]
    try:
        (path,) = write_bundle(tmp_path / "o", "b", "top", entries, EPOCH)
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo("top/channel/win-64/big-1.0-0.conda")
            assert (info.file_size, info.CRC) == (BIG, BIG_CRC)
            assert zf.testzip() is None
        with path.open("rb") as fh:
            fh.seek(info.header_offset + 14)
            assert fh.read(12) == struct.pack("<III", BIG_CRC, 0xFFFFFFFF, 0xFFFFFFFF)
        listing = subprocess.run(
            [_tool("bsdtar"), "-tvf", str(path)], capture_output=True, text=True, timeout=300
        )
        assert listing.returncode == 0 and f" {BIG} " in listing.stdout
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


# --------------------------------------------------------------------------- every zip64 path


def test_every_zip64_path_with_lowered_thresholds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With zip64 from 1 KiB and 4 members on, a small bundle takes every zip64 path (local and
    central extras, offsets, the end record and its locator) and every reader still takes it,
    plain, self-extracting, and made from the zip."""
    monkeypatch.setattr(zipwriter, "ZIP64_AT", 1 << 10)
    monkeypatch.setattr(zipwriter, "ZIP64_COUNT_AT", 4)
    src = tmp_path / "src"
    src.mkdir()
    entries = []
    for i, size in enumerate([10, 5000, 70_000, 1 << 20]):
        path = src / f"p{i}-1-0.conda"
        path.write_bytes(bytes([i + 1]) * size)
        entries.append(Entry.from_file(f"channel/win-64/{path.name}", path, size, "0" * 64))
    entries += [
        Entry.from_bytes("README.txt", b"r" * 2000),
        Entry.from_bytes("envpack.json", b"{}"),
    ]
    (plain,) = write_bundle(tmp_path / "z", "b", "top", entries, EPOCH)
    (full,) = write_bundle(tmp_path / "s", "b-setup", "top", entries, EPOCH, header=HEADER)
    staged = stage_sfx_from_zip(plain, tmp_path / "c", "b-setup", HEADER)
    try:
        (made,) = staged.commit()
    finally:
        staged.discard()
    assert made.read_bytes() == full.read_bytes()
    raw = plain.read_bytes()
    assert raw.count(b"PK\x06\x06") == 1 and raw.count(b"PK\x06\x07") == 1
    # the 5000-byte member's local header carries both sizes in a zip64 extra
    with zipfile.ZipFile(plain) as zf:
        info = zf.getinfo("top/channel/win-64/p1-1-0.conda")
        at = info.header_offset
    assert raw[at + 18 : at + 26] == b"\xff" * 8
    name_len = len(info.filename)
    assert raw[at + 30 + name_len : at + 30 + name_len + 20] == struct.pack(
        "<HHQQ", 1, 16, 5000, 5000
    )
    streamed = subprocess.run(
        [_tool("bsdtar"), "-tvf", "-"], input=raw, capture_output=True, timeout=120
    )  # the local headers alone (their zip64 extras), no directory
    assert streamed.returncode == 0, streamed.stderr
    assert b" 1048576 " in streamed.stdout and len(streamed.stdout.splitlines()) == 6
    for archive in (plain, made):
        with zipfile.ZipFile(archive) as zf:
            assert zf.testzip() is None
            assert [i.file_size for i in zf.infolist()] == [10, 5000, 70_000, 1 << 20, 2000, 2]
        dest = tmp_path / f"x-{archive.suffix[1:]}"
        dest.mkdir()
        subprocess.run(
            [_tool("bsdtar"), "-xf", str(archive), "-C", str(dest)], check=True, timeout=120
        )
        for e in entries:
            want = e.data if e.data is not None else e.source.read_bytes()  # type: ignore[union-attr]
            assert (dest / "top" / e.arcname).read_bytes() == want, e.arcname
        tested = subprocess.run(
            [_tool("7zz"), "t", str(archive)], capture_output=True, text=True, timeout=120
        )
        assert tested.returncode == 0 and "Everything is Ok" in tested.stdout, tested.stdout
