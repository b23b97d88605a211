"""Regressions found in review: shared cache paths, sha256-only imports, 416, moved local
channels, a new --micromamba-exe, and credentials quoted inside messages."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest
import yaml

from envpack.channels import redact
from envpack.download import Fetcher, FetchOptions, cache_path
from test_download import record_for

from channel_factory import Pkg, build_package
from conftest import run_cli, write_recipe
from http_server import ChannelServer


def explicit_for(channel: Path, url: str, names: list[str], sha256_only: bool = False) -> str:
    lines = ["@EXPLICIT"]
    repodata = {
        **json.loads((channel / "win-64" / "repodata.json").read_text()).get("packages.conda", {}),
        **json.loads((channel / "noarch" / "repodata.json").read_text()).get("packages.conda", {}),
    }
    for fn, rec in sorted(repodata.items()):
        if rec["name"] in names and not (rec["name"] == "tool" and rec["version"] != "2.0"):
            digest = f"sha256:{rec['sha256']}" if sha256_only else rec["md5"]
            lines.append(f"{url}/{rec['subdir']}/{fn}#{digest}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("sha256_only", [False, True])
def test_explicit_import_with_micromamba_from_the_same_channel(
    server: ChannelServer, channel_copy: Path, tmp_path: Path, cache_dir: Path, sha256_only: bool
) -> None:
    # vc14_runtime is in the environment *and* solved again for micromamba's DLLs: one file,
    # two records, fetched by eight threads.
    names = ["ucrt", "vc14_runtime", "vc", "libzlib", "tool", "docs"]
    team = tmp_path / "team.txt"
    team.write_text(explicit_for(channel_copy, server.url, names, sha256_only))
    for attempt in range(3):
        out = tmp_path / f"o{attempt}"
        result = run_cli("build", team, "-o", out, "-j", "8", "--no-sfx")
        assert result.exit_code == 0, result.output
        assert run_cli("verify", out / "team-win-64.zip").exit_code == 0
    with zipfile.ZipFile(out / "team-win-64.zip") as zf:
        env_txt = zf.read("team/env.txt").decode().splitlines()
    assert len(env_txt) == 1 + len(names)
    # every line carries an md5, even from a sha256-only list: micromamba 1.x reads only md5
    assert all(len(line.rsplit("#", 1)[1]) == 32 for line in env_txt[1:])


def test_416_on_a_stale_whole_part_file_restarts(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    pkg = build_package(Pkg("whole", random_bytes=100_000), root / "win-64")
    with ChannelServer(root) as server:
        full = record_for(pkg, f"{server.url}/win-64/{pkg.name}")
        unknown_size = record_for(pkg, full.url, size=0)
        dest = cache_path(tmp_path / "cache", unknown_size)
        dest.parent.mkdir(parents=True)
        part = dest.with_name(f"{dest.name}.{os.getpid()}.part")
        part.write_bytes(pkg.read_bytes())  # left whole by an interrupted earlier attempt
        fetcher = Fetcher(FetchOptions(cache_dir=tmp_path / "cache"), sleep=lambda s: None)
        assert fetcher.fetch(unknown_size).read_bytes() == pkg.read_bytes()
        assert [r for _, r in server.requests] == [f"bytes={len(pkg.read_bytes())}-", None]


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


def test_a_new_micromamba_exe_relocks(recipe: Path, tmp_path: Path, cache_dir: Path) -> None:
    old, new = tmp_path / "old.exe", tmp_path / "new.exe"
    old.write_bytes(b"MZ old")
    new.write_bytes(b"MZ new")
    assert run_cli("lock", recipe, "--micromamba-exe", old).exit_code == 0
    result = run_cli("build", recipe, "--micromamba-exe", new, "-o", tmp_path / "o", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["lock_changed"] is True
    lock = yaml.safe_load(recipe.with_name("demo.lock.yaml").read_text())
    assert (
        lock["platforms"]["win-64"]["micromamba"]["file"]["sha256"]
        == hashlib.sha256(b"MZ new").hexdigest()
    )
    assert run_cli("build", recipe, "--micromamba-exe", old, "--locked").exit_code == 4


def test_credentials_inside_messages_are_redacted() -> None:
    message = "failed to fetch https://alice:s3cret@host.org/t/tk-123/c/win-64/repodata.json (404)"
    assert (
        redact(message) == "failed to fetch https://host.org/t/<TOKEN>/c/win-64/repodata.json (404)"
    )
    assert redact("a http://u@h/x and file:///p@q") == "a http://h/x and file:///p@q"
