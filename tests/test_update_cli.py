"""`envpack build NEW --update-from OLD` through the command line, and what the snapshot
commands say of the update bundle."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_cli, write_recipe
from http_server import ChannelServer


def test_update_from_the_command_line(
    tmp_path: Path, server: ChannelServer, cache_dir: Path
) -> None:
    old_recipe = write_recipe(tmp_path / "app.yaml", [server.url], ["tool=1.0"])
    result = run_cli("build", old_recipe, "-o", tmp_path / "v1", "--no-sfx")
    assert result.exit_code == 0, result.output
    old = tmp_path / "v1" / "app-win-64.zip"

    new_dir = tmp_path / "new"
    new_dir.mkdir()
    new_recipe = write_recipe(new_dir / "app.yaml", [server.url], ["tool=2.0"])
    result = run_cli("build", new_recipe, "--update-from", old, "-o", tmp_path / "upd", "--json")
    assert result.exit_code == 0, result.output
    (update,) = [Path(p) for p in json.loads(result.stdout)["outputs"]]
    assert update.parent == tmp_path / "upd"
    assert update.name.startswith("app-win-64-update-") and update.suffix == ".zip"

    assert run_cli("verify", update).exit_code == 0
    shown = run_cli("inspect", update)
    assert shown.exit_code == 0, shown.output
    assert "envpack update bundle" in shown.stdout.splitlines()[0]
    info = json.loads(run_cli("inspect", update, "--json").stdout)
    assert [c["name"] for c in info["update"]["changed"]] == ["tool"]
    assert info["update"]["carried_packages"] == 1

    rebuilt = run_cli("build", "--from", update, "-o", tmp_path / "again")
    assert rebuilt.exit_code == 7
    assert "an update bundle" in rebuilt.stderr

    same = run_cli("build", old_recipe, "--update-from", old, "-o", tmp_path / "none")
    assert same.exit_code == 9, same.output
    assert "nothing to update, nothing written" in same.stderr
    assert not (tmp_path / "none").exists()

    both = run_cli("build", "--from", old, "--update-from", old)
    assert both.exit_code == 2
