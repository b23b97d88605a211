"""The .tar container, the sh scripts' text, and the osx targets (structure only: no macOS here)."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from envpack.archive.tar import TarBundleReader, write_tar_stream
from envpack.bundle.manifest import Entry
from envpack.errors import BundleError
from linux_bundle import build_bundle, unpack

STUBS = Path(__file__).resolve().parents[1] / "stubs"
EXPECTED = [
    "top/",
    "top/channel/",
    "top/channel/linux-64/",
    "top/channel/linux-64/a.conda",
    "top/envpack.json",
    "top/micromamba",
    "top/setup.sh",
]


def small_entries() -> list[Entry]:
    return [
        Entry.from_bytes("setup.sh", b"#!/bin/sh\n"),
        Entry.from_bytes("micromamba", b"\x7fELF"),
        Entry.from_bytes("envpack.json", b'{"format": "envpack-bundle", "format_version": 1}\n'),
        Entry.from_bytes("channel/linux-64/a.conda", b"x" * 3000),
    ]


def write(path: Path, entries: list[Entry], header: bytes = b"") -> Path:
    with path.open("wb") as fh:
        write_tar_stream(fh, "top", entries, 1600000000, header=header)
    return path


def test_deterministic_and_attributes(tmp_path: Path) -> None:
    a = write(tmp_path / "a.tar", small_entries())
    b = write(tmp_path / "b.tar", list(reversed(small_entries())))
    assert a.read_bytes() == b.read_bytes()
    with tarfile.open(a) as tf:
        members = tf.getmembers()
    assert [m.name + ("/" if m.isdir() else "") for m in members] == EXPECTED
    modes = {m.name: m.mode for m in members}
    assert modes["top/setup.sh"] == 0o755 and modes["top/micromamba"] == 0o755
    assert modes["top/envpack.json"] == 0o644 and modes["top/channel/"[:-1]] == 0o755
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {
        (0, 0, "", "", 1600000000)
    }


@pytest.mark.parametrize(
    "tool", [["tar", "-tf"], ["bsdtar", "-tf"], ["busybox", "tar", "-tf"]], ids=lambda t: t[0]
)
def test_every_tar_reads_it(tool: list[str], tmp_path: Path) -> None:
    if shutil.which(tool[0]) is None:
        pytest.skip(f"{tool[0]} is not installed")
    long_name = "channel/linux-64/" + "é" * 70 + ".conda"  # a pax header: > 100 bytes, not ASCII
    path = write(tmp_path / "a.tar", [*small_entries(), Entry.from_bytes(long_name, b"y")])
    out = subprocess.run([*tool, str(path)], capture_output=True, text=True, timeout=60, check=True)
    names = sorted(n.rstrip("/") for n in out.stdout.splitlines())
    assert f"top/{long_name}" in names and "top/setup.sh" in names and len(names) == 8


def test_reader_plain_sfx_and_damage(tmp_path: Path) -> None:
    plain = write(tmp_path / "a.tar", small_entries())
    with TarBundleReader(plain) as r:
        assert (r.form, r.top) == ("tar", "top")
        assert r.names() == ["channel/linux-64/a.conda", "envpack.json", "micromamba", "setup.sh"]
        assert r.read_bytes("micromamba") == b"\x7fELF" and r.leading_bytes() == b""
    header = b"#!/bin/sh\nEP_SKIP=28\nexit 0\n"  # 28 bytes
    sfx = write(tmp_path / "x-setup.sh", small_entries(), header)
    assert TarBundleReader.probe(sfx)
    with TarBundleReader(sfx) as r:
        assert r.form == "sfx" and r.leading_bytes() == header
        assert r.open("channel/linux-64/a.conda").read() == b"x" * 3000
    cut = tmp_path / "cut.tar"
    cut.write_bytes(plain.read_bytes()[:2500])  # inside a.conda's data
    with TarBundleReader(cut) as r:
        damage = [*r.problems, r.damaged("channel/linux-64/a.conda") or ""]
        assert any("truncated" in d for d in damage), damage
        if "channel/linux-64/a.conda" in r.names():
            with pytest.raises(BundleError):
                r.read_bytes("channel/linux-64/a.conda")


def test_reader_refuses_hostile_members(tmp_path: Path) -> None:
    path = tmp_path / "h.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in (("top/envpack.json", b"{}"), ("top/../evil", b"x"), ("/etc/x", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("top/link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    with TarBundleReader(path) as r:
        assert r.names() == ["envpack.json"]
        assert len(r.problems) == 3
        assert any("link" in p and "symlink" in p for p in r.problems)


@pytest.mark.skipif(
    shutil.which("shellcheck") is None,
    reason="shellcheck is not installed (apt-get install shellcheck)",
)
def test_shellcheck_templates_and_rendered(tmp_path: Path) -> None:
    fake = tmp_path / "mm"
    fake.write_bytes(b"\x7fELF")
    pkg = tmp_path / "pkgs" / "linux-64" / "p-1-0.conda"
    pkg.parent.mkdir(parents=True)
    pkg.write_bytes(b"PK")
    built = build_bundle(
        tmp_path / "out",
        micromamba=fake,
        package=pkg,
        md5="0" * 32,
        sfx=True,
        post_install=[("a'b.sh", b"true\n")],
        default_prefix="$HOME/envs/it's",
    )
    folder = unpack(built.tar, tmp_path / "u")
    assert built.sfx is not None
    header = built.sfx.read_bytes().split(b'\nexit "$EP_RC"\n', 1)[0] + b'\nexit "$EP_RC"\n'
    (tmp_path / "header.sh").write_bytes(header)
    files = [
        *sorted(STUBS.glob("*.sh")),
        folder / "setup.sh",
        *sorted((folder / "prefix-files").glob("*.sh")),
        tmp_path / "header.sh",
    ]
    r = subprocess.run(
        ["shellcheck", "-s", "sh", *map(str, files)], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stdout


def test_stubs_are_lf_posix_text() -> None:
    for name in ("setup.sh", "activate.sh", "uninstall.sh", "sfx-header.sh"):
        data = (STUBS / name).read_bytes()
        assert b"\r" not in data and data.isascii(), name


@pytest.mark.parametrize("platform", ["osx-64", "osx-arm64"])
def test_osx_bundle_structure_and_refusal_here(platform: str, tmp_path: Path) -> None:
    """No macOS here: the osx bundle is checked for its layout and setup.sh refuses Linux (4)."""
    fake = tmp_path / "mm"
    fake.write_bytes(b"\xcf\xfa\xed\xfe")
    pkg = tmp_path / "pkgs" / platform / "p-1-0.conda"
    pkg.parent.mkdir(parents=True)
    pkg.write_bytes(b"PK")
    built = build_bundle(
        tmp_path / "out", platform=platform, micromamba=fake, package=pkg, md5="0" * 32
    )
    with TarBundleReader(built.tar) as r:
        assert {
            "setup.sh",
            "micromamba",
            "env.txt",
            "prefix-files/activate.sh",
            "prefix-files/uninstall.sh",
            f"channel/{platform}/p-1-0.conda",
        } <= set(r.names())
        assert (
            hashlib.sha256(r.read_bytes("micromamba")).hexdigest()
            == hashlib.sha256(fake.read_bytes()).hexdigest()
        )
    folder = unpack(built.tar, tmp_path / "u")
    res = subprocess.run(
        ["sh", str(folder / "setup.sh"), str(tmp_path / "p")],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert res.returncode == 4 and platform in res.stderr
