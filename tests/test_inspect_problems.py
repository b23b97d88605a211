"""inspect and diff report what they notice on the way (issue 13, item 13) and read split
bundles whole."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from channel_factory import Pkg, make_channel, standard_packages
from conftest import run_cli, write_recipe
from http_server import ChannelServer


@pytest.fixture
def bundle(recipe: Path, tmp_path: Path, cache_dir: Path) -> Path:
    result = run_cli("build", recipe, "-o", tmp_path / "dist", "--no-sfx")
    assert result.exit_code == 0, result.output
    return tmp_path / "dist" / "demo-win-64.zip"


def with_member(src: Path, dst: Path, name: str) -> Path:
    dst.write_bytes(src.read_bytes())
    with zipfile.ZipFile(dst, "a") as zf:
        zf.writestr(zipfile.ZipInfo(name), b"payload")
    return dst


def test_inspect_names_an_unsafe_member_and_exits_8(bundle: Path, tmp_path: Path) -> None:
    bad = with_member(bundle, tmp_path / "bad.zip", "demo/../../evil.bat")
    result = run_cli("inspect", bad)
    assert result.exit_code == 8, result.output
    assert "demo/../../evil.bat: unsafe member name ('..' path component)" in result.stdout
    assert "1 problem(s) noticed; run envpack verify" in result.stderr
    as_json = run_cli("inspect", bad, "--json")
    assert as_json.exit_code == 8
    assert json.loads(as_json.stdout)["problems"] == [
        "demo/../../evil.bat: unsafe member name ('..' path component)"
    ]
    good = run_cli("inspect", bundle, "--json")
    assert good.exit_code == 0
    assert json.loads(good.stdout)["problems"] == []


def test_diff_names_an_unsafe_member_and_exits_8(bundle: Path, tmp_path: Path) -> None:
    bad = with_member(bundle, tmp_path / "bad.zip", "demo/channel/CON")
    result = run_cli("diff", bundle, bad, "--json")
    assert result.exit_code == 8, result.output
    assert json.loads(result.stdout)["problems"] == [
        f"{bad}: demo/channel/CON: unsafe member name (reserved Windows device name 'CON')"
    ]
    assert run_cli("diff", bundle, bundle).exit_code == 0


def test_inspect_of_a_changed_sfx_header(recipe: Path, tmp_path: Path, cache_dir: Path) -> None:
    assert run_cli("build", recipe, "-o", tmp_path / "dist", "--sfx").exit_code == 0
    sfx = tmp_path / "dist" / "demo-win-64-setup.bat"
    evil = tmp_path / "evil-setup.bat"
    evil.write_bytes(b"@start calc.exe\r\n" + sfx.read_bytes())
    result = run_cli("inspect", evil, "--json")
    assert result.exit_code == 8
    (problem,) = json.loads(result.stdout)["problems"]
    assert problem.startswith("batch header: ")


def test_inspect_of_a_split_part_reads_the_whole(tmp_path: Path, cache_dir: Path) -> None:
    # A 2.5 MB package in 1 MiB parts: three parts, and inspect of the first sizes them all.
    channel = make_channel(
        tmp_path / "chan", [*standard_packages(), Pkg("big", random_bytes=2_500_000)]
    )
    with ChannelServer(channel) as server:
        recipe = write_recipe(tmp_path / "demo.yaml", [server.url], ["big"])
        result = run_cli("build", recipe, "-o", tmp_path / "dist", "--split", "1M", "--no-sfx")
    assert result.exit_code == 0, result.output
    parts = sorted((tmp_path / "dist" / "demo-win-64").glob("demo-win-64.zip.0*"))
    assert len(parts) == 3
    result = run_cli("inspect", parts[0], "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["bundle_size"] == sum(p.stat().st_size for p in parts)
    assert info["bundle_size"] > 2_500_000
    assert info["form"] == "zip in 3 parts"
