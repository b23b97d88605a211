"""`build --format` / `--split` and the recipe's `envpack.format` / `envpack.split`, end to end."""

from __future__ import annotations

import json
from pathlib import Path

from channel_factory import file_sha256
from conftest import run_cli, write_recipe
from http_server import ChannelServer


def test_7z_from_the_command_line_verifies(recipe: Path, tmp_path: Path, cache_dir: Path) -> None:
    out = tmp_path / "o"
    result = run_cli("build", recipe, "-o", out, "--format", "7z", "--sfx", "--json")
    assert result.exit_code == 0, result.output
    outputs = [Path(p).name for p in json.loads(result.stdout)["outputs"]]
    assert outputs == ["demo-win-64.7z", "demo-win-64-setup.bat"]  # the sfx stays a zip
    assert run_cli("verify", out / "demo-win-64.7z").exit_code == 0
    # --from keeps the old bundle's container, byte for byte
    again = run_cli("build", "--from", out / "demo-win-64.7z", "-o", tmp_path / "again", "--no-sfx")
    assert again.exit_code == 0, again.output
    assert file_sha256(tmp_path / "again" / "demo-win-64.7z") == file_sha256(out / "demo-win-64.7z")


def test_split_from_the_recipe(tmp_path: Path, server: ChannelServer, cache_dir: Path) -> None:
    recipe = write_recipe(
        tmp_path / "big.yaml",
        [server.url],
        ["tool", "docs"],
        "envpack:\n  split: 1M\n  sfx: true\n",
    )
    result = run_cli("build", recipe, "-o", tmp_path / "o", "--json")
    assert result.exit_code == 0, result.output
    names = {
        Path(p).relative_to(tmp_path / "o").as_posix() for p in json.loads(result.stdout)["outputs"]
    }
    assert {
        "big-win-64/big-win-64.zip.001",
        "big-win-64/join.bat",
        "big-win-64/big-win-64.zip.sha256",
    } <= names
    assert "big-win-64-setup/big-win-64-setup.bat.001" in names
    verify = run_cli("verify", tmp_path / "o" / "big-win-64" / "big-win-64.zip.001")
    assert verify.exit_code == 0, verify.output


def test_bad_split_sizes(recipe: Path, tmp_path: Path, cache_dir: Path) -> None:
    result = run_cli("build", recipe, "--split", "100K")
    assert result.exit_code == 2 and "1 MiB" in result.stderr
    bad = write_recipe(tmp_path / "b.yaml", ["conda-forge"], ["x"], "envpack:\n  split: 5G\n")
    result = run_cli("build", bad)
    assert result.exit_code == 2 and "envpack.split" in result.stderr
