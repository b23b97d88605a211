"""verify_bundle on damaged, tampered and hostile bundles: each problem reported by name.

Bundles are built for real (CLI against the test HTTP channel) and then altered the way a bad
disk, a careless colleague or an attacker would: one member rewritten, removed or added, the
manifest "resealed" so that only the check under test can notice, or the raw archive bytes
patched. Hostile archives must be reported without extracting, writing or reading unboundedly.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tracemalloc
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from envpack.archive import open_bundle, unsafe_reason
from envpack.errors import BundleError
from envpack.snapshot import verify_bundle

from channel_factory import Pkg, build_package
from conftest import run_cli

TOOL = "channel/win-64/tool-2.0-h1234_0.conda"
LIBZLIB = "channel/win-64/libzlib-1.3.1-h2466b09_2.conda"


@pytest.fixture
def bundle(recipe: Path, tmp_path: Path, cache_dir: Path) -> Path:
    result = run_cli("build", recipe, "-o", tmp_path / "dist", "--no-sfx")
    assert result.exit_code == 0, result.output
    path = tmp_path / "dist" / "demo-win-64.zip"
    assert verify_bundle(path) == []
    return path


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def rewrite(
    src: Path,
    dst: Path,
    change: dict[str, bytes | None],
    reseal: bool = False,
) -> Path:
    """Copy a bundle zip with members replaced (bytes), removed (None) or added.

    ``reseal`` also updates the manifest's hash and size of every changed file, as someone
    covering their tracks would, so that only the deeper checks can catch the change.
    """
    data = members(src)
    top = next(iter(data)).split("/", 1)[0]
    for rel, content in change.items():
        if content is None:
            data.pop(f"{top}/{rel}")
        else:
            data[f"{top}/{rel}"] = content
    if reseal:
        manifest = json.loads(data[f"{top}/envpack.json"])
        for rel, content in change.items():
            if rel == "envpack.json":
                continue
            if content is None:
                manifest["files"].pop(rel, None)
            else:
                manifest["files"][rel] = {
                    "sha256": hashlib.sha256(content).hexdigest(),
                    "size": len(content),
                }
        data[f"{top}/envpack.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(dst, "w") as zf:
        for name in sorted(data):
            zf.writestr(name, data[name])
    return dst


def manifest_of(path: Path) -> dict[str, object]:
    with zipfile.ZipFile(path) as zf:
        name = next(n for n in zf.namelist() if n.endswith("/envpack.json"))
        result: dict[str, object] = json.loads(zf.read(name))
        return result


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


# --------------------------------------------------------------------------- tampering


def test_changed_byte_in_package(bundle: Path, tmp_path: Path) -> None:
    original = members(bundle)[f"demo/{TOOL}"]
    bad = rewrite(bundle, tmp_path / "bad.zip", {TOOL: flip(original, len(original) // 2)})
    problems = verify_bundle(bad)
    assert problems, "a changed byte went unnoticed"
    assert all(TOOL in p for p in problems), problems
    assert f"{TOOL}: sha256 differs from the manifest (changed or corrupt)" in problems
    assert (
        f"package tool-2.0-h1234_0: {TOOL} sha256 does not match the lock (changed or corrupt)"
        in problems
    )


def test_changed_byte_resealed_is_caught_by_the_lock(bundle: Path, tmp_path: Path) -> None:
    original = members(bundle)[f"demo/{TOOL}"]
    bad = rewrite(
        bundle, tmp_path / "bad.zip", {TOOL: flip(original, len(original) // 2)}, reseal=True
    )
    problems = verify_bundle(bad)
    assert (
        f"package tool-2.0-h1234_0: {TOOL} sha256 does not match the lock (changed or corrupt)"
        in problems
    )
    assert (
        f"package tool-2.0-h1234_0: the manifest and the lock disagree on the sha256 of {TOOL}"
        in problems
    )
    assert not any("differs from the manifest" in p for p in problems)


def test_missing_package(bundle: Path, tmp_path: Path) -> None:
    bad = rewrite(bundle, tmp_path / "bad.zip", {TOOL: None})
    assert verify_bundle(bad) == [f"missing package tool-2.0-h1234_0: {TOOL}"]


def test_missing_file(bundle: Path, tmp_path: Path) -> None:
    bad = rewrite(bundle, tmp_path / "bad.zip", {"README.txt": None})
    assert verify_bundle(bad) == ["missing file: README.txt (listed in the manifest)"]


def test_extra_file(bundle: Path, tmp_path: Path) -> None:
    bad = rewrite(bundle, tmp_path / "bad.zip", {"channel/win-64/extra-1.0-0.conda": b"x"})
    assert verify_bundle(bad) == [
        "extra file: channel/win-64/extra-1.0-0.conda (not in the manifest)"
    ]


def test_unknown_format_version_is_checked_first(bundle: Path, tmp_path: Path) -> None:
    manifest = manifest_of(bundle)
    manifest["format_version"] = 99
    # Everything else is broken too; none of it may be reported, as nothing can be trusted.
    bad = rewrite(
        bundle,
        tmp_path / "bad.zip",
        {"envpack.json": json.dumps(manifest).encode(), TOOL: None, "extra.txt": b"x"},
    )
    problems = verify_bundle(bad)
    assert len(problems) == 1, problems
    assert "bundle format version 99 is not supported" in problems[0]
    with pytest.raises(BundleError, match="format version 99"):
        open_bundle(bad).manifest  # noqa: B018


def test_not_a_manifest(bundle: Path, tmp_path: Path) -> None:
    bad = rewrite(bundle, tmp_path / "bad.zip", {"envpack.json": b'{"format": "other"}'})
    assert verify_bundle(bad) == [f"{bad}: envpack.json is not an envpack bundle manifest"]


def test_package_of_another_platform_swapped_in(bundle: Path, tmp_path: Path) -> None:
    linux = build_package(Pkg("libzlib", "1.3.1", "h2466b09_2", subdir="linux-64"), tmp_path / "l")
    bad = rewrite(bundle, tmp_path / "bad.zip", {LIBZLIB: linux.read_bytes()}, reseal=True)
    problems = verify_bundle(bad)
    assert (
        "package libzlib-1.3.1-h2466b09_2: its info/index.json says subdir linux-64, the lock "
        "says win-64 (a package of another platform)"
    ) in problems
    assert all("libzlib-1.3.1-h2466b09_2" in p for p in problems), problems


def test_crc_error_in_the_archive(bundle: Path, tmp_path: Path) -> None:
    raw = bytearray(bundle.read_bytes())
    with zipfile.ZipFile(bundle) as zf:
        info = zf.getinfo("demo/README.txt")
    at = info.header_offset
    name_len, extra_len = struct.unpack("<HH", raw[at + 26 : at + 30])
    start = at + 30 + name_len + extra_len  # the local header's own lengths
    raw[start + 5] ^= 0x01
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(raw))
    problems = verify_bundle(bad)
    assert len(problems) == 1 and problems[0].startswith("README.txt: damaged ("), problems
    assert "CRC" in problems[0]


def test_truncated_archive(bundle: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bundle.read_bytes()[: bundle.stat().st_size // 2])
    problems = verify_bundle(bad)
    assert len(problems) == 1, problems
    # Cut in half, the last zip directory left is a .conda's (itself a zip, stored whole).
    assert "not a readable zip" in problems[0] or "or truncated" in problems[0], problems
    cut = tmp_path / "cut.zip"
    cut.write_bytes(bundle.read_bytes()[:-10])
    assert "not a readable zip" in verify_bundle(cut)[0]


def test_repodata_that_disagrees_with_the_lock(bundle: Path, tmp_path: Path) -> None:
    rel = "channel/win-64/repodata.json"
    repodata = json.loads(members(bundle)[f"demo/{rel}"])
    repodata["packages.conda"]["tool-2.0-h1234_0.conda"]["version"] = "2.1"
    del repodata["packages.conda"]["vc-14.3-hcf57466_18.conda"]
    bad = rewrite(bundle, tmp_path / "bad.zip", {rel: json.dumps(repodata).encode()}, reseal=True)
    assert verify_bundle(bad) == [
        f"{rel}: does not list vc-14.3-hcf57466_18.conda, which the lock has",
        f"{rel}: tool-2.0-h1234_0.conda has version 2.1, the lock says 2.0",
    ]


def test_env_txt_with_another_hash(bundle: Path, tmp_path: Path) -> None:
    lines = members(bundle)["demo/env.txt"].decode().splitlines()
    lines = [
        line.rsplit("#", 1)[0] + "#" + "0" * 32 if "/tool-" in line else line for line in lines
    ]
    bad = rewrite(bundle, tmp_path / "bad.zip", {"env.txt": "\n".join(lines).encode()}, reseal=True)
    assert verify_bundle(bad) == [
        "env.txt: the hash for tool-2.0-h1234_0.conda differs from the lock"
    ]


# --------------------------------------------------------------------------- consistent lies


@dataclass
class Mislabelled(Pkg):
    """A package whose file name claims another version than its info/index.json."""

    claimed: str = ""

    @property
    def fn(self) -> str:
        return f"{self.name}-{self.claimed}-{self.build}{self.fmt}"


def crafted_bundle(tmp_path: Path, pkgs: list[tuple[Pkg, dict[str, str]]]) -> Path:
    """A bundle written by envpack's own bundle code from a lock that lies consistently:
    manifest, repodata, env.txt and SBOM all agree with the lock; only the packages do not."""
    from envpack.archive import write_bundle
    from envpack.bundle.layout import BundleSettings, bundle_entries
    from envpack.lock.lockfile import PlatformLock
    from envpack.lock.record import LockedPackage

    paths = {}
    for pkg, claims in pkgs:
        path = build_package(pkg, tmp_path / "pkgs" / pkg.subdir)
        data = path.read_bytes()
        record = LockedPackage(
            name=claims.get("name", pkg.name),
            version=claims.get("version", pkg.version),
            build=pkg.build,
            build_number=0,
            subdir=claims.get("subdir", pkg.subdir),
            fn=path.name,
            url=f"https://example.invalid/c/{claims.get('subdir', pkg.subdir)}/{path.name}",
            channel="https://example.invalid/c",
            sha256=hashlib.sha256(data).hexdigest(),
            md5=hashlib.md5(data).hexdigest(),
            size=len(data),
            license="MIT",
        )
        paths[record] = path
    pl = PlatformLock(platform="win-64", packages=tuple(sorted(paths)))
    settings = BundleSettings(name="crafted", default_prefix="C:\\envs\\crafted")
    entries, _ = bundle_entries(pl, settings, paths, [("micromamba.exe", b"MZ")], 1700000000)
    return write_bundle(tmp_path, "crafted", "crafted", entries, 1700000000)[0]


def test_crafted_sound_bundle_verifies(tmp_path: Path) -> None:
    assert verify_bundle(crafted_bundle(tmp_path, [(Pkg("tool", "2.0", "h1_0"), {})])) == []


def test_wrong_index_json(tmp_path: Path) -> None:
    liar = Mislabelled("tool", "3.0", "h1_0", claimed="2.0")
    bundle = crafted_bundle(tmp_path, [(liar, {"version": "2.0"}), (Pkg("other"), {})])
    assert verify_bundle(bundle) == [
        "package tool-2.0-h1_0: its info/index.json says version 3.0, the lock says 2.0"
    ]


def test_package_of_another_platform_in_the_lock(tmp_path: Path) -> None:
    pkgs: list[tuple[Pkg, dict[str, str]]] = [
        (Pkg("tool", "2.0", "h1_0", subdir="linux-64"), {}),
        (Pkg("docs", "1.0", "py_0", subdir="noarch"), {}),
    ]
    assert verify_bundle(crafted_bundle(tmp_path, pkgs)) == [
        "package tool-2.0-h1_0 is for linux-64, but the bundle is for win-64"
    ]


def test_wrong_platform_recorded_as_win(tmp_path: Path) -> None:
    bundle = crafted_bundle(
        tmp_path, [(Pkg("tool", "2.0", "h1_0", subdir="linux-64"), {"subdir": "win-64"})]
    )
    assert verify_bundle(bundle) == [
        "package tool-2.0-h1_0: its info/index.json says subdir linux-64, the lock says win-64 "
        "(a package of another platform)"
    ]


# --------------------------------------------------------------------------- hostile input


def add_raw_members(src: Path, dst: Path, extra: list[zipfile.ZipInfo | tuple[str, bytes]]) -> Path:
    shutil.copy(src, dst)
    with zipfile.ZipFile(dst, "a") as zf:
        for item in extra:
            if isinstance(item, tuple):
                zf.writestr(zipfile.ZipInfo(item[0]), item[1])
            else:
                zf.writestr(item, b"target")
    return dst


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        ("../evil.bat", "unsafe member name"),
        ("demo/../../evil.bat", "'..' path component"),
        ("/etc/evil", "unsafe member name"),
        ("demo/C:/Windows/evil.dll", "':' in name"),
        ("demo/a\\..\\..\\evil.bat", "backslash"),
        ("demo/channel/CON", "reserved Windows device name"),
        ("demo/setup.bat:hidden", "alternate data stream"),
        ("demo/trailing. ", "ends with a space or dot"),
        ("other/README.txt", "outside the bundle folder demo/"),
    ],
)
def test_hostile_member_names(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, member: str, reason: str
) -> None:
    bad = add_raw_members(bundle, tmp_path / "bad.zip", [(member, b"payload")])
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.chdir(scratch)
    monkeypatch.setenv("TMPDIR", str(scratch))
    before = tree(tmp_path)
    problems = verify_bundle(bad)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{member}: ") and reason in problems[0], problems
    assert tree(tmp_path) == before  # nothing extracted, nothing written, anywhere we can see
    with open_bundle(bad) as reader:
        assert all(unsafe_reason(n) is None for n in reader.names())


def test_symlink_and_duplicate_members(bundle: Path, tmp_path: Path) -> None:
    link = zipfile.ZipInfo("demo/channel/link")
    link.create_system = 3
    link.external_attr = 0o120777 << 16
    bad = add_raw_members(bundle, tmp_path / "bad.zip", [link, ("demo/readme.TXT", b"again")])
    problems = verify_bundle(bad)
    assert "channel/link: a symlink, not a file" in problems
    assert "readme.TXT: in the archive and as 'README.txt' (duplicate member)" in problems
    # The first of the pair is dropped too: neither is trusted, so it is reported missing.
    assert "missing file: README.txt (listed in the manifest)" in problems
    assert len(problems) == 3, problems


def patch_sizes(path: Path, name: str, file_size: int, compress_size: int | None = None) -> None:
    """Rewrite the sizes a member declares in both its local and its central header."""
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        offset = zf.getinfo(name).header_offset
    encoded = name.encode()
    assert raw[offset : offset + 4] == b"PK\x03\x04"
    if compress_size is not None:
        raw[offset + 18 : offset + 22] = struct.pack("<I", compress_size)
    raw[offset + 22 : offset + 26] = struct.pack("<I", file_size)
    central = raw.find(b"PK\x01\x02")
    while central != -1:
        if raw[central + 46 : central + 46 + len(encoded)] == encoded:
            if compress_size is not None:
                raw[central + 20 : central + 24] = struct.pack("<I", compress_size)
            raw[central + 24 : central + 28] = struct.pack("<I", file_size)
            break
        central = raw.find(b"PK\x01\x02", central + 4)
    else:
        raise AssertionError(f"{name} not in the central directory")
    path.write_bytes(bytes(raw))


def peak_memory(func: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        func()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_declared_size_lies(bundle: Path, tmp_path: Path) -> None:
    bad = add_raw_members(bundle, tmp_path / "bad.zip", [("demo/big.bin", b"0123456789")])
    patch_sizes(bad, "demo/big.bin", 0xFFFF_FFF0)  # ~4 GiB declared, 10 bytes stored
    problems: list[str] = []
    peak = peak_memory(lambda: problems.extend(verify_bundle(bad)))
    assert problems == [
        "extra file: big.bin (not in the manifest); stored member declares 4294967280 bytes "
        "but holds 10 (damaged or hostile)"
    ]
    assert peak < 16 << 20, peak


def test_overlapping_members(bundle: Path, tmp_path: Path) -> None:
    bad = add_raw_members(
        bundle, tmp_path / "bad.zip", [("demo/a.bin", b"a" * 100), ("demo/b.bin", b"b" * 100)]
    )
    patch_sizes(bad, "demo/a.bin", 300, 300)  # a's data now runs over b's header and data
    assert verify_bundle(bad) == [
        "extra file: a.bin (not in the manifest); overlaps the member after it in the archive "
        "(zip bomb?)",
        "extra file: b.bin (not in the manifest)",
    ]


def test_manifest_bomb_is_not_read(bundle: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    shutil.copy(bundle, bad)
    patch_sizes(bad, "demo/envpack.json", 0xFFFF_FF00, 0xFFFF_FF00)
    problems: list[str] = []
    peak = peak_memory(lambda: problems.extend(verify_bundle(bad)))
    assert len(problems) == 1 and problems[0].startswith("envpack.json: "), problems
    assert "past the end" in problems[0]
    assert peak < 16 << 20, peak


def test_deflate_bomb_is_not_expanded(bundle: Path, tmp_path: Path) -> None:
    # Listed in the manifest, so that verify would have to expand it if it trusted it.
    zeros = bytes(64 << 20)
    manifest = manifest_of(bundle)
    manifest["files"]["bomb.bin"] = {  # type: ignore[index]
        "sha256": hashlib.sha256(zeros).hexdigest(),
        "size": len(zeros),
    }
    bad = rewrite(bundle, tmp_path / "bad.zip", {"envpack.json": json.dumps(manifest).encode()})
    with zipfile.ZipFile(bad, "a") as zf:
        zf.writestr("demo/bomb.bin", zeros, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    del zeros
    problems: list[str] = []
    peak = peak_memory(lambda: problems.extend(verify_bundle(bad)))
    assert len(problems) == 1 and problems[0].startswith("bomb.bin: "), problems
    assert "zip bomb" in problems[0]
    assert peak < 16 << 20, peak


def test_hostile_folder(bundle: Path, tmp_path: Path) -> None:
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(unpacked)
    root = unpacked / "demo"
    assert verify_bundle(root) == []
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    (root / "channel" / "escape.txt").symlink_to(secret)
    (root / "linked-dir").symlink_to(root / "channel", target_is_directory=True)
    (root / "outside-dir").symlink_to(tmp_path, target_is_directory=True)
    os.mkfifo(root / "fifo")
    (root / "inside-link.txt").symlink_to(root / "README.txt")
    problems = verify_bundle(unpacked)
    assert "channel/escape.txt: a symlink pointing outside the bundle" in problems
    assert "linked-dir: a symlinked folder (not followed)" in problems
    assert "outside-dir: a symlink pointing outside the bundle" in problems
    assert "fifo: not a regular file" in problems
    assert "extra file: inside-link.txt (not in the manifest)" in problems
    assert len(problems) == 5, problems


def test_not_a_bundle(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert verify_bundle(text) == [
        f"{text}: not a bundle (expected a .zip, .7z or .tar, a self-extracting .bat or .sh, "
        "or an unpacked folder)"
    ]
    with pytest.raises(BundleError, match="no such bundle"):
        verify_bundle(tmp_path / "absent.zip")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no envpack.json here or in a folder below" in verify_bundle(empty)[0]
    fake = tmp_path / "fake-setup.bat"
    fake.write_bytes(b"@echo off\r\nexit /b 0\r\n")
    assert "not a readable zip" in verify_bundle(fake)[0]


def test_checked_bytes_match_the_file(bundle: Path) -> None:
    # verify reads through the reader; what it hashes must be the exact member bytes.
    with open_bundle(bundle) as reader:
        with reader.open(TOOL, seekable=True) as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(0)
            seekable = fh.read()
        with reader.open(TOOL) as fh:
            streamed = fh.read()
    assert seekable == streamed == members(bundle)[f"demo/{TOOL}"]
    assert size == len(streamed)


def test_two_bundle_folders_in_one_archive(bundle: Path, tmp_path: Path) -> None:
    bad = add_raw_members(bundle, tmp_path / "bad.zip", [("zzz/envpack.json", b"{}")])
    assert verify_bundle(bad) == [
        "several bundle folders in one archive (demo, zzz); reading demo/",
        "zzz/envpack.json: outside the bundle folder demo/",
    ]
