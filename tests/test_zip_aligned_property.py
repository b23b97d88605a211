"""Property test of the aligned zip writer: any set of entries (sizes around the block size,
names ASCII or not, CRCs known or not, split or whole, with or without a header) reads back with
zipfile byte for byte, packages aligned, and the .bat made from the zip is the full write."""

from __future__ import annotations

import hashlib
import re
import shutil
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from envpack.archive.write import stage_sfx_from_zip, write_bundle
from envpack.bundle.manifest import Entry

EPOCH = 1600000000
HEADER = b"@echo off\r\nexit /b 0\r\n"

sizes = st.one_of(st.sampled_from([0, 1, 4095, 4096, 4097, 8191, 8192]), st.integers(0, 300_000))
stems = st.text(alphabet="abcxyz\u00e9\u4e2d-_", min_size=1, max_size=12)
members = st.lists(
    st.tuples(
        st.sampled_from(["channel/win-64/{}.conda", "channel/noarch/{}.tar.bz2", "{}.txt"]),
        stems,
        sizes,
        st.booleans(),  # a file (True) or bytes in memory
        st.booleans(),  # its CRC-32 known up front
    ),
    min_size=1,
    max_size=8,
    unique_by=lambda m: m[0].format(m[1]).casefold(),
)


def build(folder: Path, spec: list[tuple[str, str, int, bool, bool]]) -> list[Entry]:
    entries = []
    for i, (pattern, stem, size, on_disk, crc_known) in enumerate(spec):
        name = pattern.format(stem)
        pattern = bytes((i * 7 + j) % 251 for j in range(251))
        data = (pattern * (size // 251 + 1))[:size]
        sha = hashlib.sha256(data).hexdigest()
        if on_disk:
            path = folder / f"{i}.bin"
            path.write_bytes(data)
            crc = zlib.crc32(data) if crc_known else None
            entries.append(Entry(name, size, sha, source=path, crc32=crc))
        else:
            entries.append(Entry(name, size, sha, data=data))
    return entries


def parts_joined(files: list[Path]) -> bytes:
    return b"".join(p.read_bytes() for p in files if re.search(r"\.\d{3}$", p.name))


@settings(max_examples=30, deadline=None)
@given(members, st.sampled_from([None, 1 << 20]))
def test_any_entries_read_back(
    spec: list[tuple[str, str, int, bool, bool]], split: int | None
) -> None:
    base = Path(tempfile.mkdtemp(prefix="zip-aligned-"))
    try:
        entries = build(base, spec)
        (whole,) = write_bundle(base / "z", "b", "top", entries, EPOCH)
        raw = whole.read_bytes()
        with zipfile.ZipFile(whole) as zf:
            assert zf.testzip() is None
            for e in entries:
                info = zf.getinfo(f"top/{e.arcname}")
                want = e.data if e.data is not None else e.source.read_bytes()  # type: ignore[union-attr]
                assert zf.read(info) == want
                at = info.header_offset
                name_len, extra_len = struct.unpack("<HH", raw[at + 26 : at + 30])
                if e.arcname.endswith((".conda", ".tar.bz2")):
                    assert (at + 30 + name_len + extra_len) % 4096 == 0
                else:
                    assert extra_len == 0
        if split is not None:
            out = write_bundle(base / "p", "b", "top", entries, EPOCH, split=split)
            assert parts_joined(out) == raw
        (full,) = write_bundle(base / "s", "b-setup", "top", entries, EPOCH, header=HEADER)
        staged = stage_sfx_from_zip(whole, base / "c", "b-setup", HEADER)
        try:
            (made,) = staged.commit()
        finally:
            staged.discard()
        assert made.read_bytes() == full.read_bytes()
    finally:
        shutil.rmtree(base, ignore_errors=True)
