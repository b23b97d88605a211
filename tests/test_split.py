"""Split parts: written while the bundle is written, joined back to the exact bytes, read in place.

The bundle is a real one built through the CLI (see built_bundle.build_bundle) plus one 3 MiB package,
so that 1 MiB parts give several of them.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from built_bundle import Built, build_bundle, random_entry
from envpack import archive as formats
from envpack.archive import open_bundle
from envpack.bundle.manifest import Entry
from envpack.errors import BundleError
from envpack.snapshot import verify_bundle

from channel_factory import file_sha256

MIB = 1 << 20
HEADER = b"@echo off\r\necho sfx %*\r\nexit /b 0\r\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, std_channel: Path) -> Built:
    base = tmp_path_factory.mktemp("split")
    b = build_bundle(base, std_channel)
    big = random_entry(base, "channel/win-64/big-1.0-0.conda", 3 * MIB + 12345)
    return Built(b.zip_path, [*b.entries, big], b.epoch, b.top, b.manifest)


def write(built: Built, out: Path, kind: str, split: int | None) -> list[Path]:
    fmt = "7z" if kind == "7z" else "zip"
    header = HEADER if kind == "sfx" else b""
    stem = "demo-win-64-setup" if kind == "sfx" else "demo-win-64"
    return formats.write_bundle(
        out, stem, built.top, built.entries, built.epoch, fmt, header=header, split=split
    )


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("kind", ["zip", "7z", "sfx"])
def test_parts_join_to_the_unsplit_bytes(built: Built, tmp_path: Path, kind: str) -> None:
    whole = write(built, tmp_path / "whole", kind, None)[0]
    out = write(built, tmp_path / "parts", kind, MIB)
    name = whole.name
    parts = [p for p in out if p.name[len(name) + 1 :].isdigit()]
    assert [p.name for p in out] == [
        *(f"{name}.{i:03d}" for i in range(1, len(parts) + 1)),
        f"{name}.sha256",
        "README.txt",
        "join.bat",
    ]
    assert listing(tmp_path / "parts") == sorted(p.name for p in out)  # no temp files left
    assert len(parts) == -(-whole.stat().st_size // MIB) >= 4
    assert all(p.stat().st_size == MIB for p in parts[:-1])
    assert b"".join(p.read_bytes() for p in parts) == whole.read_bytes()

    joined = tmp_path / "parts" / name
    with joined.open("wb") as fh:
        subprocess.run(
            ["cat", *[p.name for p in parts]],
            cwd=tmp_path / "parts",
            stdout=fh,
            check=True,
            timeout=60,
        )
    assert file_sha256(joined) == file_sha256(whole)
    # NAME.sha256 is sha256sum's format, the whole file first, then each part
    sums = (tmp_path / "parts" / f"{name}.sha256").read_text().splitlines()
    assert sums[0] == f"{file_sha256(whole)}  {name}"
    assert len(sums) == len(parts) + 1
    if shutil.which("sha256sum"):
        check = subprocess.run(
            ["sha256sum", "-c", f"{name}.sha256"],
            cwd=tmp_path / "parts",
            capture_output=True,
            timeout=60,
        )
        assert check.returncode == 0, check.stdout + check.stderr

    if shutil.which("7zz"):  # 7-Zip reads the numbered parts as one volume set
        test = subprocess.run(
            ["7zz", "t", parts[0].name], cwd=tmp_path / "parts", capture_output=True, timeout=60
        )
        assert test.returncode == 0, test.stdout + test.stderr

    readme = (tmp_path / "parts" / "README.txt").read_bytes()
    assert b"\n" not in readme.replace(b"\r\n", b"")
    text = readme.decode()
    assert f"{name}.001 to {parts[-1].name}" in text and "join.bat" in text and "NTFS" in text


def test_a_bundle_smaller_than_one_part(built: Built, tmp_path: Path) -> None:
    whole = write(built, tmp_path / "whole", "7z", None)[0]
    out = write(built, tmp_path / "parts", "7z", 64 * MIB)
    assert [p.name for p in out] == [
        f"{whole.name}.001",
        f"{whole.name}.sha256",
        "README.txt",
        "join.bat",
    ]
    assert out[0].read_bytes() == whole.read_bytes()
    with open_bundle(tmp_path / "parts") as reader:
        assert isinstance(reader, formats.SplitReader)
        assert reader.form == "7z in 1 part" and reader.manifest == built.manifest


def test_split_output_is_deterministic(built: Built, tmp_path: Path) -> None:
    a = write(built, tmp_path / "a", "7z", 2 * MIB)
    b = write(built, tmp_path / "b", "7z", 2 * MIB)
    assert [file_sha256(p) for p in a] == [file_sha256(p) for p in b]


@pytest.mark.parametrize("kind", ["zip", "7z", "sfx"])
def test_parts_are_read_in_place(built: Built, tmp_path: Path, kind: str) -> None:
    out = write(built, tmp_path, kind, MIB)
    for where in (out[0], tmp_path, out[2]):
        with open_bundle(where) as reader:
            assert isinstance(reader, formats.SplitReader)
            assert reader.form.endswith(f"in {len(reader.parts)} parts")
            assert reader.form.startswith({"zip": "zip", "7z": "7z", "sfx": "sfx"}[kind])
            assert reader.manifest == built.manifest
            assert not reader.problems
            big = "channel/win-64/big-1.0-0.conda"
            want = next(e for e in built.entries if e.arcname == big).sha256
            for seekable in (False, True):  # spans parts either way
                with reader.open(big, seekable=seekable) as fh:
                    assert hashlib.sha256(fh.read()).hexdigest() == want
            assert reader.verify_parts() == []
    # verify reads every member against the manifest (the big one is not in it) and the parts
    problems = verify_bundle(tmp_path)
    assert [p for p in problems if "big-1.0-0.conda" not in p] == []


def test_missing_and_truncated_parts_are_named(built: Built, tmp_path: Path) -> None:
    out = write(built, tmp_path, "zip", MIB)
    name = out[0].name[:-4]
    count = len(out) - 3
    assert count >= 4
    third = tmp_path / f"{name}.003"
    saved = third.read_bytes()

    third.unlink()
    with pytest.raises(BundleError, match=rf"part {name}\.003 is missing \({count} parts expected"):
        open_bundle(tmp_path)
    third.write_bytes(saved[:-1])
    with pytest.raises(
        BundleError, match=rf"part {name}\.003 is truncated \(1048575 bytes, expected 1048576\)"
    ):
        open_bundle(out[0])
    third.write_bytes(saved + b"x")
    with pytest.raises(BundleError, match=rf"{name}\.003 has 1048577 bytes, expected 1048576"):
        open_bundle(out[0])
    third.write_bytes(saved)
    last = tmp_path / f"{name}.{count:03d}"
    last_bytes = last.read_bytes()
    last.write_bytes(last_bytes[:-10])
    with pytest.raises(BundleError, match=rf"part {name}\.{count:03d} is truncated"):
        open_bundle(out[0])
    last.unlink()
    with pytest.raises(BundleError, match=rf"part {name}\.{count:03d} is missing"):
        open_bundle(out[0])
    last.write_bytes(last_bytes)
    # a part of the right size with other bytes: only the hashes can tell
    third.write_bytes(bytes(len(saved)))
    with open_bundle(out[0]) as reader:
        assert isinstance(reader, formats.SplitReader)
        assert reader.verify_parts() == [
            f"{name}.003: SHA-256 does not match {name}.sha256",
            f"the joined parts do not match the SHA-256 of {name}",
        ]


def test_without_join_bat_the_sha256_list_or_the_parts_count(built: Built, tmp_path: Path) -> None:
    out = write(built, tmp_path, "7z", MIB)
    name = out[0].name[:-4]
    last = f"{name}.{len(out) - 3:03d}"
    (tmp_path / "join.bat").unlink()
    (tmp_path / last).unlink()
    with pytest.raises(BundleError, match=rf"part {last} is missing"):
        open_bundle(tmp_path)
    (tmp_path / f"{name}.sha256").unlink()
    # nothing records the count any more: the parts found are taken as the whole, and the 7z
    # header, which was in the last one, is not there to be read
    with pytest.raises(BundleError, match="not a readable 7z archive"):
        open_bundle(tmp_path)


def test_stale_outputs_of_the_same_name_are_removed(built: Built, tmp_path: Path) -> None:
    first = write(built, tmp_path, "zip", MIB)
    name = first[0].name[:-4]
    assert f"{name}.004" in listing(tmp_path)
    (tmp_path / "unrelated.txt").write_text("kept")
    second = write(built, tmp_path, "zip", 2 * MIB)
    assert listing(tmp_path) == sorted([*(p.name for p in second), "unrelated.txt"])
    assert f"{name}.003" not in listing(tmp_path)
    whole = write(built, tmp_path, "zip", None)
    # no parts, list or join.bat left that could rebuild the old bundle over the new one
    assert listing(tmp_path) == sorted([whole[0].name, "unrelated.txt"])
    again = write(built, tmp_path, "zip", 2 * MIB)
    assert listing(tmp_path) == sorted([*(p.name for p in again), "unrelated.txt"])


def test_another_bundles_join_bat_is_not_overwritten(built: Built, tmp_path: Path) -> None:
    write(built, tmp_path, "zip", MIB)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(BundleError, match=r"already holds join\.bat for demo-win-64\.zip"):
        write(built, tmp_path, "7z", MIB)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    other = tmp_path / "other"
    other.mkdir()
    (other / "README.txt").write_text("someone else's\n")
    with pytest.raises(BundleError, match=r"README\.txt that is not demo-win-64\.zip's"):
        write(built, other, "zip", MIB)


def test_a_failure_leaves_nothing_behind(built: Built, tmp_path: Path) -> None:
    written = 0

    def boom(n: int) -> None:
        nonlocal written
        written += n
        if written > 2 * MIB:
            raise KeyboardInterrupt

    for fmt in ("zip", "7z"):
        folder = tmp_path / fmt
        write(built, folder, fmt, MIB)
        before = {p.name: p.read_bytes() for p in folder.iterdir()}
        written = 0
        with pytest.raises(KeyboardInterrupt):
            formats.write_bundle(
                folder,
                "demo-win-64",
                built.top,
                built.entries,
                built.epoch,
                fmt,
                split=MIB,
                advance=boom,
            )
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_changed_source_is_refused(built: Built, tmp_path: Path) -> None:
    src = tmp_path / "pkg.conda"
    src.write_bytes(b"x" * 1000)
    lying = Entry.from_file("channel/win-64/pkg.conda", src, 999, "0" * 64)
    with pytest.raises(BundleError, match="changed while the bundle was written"):
        formats.write_bundle(tmp_path / "o", "d", "d", [lying], 1700000000, "7z", split=MIB)
    assert listing(tmp_path / "o") == []


def test_too_many_parts_refused_before_writing(tmp_path: Path) -> None:
    src = tmp_path / "pkg.conda"
    src.write_bytes(b"x")
    # the size is what the lock says; the check runs before a byte is read
    huge = Entry.from_file("channel/win-64/pkg.conda", src, 1000 * MIB, "0" * 64)
    with pytest.raises(BundleError, match="more than 999 parts of 1048576 bytes"):
        formats.write_bundle(tmp_path / "o", "d", "d", [huge], 1700000000, split=MIB)
    assert not (tmp_path / "o").exists()


def test_part_writer_rolls_over_and_patches_across_parts(tmp_path: Path) -> None:
    w = formats.PartWriter(tmp_path, "f", 10)
    w.write(bytes(range(25)))
    w.seek(8)
    w.write(b"ABCD")  # straddles parts 1 and 2, as a patched zip header may
    w.seek(0, 2)
    w.write(b"!")
    paths = w.finish()
    assert [p.name for p in paths] == ["f.001", "f.002", "f.003"]
    assert (
        b"".join(p.read_bytes() for p in paths)
        == bytes(range(8)) + b"ABCD" + bytes(range(12, 25)) + b"!"
    )
    many = formats.PartWriter(tmp_path / "m", "g", 1)
    (tmp_path / "m").mkdir()
    with pytest.raises(BundleError, match="more than 999 parts"):
        many.write(b"x" * 1000)
    many.close()
