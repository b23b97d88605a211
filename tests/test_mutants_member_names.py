"""A bundle member whose name climbs out (".." or absolute) is refused, and for that reason.

A mutation audit (tests/README.md) dropped the ".." rule and only one parametrised case noticed:
the trailing-dot rule also refuses a bare "..", with a reason that points the user elsewhere.
Here every shape of ".." is checked through ``envpack verify`` and ``envpack inspect`` on a zip
and on a split zip, with the reason written out.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from conftest import run_cli

DOTDOT = "'..' path component"
ABSOLUTE = "absolute path"
CLIMBERS = [
    ("../evil.bat", DOTDOT),  # outside the bundle folder
    ("demo/../../evil.bat", DOTDOT),
    ("demo/channel/../../../evil.bat", DOTDOT),
    ("demo/channel/win-64/..", DOTDOT),  # a bare ".." as the last component
    ("demo/../demo/setup.bat", DOTDOT),  # back into the folder: still refused
    # an absolute name: the empty first component would also refuse it, for a reason that
    # does not tell the user what is wrong
    ("/evil.bat", ABSOLUTE),
    ("/demo/setup.bat", ABSOLUTE),
]


@pytest.fixture(scope="module")
def built(std_channel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import write_recipe
    from http_server import ChannelServer

    base = tmp_path_factory.mktemp("dotdot")
    with ChannelServer(std_channel) as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENVPACK_CACHE_DIR", str(base / "cache"))
        recipe = write_recipe(base / "demo.yaml", [server.url], ["tool", "docs"])
        result = run_cli("build", recipe, "-o", base / "dist", "--no-sfx")
    assert result.exit_code == 0, result.output
    return base / "dist" / "demo-win-64.zip"


def with_member(src: Path, dst: Path, name: str) -> Path:
    shutil.copy(src, dst)
    with zipfile.ZipFile(dst, "a") as zf:
        zf.writestr(zipfile.ZipInfo(name), b"@echo off\r\necho pwned\r\n")
    return dst


@pytest.mark.parametrize(("member", "reason"), CLIMBERS)
def test_verify_refuses_climbing_members(
    built: Path, tmp_path: Path, member: str, reason: str
) -> None:
    bad = with_member(built, tmp_path / "bad.zip", member)
    result = run_cli("verify", bad)
    assert result.exit_code != 0, result.output
    lines = [line for line in result.output.splitlines() if member in line]
    assert lines, result.output
    assert all(reason in line for line in lines), result.output
    assert not (tmp_path / "evil.bat").exists()


@pytest.mark.parametrize(("member", "reason"), CLIMBERS)
def test_inspect_names_climbing_members(
    built: Path, tmp_path: Path, member: str, reason: str
) -> None:
    bad = with_member(built, tmp_path / "bad.zip", member)
    result = run_cli("inspect", bad)
    assert member in result.output and reason in result.output, result.output


def test_split_bundle_refuses_dotdot_members(
    built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = with_member(built, tmp_path / "bad.zip", "demo/../../evil.bat")
    parts = tmp_path / "parts"
    parts.mkdir()
    data = bad.read_bytes()
    half = (len(data) + 1) // 2  # every part but the last has the first one's size
    (parts / "demo-win-64.zip.001").write_bytes(data[:half])
    (parts / "demo-win-64.zip.002").write_bytes(data[half:])
    result = run_cli("verify", parts / "demo-win-64.zip.001")
    assert result.exit_code != 0, result.output
    assert "demo/../../evil.bat" in result.output and DOTDOT in result.output, result.output
