"""7z bundles: what Debian's bsdtar (libarchive) and 7-Zip read, determinism, streaming, reading.

A real bundle is built through the CLI from a real channel served on 127.0.0.1; its members then
become Entries that formats.write_bundle writes again as a zip (byte-identical to the CLI's) and
as a 7z.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import tracemalloc
import zipfile
from pathlib import Path

import py7zr
import pytest

from built_bundle import Built, build_bundle, random_entry
from envpack import archive as formats
from envpack import limits
from envpack.archive import open_bundle
from envpack.bundle.manifest import Entry
from envpack.errors import BundleError, RecipeError

from channel_factory import file_sha256

MIB = 1 << 20


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, std_channel: Path) -> Built:
    return build_bundle(tmp_path_factory.mktemp("built"), std_channel)


def need(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        pytest.skip(f"{tool} not installed (Debian: libarchive-tools for bsdtar, 7zip for 7zz)")
    return found


def tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): file_sha256(p)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def run(*argv: str | Path, cwd: Path | None = None) -> str:
    proc = subprocess.run(
        [str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


# --------------------------------------------------------------------------- zip


def test_zip_through_write_bundle_is_byte_identical(built: Built, tmp_path: Path) -> None:
    out = formats.write_bundle(tmp_path / "z", "demo-win-64", built.top, built.entries, built.epoch)
    assert [p.name for p in out] == ["demo-win-64.zip"]
    assert out[0].read_bytes() == built.zip_path.read_bytes()
    # the self-extracting form: the header, then the zip moved by its length with the central
    # directory's offsets (what `zip -A` makes), the bytes stage_sfx_from_zip makes from the zip
    header = b"@echo off\r\nexit /b 0\r\n"
    sfx = formats.write_bundle(
        tmp_path / "s", "demo-win-64-setup", built.top, built.entries, built.epoch, header=header
    )
    assert [p.name for p in sfx] == ["demo-win-64-setup.bat"]
    raw, body = sfx[0].read_bytes(), out[0].read_bytes()
    with zipfile.ZipFile(sfx[0]) as zs, zipfile.ZipFile(out[0]) as zp:
        assert zs.infolist()[0].header_offset == len(header)
        assert raw[: len(header)] == header
        assert raw[len(header) : zs.start_dir] == body[: zp.start_dir]
    staged = formats.stage_sfx_from_zip(out[0], tmp_path / "r", "demo-win-64-setup", header)
    try:
        (ref,) = staged.commit()
    finally:
        staged.discard()
    assert raw == ref.read_bytes()
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["demo-win-64-setup.bat"]


# --------------------------------------------------------------------------- 7z


def test_7z_is_deterministic(built: Built, tmp_path: Path) -> None:
    a = formats.write_bundle(tmp_path / "a", "demo", built.top, built.entries, built.epoch, "7z")
    shuffled = list(built.entries)
    random.Random(3).shuffle(shuffled)
    b = formats.write_bundle(tmp_path / "b", "demo", built.top, shuffled, built.epoch, "7z")
    assert a[0].name == "demo.7z"
    assert file_sha256(a[0]) == file_sha256(b[0])
    c = formats.write_bundle(
        tmp_path / "c", "demo", built.top, built.entries, built.epoch + 2, "7z"
    )
    assert file_sha256(c[0]) != file_sha256(a[0])  # the time is in the bytes, and only it moved


def test_7z_extracts_to_the_zip_tree_with_bsdtar_and_7zz(built: Built, tmp_path: Path) -> None:
    bsdtar, sevenzip = need("bsdtar"), need("7zz")
    seven = formats.write_bundle(tmp_path, "demo", built.top, built.entries, built.epoch, "7z")[0]
    for name, argv in {
        "zip": [bsdtar, "-xf", built.zip_path],
        "bsdtar": [bsdtar, "-xf", seven],
        "7zz": [sevenzip, "x", "-y", seven],
    }.items():
        (tmp_path / name).mkdir()
        run(*argv, cwd=tmp_path / name)
    want = tree(tmp_path / "zip")
    assert want == tree(tmp_path / "bsdtar") == tree(tmp_path / "7zz")
    assert {f"{built.top}/{k}" for k in built.manifest["files"]} | {  # type: ignore[attr-defined]
        f"{built.top}/envpack.json"
    } == set(want)

    listed = run(bsdtar, "-tf", seven).split()
    with zipfile.ZipFile(built.zip_path) as zf:
        assert sorted(listed) == sorted(zf.namelist())
    # bsdtar restores the bundle's one timestamp and 0644, like the zip
    extracted = tmp_path / "bsdtar" / built.top / "envpack.json"
    assert int(extracted.stat().st_mtime) == built.epoch
    assert extracted.stat().st_mode & 0o777 == 0o644


def test_7z_uses_only_coders_every_windows_tar_reads(built: Built, tmp_path: Path) -> None:
    sevenzip = need("7zz")
    seven = formats.write_bundle(tmp_path, "demo", built.top, built.entries, built.epoch, "7z")[0]
    methods: dict[str, str] = {}
    path = ""
    for line in run(sevenzip, "l", "-slt", seven).splitlines():
        if line.startswith("Path = "):
            path = line[7:]
        elif line.startswith("Method = ") and path != str(seven):
            methods[path] = line[9:]
    packages = {p for p in methods if p.endswith((".conda", ".tar.bz2"))}
    assert packages and all(methods[p] == "Copy" for p in packages)
    assert {methods[p] for p in set(methods) - packages} == {"Deflate"}
    # A plain header (kHeader = 0x01), not one LZMA-encoded (0x17) that Windows 10 tar cannot read
    raw = seven.read_bytes()
    next_offset = int.from_bytes(raw[12:20], "little")
    assert raw[32 + next_offset] == 0x01


def test_7z_empty_file_times_and_attributes(tmp_path: Path) -> None:
    bsdtar = need("bsdtar")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    entries = [
        Entry.from_file("post-install/01-empty.bat", empty, 0, hashlib.sha256(b"").hexdigest()),
        Entry.from_bytes("envpack.json", b"{}\n"),
        random_entry(tmp_path, "channel/win-64/x-1-0.conda", 5000),
    ]
    epoch = 1600000000
    seven = formats.write_bundle(tmp_path / "o", "t", "t", entries, epoch, "7z")[0]
    with py7zr.SevenZipFile(seven) as szf:
        infos = {i.filename: i for i in szf.list()}
    assert set(infos) == {f"t/{e.arcname}" for e in entries}
    for info in infos.values():
        assert info.creationtime.timestamp() == epoch
    (tmp_path / "x").mkdir()
    run(bsdtar, "-xf", seven, cwd=tmp_path / "x")
    assert (tmp_path / "x/t/post-install/01-empty.bat").read_bytes() == b""


def test_7z_writing_streams(tmp_path: Path) -> None:
    """Peak Python memory does not follow the bundle's size (py7zr reads 1 MiB blocks)."""
    text = [Entry.from_bytes("envpack.json", b"{}\n" * 100_000)]

    def peak(size: int, out: str) -> int:
        pkgs = [
            random_entry(tmp_path, f"channel/win-64/{out}{i}-1-0.conda", size, f"{out}{i}")
            for i in (1, 2)
        ]
        tracemalloc.start()
        try:
            formats.write_bundle(tmp_path / out, "m", "m", pkgs + text, 1700000000, "7z", split=MIB)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, big = peak(2 * MIB, "small"), peak(32 * MIB, "big")
    assert big < small + MIB, f"{small} bytes for a 4 MiB bundle, {big} for 64 MiB"
    assert big < 16 * MIB


def test_7z_reader(built: Built, tmp_path: Path) -> None:
    seven = formats.write_bundle(tmp_path, "demo", built.top, built.entries, built.epoch, "7z")[0]
    with open_bundle(seven) as reader:
        assert isinstance(reader, formats.SevenZipReader)
        assert reader.form == "7z" and reader.top == built.top and not reader.problems
        assert reader.manifest == built.manifest
        files = built.manifest["files"]
        assert isinstance(files, dict)
        assert reader.names() == sorted([*files, "envpack.json"])
        for name, rec in files.items():
            assert reader.size(name) == rec["size"]
            with reader.open(name) as fh:
                assert hashlib.sha256(fh.read()).hexdigest() == rec["sha256"], name
        pkg = next(n for n in files if n.endswith(".conda"))
        with reader.open(pkg, seekable=True) as fh:
            fh.seek(-22, os.SEEK_END)  # a .conda is a zip: its end record is read from the end
            assert fh.read(4) == b"PK\x05\x06"


def test_7z_damage_is_reported(built: Built, tmp_path: Path) -> None:
    seven = formats.write_bundle(tmp_path, "demo", built.top, built.entries, built.epoch, "7z")[0]
    raw = seven.read_bytes()
    cut = tmp_path / "cut.7z"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(BundleError, match="not a readable 7z archive"):
        open_bundle(cut)
    # one flipped byte inside the compressed (Deflate) folder: the CRC check names the member
    with py7zr.SevenZipFile(seven) as szf:
        folders = szf.header.main_streams.unpackinfo.folders
        packsizes = szf.header.main_streams.packinfo.packsizes
    assert len(folders) == 2
    flip = 32 + packsizes[0] + packsizes[1] // 2
    bad = bytearray(raw)
    bad[flip] ^= 0xFF
    damaged = tmp_path / "bad.7z"
    damaged.write_bytes(bytes(bad))
    with pytest.raises(BundleError), open_bundle(damaged) as reader:
        for name in reader.names():
            if not name.endswith((".conda", ".tar.bz2")):
                with reader.open(name) as fh:
                    fh.read()


def test_bad_arguments(built: Built, tmp_path: Path) -> None:
    args = (tmp_path, "demo", built.top, built.entries, built.epoch)
    with pytest.raises(RecipeError, match="unknown bundle format 'rar'"):
        formats.write_bundle(*args, fmt="rar")
    with pytest.raises(BundleError, match="self-extracting"):
        formats.write_bundle(*args, fmt="7z", header=b"@echo off\r\n")
    with pytest.raises(BundleError, match="'a:b.zip' is not a valid Windows file name"):
        formats.write_bundle(tmp_path, "a:b", built.top, built.entries, built.epoch)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- sizes


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("700M", 700 * MIB),
        ("4000M", 4000 * MIB),
        ("1G", 1 << 30),
        ("1.5g", 3 << 29),
        ("2048k", 2 * MIB),
        ("700MiB", 700 * MIB),
        ("fat32", 4000 * MIB),
        ("FAT32", 4000 * MIB),
        (" 1048576 ", MIB),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert limits.parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1023K", "under the 1 MiB minimum"),
        ("4G", "over FAT32's 4 GiB - 1 byte file limit"),
        ("5000M", "over FAT32"),
        ("lots", "is not a size"),
        ("-5M", "is not a size"),
        ("", "is not a size"),
    ],
)
def test_parse_size_refuses(text: str, message: str) -> None:
    with pytest.raises(RecipeError, match=message) as info:
        limits.parse_size(text)
    assert info.value.exit_code == 2
    assert "\n" not in str(info.value)


def test_fat32_preset_fits_fat32() -> None:
    assert limits.FAT32_PRESET < limits.FAT32_MAX_FILE == 2**32 - 1
