"""An @EXPLICIT import whose packages share one cached file: vc14_runtime is in the environment
and is solved again for micromamba's DLLs (one file, two records, fetched by eight threads), from
md5 or sha256-only lists. Every build verifies, and every env.txt line carries an md5."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from conftest import run_cli
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
