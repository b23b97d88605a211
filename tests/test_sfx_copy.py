"""stage_sfx_from_zip (issue 18): the self-extracting .bat made from the finished zip (header,
kernel copy, directory moved) is byte for byte the .bat a full write gives, and every reader
takes it."""

from __future__ import annotations

import errno
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

import envpack.archive.sfxcopy as sfxcopy
from built_bundle import random_entry
from envpack.archive.write import stage_bundle, stage_sfx_from_zip, write_bundle
from envpack.bundle.manifest import Entry
from envpack.errors import BundleError
from envpack.snapshot.verify import verify_bundle

from conftest import run_cli

EPOCH = 1600000000
HEADER = b"@echo off\r\nrem a stand-in header of odd length\r\nexit /b 0\r\n"


def entries(base: Path) -> list[Entry]:
    base.mkdir(parents=True, exist_ok=True)
    return [
        random_entry(base, "channel/win-64/a-1-0.conda", 70_000, "a"),
        random_entry(base, "channel/noarch/b-1-0.tar.bz2", 5, "b"),
        random_entry(base, "channel/win-64/c-1-0.conda", 1 << 20, "c"),
        Entry.from_bytes("README.txt", b"read me\r\n"),
        Entry.from_bytes("envpack.json", b"{}\n"),
    ]


def from_zip(zip_path: Path, out: Path, header: bytes = HEADER) -> Path:
    staged = stage_sfx_from_zip(zip_path, out, "b-setup", header)
    try:
        (made,) = staged.commit()
    finally:
        staged.discard()
    return made


def test_the_same_bytes_as_the_full_write(tmp_path: Path) -> None:
    es = entries(tmp_path / "src")
    (zip_path,) = write_bundle(tmp_path / "z", "b", "top", es, EPOCH)
    full = stage_bundle(tmp_path / "full", "b-setup", "top", es, EPOCH, header=HEADER)
    try:
        (want,) = full.commit()
    finally:
        full.discard()
    made = from_zip(zip_path, tmp_path / "copy")
    assert made.name == "b-setup.bat"
    assert made.read_bytes() == want.read_bytes()
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == ["b-setup.bat"]
    with zipfile.ZipFile(made) as zf:
        assert zf.testzip() is None
        assert zf.infolist()[0].header_offset == len(HEADER)
        assert zf.read("top/README.txt") == b"read me\r\n"


def test_readers_take_it(tmp_path: Path) -> None:
    es = entries(tmp_path / "src")
    (zip_path,) = write_bundle(tmp_path / "z", "b", "top", es, EPOCH)
    made = from_zip(zip_path, tmp_path / "copy")
    for tool in ("bsdtar", "7zz"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    listing = subprocess.run(
        ["bsdtar", "-tf", str(made)], capture_output=True, text=True, timeout=120, check=True
    )
    assert listing.stdout.splitlines() == [
        "top/channel/noarch/b-1-0.tar.bz2",
        "top/channel/win-64/a-1-0.conda",
        "top/channel/win-64/c-1-0.conda",
        "top/README.txt",
        "top/envpack.json",
    ]
    dest = tmp_path / "x"
    dest.mkdir()
    subprocess.run(["bsdtar", "-xf", str(made), "-C", str(dest)], check=True, timeout=120)
    for e in es:
        want = e.data if e.data is not None else e.source.read_bytes()  # type: ignore[union-attr]
        assert (dest / "top" / e.arcname).read_bytes() == want
    tested = subprocess.run(["7zz", "t", str(made)], capture_output=True, text=True, timeout=120)
    assert tested.returncode == 0 and "Everything is Ok" in tested.stdout, tested.stdout


def test_a_built_bundle_gives_the_bat_the_build_wrote(
    recipe: Path, tmp_path: Path, cache_dir: Path
) -> None:
    result = run_cli("build", str(recipe), "-o", str(tmp_path / "dist"), "--sfx")
    assert result.exit_code == 0, result.output
    zip_path = tmp_path / "dist" / "demo-win-64.zip"
    bat = tmp_path / "dist" / "demo-win-64-setup.bat"
    with zipfile.ZipFile(bat) as zf:
        header = bat.read_bytes()[: zf.infolist()[0].header_offset]
    assert header.startswith(b"@")
    staged = stage_sfx_from_zip(zip_path, tmp_path / "copy", "demo-win-64-setup", header)
    try:
        (made,) = staged.commit()
    finally:
        staged.discard()
    assert made.read_bytes() == bat.read_bytes()
    assert verify_bundle(made) == []
    assert run_cli("verify", str(made)).exit_code == 0
    inspected = run_cli("inspect", str(made))
    assert inspected.exit_code == 0, inspected.output


def test_any_zip_whose_directory_it_reads_exactly_is_moved(tmp_path: Path) -> None:
    """What matters is that the directory is understood in full (it is parsed, written again
    and compared): then moving it is right whoever wrote the members."""
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("top/envpack.json", b"{}")
    made = from_zip(other, tmp_path / "out")
    assert made.read_bytes()[: len(HEADER)] == HEADER
    with zipfile.ZipFile(made) as zf:
        assert zf.testzip() is None and zf.read("top/envpack.json") == b"{}"
        assert zf.infolist()[0].header_offset == len(HEADER)


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (
            lambda zf: zf.writestr("top/a.txt", b"a" * 100, zipfile.ZIP_DEFLATED),
            "member b'top/a.txt' is not stored plainly",
        ),
        (lambda zf: setattr(zf, "comment", b"hi"), "no plain end record at its end"),
        (
            lambda zf: zf.writestr(_with_extra("top/a.txt"), b"a"),
            "member b'top/a.txt' has an extra field envpack does not write",
        ),
    ],
    ids=["deflated", "comment", "extra"],
)
def test_a_directory_it_does_not_fully_understand_is_refused(
    tmp_path: Path, make: Any, why: str
) -> None:
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("top/envpack.json", b"{}")
        make(zf)
    with pytest.raises(BundleError) as err:
        from_zip(other, tmp_path / "out")
    assert (
        str(err.value) == f"{other}: {why}; not a zip envpack wrote, cannot make the .bat from it"
    )
    assert list((tmp_path / "out").iterdir()) == []


def _with_extra(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0))
    info.extra = struct.pack("<HHI", 0x5455, 4, 0)  # an Info-ZIP timestamp field
    return info


def test_a_bat_is_not_taken_for_its_zip(tmp_path: Path) -> None:
    es = entries(tmp_path / "src")
    (bat,) = write_bundle(tmp_path / "s", "b-setup", "top", es, EPOCH, header=HEADER)
    with pytest.raises(BundleError) as err:
        from_zip(bat, tmp_path / "out")
    assert str(err.value) == (
        f"{bat}: something before its first member; "
        "not a zip envpack wrote, cannot make the .bat from it"
    )


def test_disk_full_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    es = entries(tmp_path / "src")
    (zip_path,) = write_bundle(tmp_path / "z", "b", "top", es, EPOCH)

    def full(*args: Any, **kwargs: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sfxcopy, "copy_range", full)
    out = tmp_path / "out"
    with pytest.raises(BundleError) as err:
        from_zip(zip_path, out)
    assert str(err.value) == f"disk full while writing {out / 'b-setup.bat'}; free some space"
    assert list(out.iterdir()) == []
