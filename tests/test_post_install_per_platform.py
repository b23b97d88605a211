"""A recipe for Windows and Linux lists .bat and .sh post-install scripts: each bundle gets the
scripts of its own kind (setup.bat runs .bat/.cmd, setup.sh runs .sh)."""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

from channel_factory import Pkg, make_channel
from conftest import run_cli
from http_server import ChannelServer


def test_each_platform_gets_its_own_kind_of_script(tmp_path: Path, cache_dir: Path) -> None:
    channel = make_channel(
        tmp_path / "chan", [Pkg("tool", subdir="win-64"), Pkg("tool", subdir="linux-64")]
    )
    (tmp_path / "check.bat").write_bytes(b"@echo ok\r\n")
    (tmp_path / "check.sh").write_bytes(b"echo ok\n")
    exe = tmp_path / "mm"
    exe.write_bytes(b"stand-in micromamba")
    with ChannelServer(channel) as server:
        recipe = tmp_path / "two.yaml"
        recipe.write_text(
            f"name: two\nchannels: [{server.url}]\nplatforms: [win-64, linux-64]\n"
            "dependencies: [tool]\n"
            "envpack:\n  post_install: [check.bat, check.sh]\n"
        )
        result = run_cli("build", recipe, "-o", tmp_path / "dist", "--micromamba-exe", exe,
                         "--no-sfx")  # fmt: skip
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(tmp_path / "dist" / "two-win-64.zip") as zf:
        win = sorted(n for n in zf.namelist() if "/post-install/" in n)
    with tarfile.open(tmp_path / "dist" / "two-linux-64.tar") as tar:
        linux = sorted(n for n in tar.getnames() if "/post-install/" in n and n.endswith(".sh"))
    assert win == ["two/post-install/01-check.bat"]
    assert linux == ["two/post-install/01-check.sh"]


def test_other_script_kinds_are_refused(tmp_path: Path, server: ChannelServer) -> None:
    (tmp_path / "check.ps1").write_text("Write-Host ok\n")
    recipe = tmp_path / "ps.yaml"
    recipe.write_text(
        f"name: ps\nchannels: [{server.url}]\ndependencies: [tool]\n"
        "envpack:\n  post_install: [check.ps1]\n"
    )
    result = run_cli("lock", recipe)
    assert result.exit_code == 2
    assert "must be a .bat or .cmd (Windows bundles) or a .sh (Linux and macOS bundles)" in (
        result.stderr
    )
