"""A lock from a private token channel builds without --micromamba-exe: micromamba is solved
from the lock's own channel with the token its URLs carried, and the token goes nowhere else."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

from fetch_servers import HostileServer

from conftest import run_cli


def test_micromamba_from_a_token_channel(
    std_channel: Path, tmp_path: Path, cache_dir: Path
) -> None:
    root = tmp_path / "srv"
    shutil.copytree(std_channel, root)
    with HostileServer(root) as server:
        server.bad.token = "SECRET-T0KEN"
        base = f"{server.url}/t/SECRET-T0KEN"
        tool = root / "win-64" / "tool-2.0-h1234_0.conda"
        md5 = hashlib.md5(tool.read_bytes()).hexdigest()
        lock = tmp_path / "team.txt"
        lock.write_text(f"# platform: win-64\n@EXPLICIT\n{base}/win-64/{tool.name}#{md5}\n")
        result = run_cli("build", lock, "-o", tmp_path / "dist", "--no-sfx")
    assert result.exit_code == 0, result.output
    assert "SECRET-T0KEN" not in result.output
    bundle = tmp_path / "dist" / "team-win-64.zip"
    with zipfile.ZipFile(bundle) as zf:
        assert zf.read("team/micromamba.exe") == b"MZ fake micromamba 2.8.1"
        for info in zf.infolist():
            assert b"SECRET-T0KEN" not in zf.read(info), info.filename
