"""A project folder moved elsewhere keeps its lock and finds its local channel again."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import run_cli, write_recipe


def test_a_moved_project_keeps_its_lock_and_builds(
    std_channel: Path, tmp_path: Path, cache_dir: Path
) -> None:
    project = tmp_path / "project"
    shutil.copytree(std_channel, project / "chan")
    recipe = write_recipe(project / "env.yaml", ["./chan"], ["tool"])
    assert run_cli("lock", recipe).exit_code == 0
    moved = tmp_path / "elsewhere"
    project.rename(moved)
    shutil.rmtree(cache_dir, ignore_errors=True)
    result = run_cli("build", moved / "env.yaml", "--locked", "-o", tmp_path / "o", "--no-sfx")
    assert result.exit_code == 0, result.output
    assert run_cli("verify", tmp_path / "o" / "env-win-64.zip").exit_code == 0
