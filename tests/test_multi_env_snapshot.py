"""inspect, verify and diff on a bundle of several environments: inspect's 'environments' and
'shared_packages', verify's per-environment checks, diff --env."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from multi_env_built import Built, build_multi_demo

from conftest import run_cli, write_recipe
from http_server import ChannelServer

SHARED_FILES = [
    "libzlib-1.3.1-h2466b09_2.conda",
    "ucrt-10.0.22621.0-h57928b3_0.conda",
    "vc-14.3-hcf57466_18.conda",
    "vc14_runtime-14.38.33130-h82b7239_18.conda",
]


@pytest.fixture(scope="module")
def built(std_channel: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_multi_demo(std_channel, tmp_path_factory.mktemp("multi"))


def unpacked(built: Built, parent: Path) -> Path:
    with zipfile.ZipFile(built.multi) as zf:
        zf.extractall(parent)
    return parent / "alpha+beta"


def test_inspect_shows_environments_and_shared_packages(built: Built) -> None:
    result = run_cli("inspect", built.multi, "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert [(e["name"], e["package_count"]) for e in info["environments"]] == [
        ("alpha", 6),
        ("beta", 4),
    ]
    assert info["shared_packages"] == SHARED_FILES
    text = run_cli("inspect", built.multi).output
    assert "environment  alpha: 6 packages" in text
    assert "environment  beta: 4 packages" in text
    assert "shared       4 packages used by two or more environments" in text


def test_inspect_of_one_environment_has_no_environments(built: Built) -> None:
    info = json.loads(run_cli("inspect", built.alpha, "--json").output)
    assert "environments" not in info
    assert "environment " not in run_cli("inspect", built.alpha).output


def test_verify_checks_each_environment_against_the_pool(built: Built, tmp_path: Path) -> None:
    folder = unpacked(built, tmp_path)
    manifest_path = folder / "envpack.json"
    manifest = json.loads(manifest_path.read_text())
    # beta's lock claims a package the bundle does not hold (the manifest lists no file of it)
    alpha_lock, beta_lock = (e["lock"] for e in manifest["environments"])
    tool = next(p for p in alpha_lock["packages"] if p["name"] == "tool")
    foreign = {**tool, "version": "9.9", "fn": "tool-9.9-h1234_0.conda"}
    foreign["url"] = tool["url"].replace("tool-2.0", "tool-9.9")
    beta_lock["packages"].append(foreign)
    manifest_path.write_text(json.dumps(manifest))
    result = run_cli("verify", folder)
    assert result.exit_code == 8, result.output
    assert "environment beta: package tool-9.9-h1234_0 is not in the bundle's packages" in (
        result.output
    )
    assert "envs/beta/env.txt: does not list tool-9.9-h1234_0.conda" in result.output


def test_verify_names_a_missing_environment_installer(built: Built, tmp_path: Path) -> None:
    folder = unpacked(built, tmp_path)
    (folder / "envs" / "beta" / "setup.bat").unlink()
    result = run_cli("verify", folder)
    assert result.exit_code == 8, result.output
    assert "envs/beta/setup.bat" in result.output


def test_diff_picks_an_environment(built: Built) -> None:
    same = run_cli("diff", built.alpha, built.multi, "--env", "alpha", "--json")
    assert same.exit_code == 0, same.output
    data = json.loads(same.output)
    assert (data["added"], data["removed"], data["changed"]) == ([], [], [])
    beta = json.loads(run_cli("diff", built.alpha, built.multi, "--env", "beta", "--json").output)
    assert sorted(p["name"] for p in beta["removed"]) == ["docs", "tool"]
    unknown = run_cli("diff", built.alpha, built.multi, "--env", "gamma")
    assert unknown.exit_code != 0
    assert "no environment 'gamma' (it has: alpha, beta)" in unknown.output


def test_two_versions_of_one_package_verify(
    built: Built, std_channel: Path, tmp_path: Path
) -> None:
    """alpha has tool 2.0, gamma tool 1.0: both files in the pool, each once; the SBOM lists
    both under one name, which verify accepts."""
    with ChannelServer(std_channel) as server, pytest.MonkeyPatch.context() as mp:
        # alpha's lock names the first server's URLs: its packages come from that build's cache
        mp.setenv("ENVPACK_CACHE_DIR", str(built.work / "cache"))
        gamma = write_recipe(tmp_path / "gamma.yaml", [server.url], ["tool=1.0"])
        result = run_cli(
            "build", built.recipes[0], gamma, "--name", "two", "-o", tmp_path / "out",
            "--micromamba-exe", built.exe,
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    bundle = tmp_path / "out" / "two-win-64.zip"
    with zipfile.ZipFile(bundle) as zf:
        tools = sorted(n for n in zf.namelist() if "/tool-" in n)
    assert tools == [
        "two/channel/win-64/tool-1.0-h1234_0.conda",
        "two/channel/win-64/tool-2.0-h1234_0.conda",
    ]
    verified = run_cli("verify", bundle)
    assert verified.exit_code == 0, verified.output
