"""The lock beside the recipe: reused while it matches, --locked refuses a change, --frozen trusts it."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import yaml

from channel_factory import Pkg, make_channel
from conftest import run_cli, write_recipe
from http_server import ChannelServer


def tool_version(bundle: Path) -> str:
    with zipfile.ZipFile(bundle) as zf:
        lock = json.loads(zf.read(f"{bundle.name.split('-win-64')[0]}/envpack.json"))["lock"]
    return next(p["version"] for p in lock["packages"] if p["name"] == "tool")


def test_lock_modes(tmp_path: Path, server: ChannelServer, cache_dir: Path) -> None:
    recipe = write_recipe(tmp_path / "m.yaml", [server.url], ["tool"])
    result = run_cli("lock", recipe, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "lock_file": str(tmp_path / "m.lock.yaml"),
        "changed": True,
    }
    lock_text = (tmp_path / "m.lock.yaml").read_text()
    assert json.loads(run_cli("lock", recipe, "--json").stdout)["changed"] is False
    assert (tmp_path / "m.lock.yaml").read_text() == lock_text

    write_recipe(recipe, [server.url], ["tool=1.0"])
    result = run_cli("build", recipe, "--locked", "-o", tmp_path / "o")
    assert result.exit_code == 4
    assert "the lock does not match m.yaml for win-64" in result.stderr
    assert run_cli("lock", recipe, "--check").exit_code == 4
    assert (tmp_path / "m.lock.yaml").read_text() == lock_text  # refused, untouched

    assert run_cli("build", recipe, "--frozen", "-o", tmp_path / "o", "--no-sfx").exit_code == 0
    assert tool_version(tmp_path / "o" / "m-win-64.zip") == "2.0"  # the old lock, as it was

    result = run_cli("build", recipe, "-o", tmp_path / "o", "--no-sfx", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["lock_changed"] is True
    assert tool_version(tmp_path / "o" / "m-win-64.zip") == "1.0"


def test_frozen_without_lock(tmp_path: Path, server: ChannelServer, cache_dir: Path) -> None:
    recipe = write_recipe(tmp_path / "f.yaml", [server.url], ["tool"])
    result = run_cli("build", recipe, "--frozen")
    assert result.exit_code == 4 and "--frozen needs a lock" in result.stderr


def test_unknown_lock_version(tmp_path: Path, server: ChannelServer, cache_dir: Path) -> None:
    recipe = write_recipe(tmp_path / "v.yaml", [server.url], ["tool"])
    (tmp_path / "v.lock.yaml").write_text("version: 99\nplatforms: {}\n")
    result = run_cli("build", recipe)
    assert result.exit_code == 4
    assert "lock format version 99 is not supported" in result.stderr


def test_offline_build_from_cache(tmp_path: Path, channel_copy: Path, cache_dir: Path) -> None:
    with ChannelServer(channel_copy) as server:
        recipe = write_recipe(tmp_path / "off.yaml", [server.url], ["tool"])
        assert run_cli("build", recipe, "-o", tmp_path / "a", "--no-sfx").exit_code == 0
    # the server is gone: the lock and the cache are enough
    result = run_cli("build", recipe, "-o", tmp_path / "b", "--no-sfx", "--offline")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a" / "off-win-64.zip").read_bytes() == (
        tmp_path / "b" / "off-win-64.zip"
    ).read_bytes()


def test_micromamba_26_is_avoided(tmp_path: Path, cache_dir: Path) -> None:
    chan = make_channel(
        tmp_path / "c",
        [Pkg("app"), Pkg("micromamba", "2.6.0", files={"Library/bin/micromamba.exe": b"MZ 2.6"})],
    )
    recipe = write_recipe(tmp_path / "a.yaml", [str(chan)], ["app"])
    result = run_cli("lock", recipe)
    assert result.exit_code == 3 and "micromamba" in result.stderr
    recipe.write_text(recipe.read_text() + "envpack:\n  micromamba: '2.6.*'\n")
    assert run_cli("lock", recipe).exit_code == 0  # an explicit pin is the user's call
    lock = yaml.safe_load((tmp_path / "a.lock.yaml").read_text())
    assert lock["platforms"]["win-64"]["micromamba"]["record"]["version"] == "2.6.0"
