"""End to end: a recipe against a real HTTP channel on 127.0.0.1 becomes a verified bundle."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import yaml

from channel_factory import file_sha256
from conftest import run_cli, write_recipe
from http_server import ChannelServer


def test_build_end_to_end(
    recipe: Path, tmp_path: Path, cache_dir: Path, server: ChannelServer
) -> None:
    out = tmp_path / "dist"
    result = run_cli("build", recipe, "-o", out, "--sfx")
    assert result.exit_code == 0, result.output
    bundle = out / "demo-win-64.zip"
    sfx = out / "demo-win-64-setup.bat"
    assert bundle.is_file() and sfx.is_file()

    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
        packages = [n for n in names if n.endswith((".conda", ".tar.bz2"))]
        # The packages first (written while they download), then every other file; each by name.
        assert len(packages) == 6
        assert names == sorted(packages) + sorted(n for n in names if n not in packages)
        assert all(n.startswith("demo/") for n in names)
        manifest = json.loads(zf.read("demo/envpack.json"))
        env_txt = zf.read("demo/env.txt").decode()
        for info in zf.infolist():
            assert info.compress_type == zipfile.ZIP_STORED
            assert info.date_time == zipfile.ZipInfo("x", (2023, 11, 14, 22, 13, 20)).date_time
        assert zf.read("demo/micromamba.exe").startswith(b"MZ fake micromamba 2.8.1")
        assert zf.read("demo/vcruntime140.dll") == b"vcruntime140"
        assert zf.read("demo/msvcp140.dll") == b"msvcp140"
        setup = zf.read("demo/setup.bat")
        assert b"\r\n" in setup and b"\n" not in setup.replace(b"\r\n", b"")

    names_in_lock = sorted(p["name"] for p in manifest["lock"]["packages"])
    assert names_in_lock == ["docs", "libzlib", "tool", "ucrt", "vc", "vc14_runtime"]
    tool = next(p for p in manifest["lock"]["packages"] if p["name"] == "tool")
    assert tool["version"] == "2.0"
    assert manifest["lock"]["micromamba"]["record"]["version"] == "2.8.1"
    assert f"demo/channel/win-64/{tool['fn']}" in {f"demo/{k}" for k in manifest["files"]}
    lines = env_txt.splitlines()
    assert lines[0] == "@EXPLICIT"
    # dependencies come before dependents, so micromamba 1.x installs in a valid order
    order = [line.rsplit("/", 1)[1].split("-")[0] for line in lines[1:]]
    assert (
        order.index("ucrt")
        < order.index("vc14_runtime")
        < order.index("tool")
        < order.index("docs")
    )
    assert all("#" in line and len(line.rsplit("#", 1)[1]) == 32 for line in lines[1:])

    lock_file = recipe.with_name("demo.lock.yaml")
    data = yaml.safe_load(lock_file.read_text())
    assert data["version"] == 1
    assert data["platforms"]["win-64"]["virtual_packages"] == [
        "__archspec=1=x86_64",
        "__win=10.0.19045=0",
    ]

    # A rebuild reuses the lock and the cache: no package is requested again, and the bytes match.
    first = file_sha256(bundle)
    pkg_hits = {k: v for k, v in server.hits.items() if k.endswith((".conda", ".bz2"))}
    bundle.unlink()
    result = run_cli("build", recipe, "-o", out, "--locked")
    assert result.exit_code == 0, result.output
    assert file_sha256(bundle) == first
    assert {k: v for k, v in server.hits.items() if k.endswith((".conda", ".bz2"))} == pkg_hits


def test_same_lock_same_bytes_across_caches(recipe: Path, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ENVPACK_CACHE_DIR", str(tmp_path / "c1"))
    assert run_cli("build", recipe, "-o", tmp_path / "a", "--sfx").exit_code == 0
    monkeypatch.setenv("ENVPACK_CACHE_DIR", str(tmp_path / "c2"))
    assert run_cli("build", recipe, "-o", tmp_path / "b", "--frozen", "--sfx").exit_code == 0
    for name in ("demo-win-64.zip", "demo-win-64-setup.bat"):
        assert file_sha256(tmp_path / "a" / name) == file_sha256(tmp_path / "b" / name)


def test_source_date_epoch(recipe: Path, tmp_path: Path, cache_dir: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1600000000")
    assert run_cli("build", recipe, "-o", tmp_path / "d", "--no-sfx").exit_code == 0
    with zipfile.ZipFile(tmp_path / "d" / "demo-win-64.zip") as zf:
        assert {i.date_time for i in zf.infolist()} == {(2020, 9, 13, 12, 26, 40)}
    assert not (tmp_path / "d" / "demo-win-64-setup.bat").exists()


def test_sfx_is_a_zip_with_absolute_offsets(recipe: Path, tmp_path: Path, cache_dir: Path) -> None:
    assert run_cli("build", recipe, "-o", tmp_path / "d", "--sfx").exit_code == 0
    sfx = tmp_path / "d" / "demo-win-64-setup.bat"
    raw = sfx.read_bytes()
    assert raw.startswith(b"@echo off\r\n")
    with zipfile.ZipFile(sfx) as zf:
        assert zf.testzip() is None
        first = zf.infolist()[0]
        assert first.header_offset > 0  # absolute: counted from the start of the .bat


def test_local_folder_channel(std_channel: Path, tmp_path: Path, cache_dir: Path) -> None:
    rel = write_recipe(tmp_path / "local.yaml", [str(std_channel)], ["tool=1.0"])
    result = run_cli("build", rel, "-o", tmp_path / "o", "--no-sfx")
    assert result.exit_code == 0, result.output
    uri = write_recipe(tmp_path / "uri.yaml", [std_channel.as_uri()], ["tool=1.0"])
    assert run_cli("build", uri, "-o", tmp_path / "o", "--no-sfx").exit_code == 0
    with zipfile.ZipFile(tmp_path / "o" / "local-win-64.zip") as zf:
        lock = json.loads(zf.read("local/envpack.json"))["lock"]
    assert {p["name"]: p["version"] for p in lock["packages"]}["tool"] == "1.0"


def test_manifest_records_micromambas_extraction_paths(
    recipe: Path, tmp_path: Path, cache_dir: Path, server: ChannelServer
) -> None:
    assert run_cli("build", recipe, "-o", tmp_path / "o", "--no-sfx").exit_code == 0
    with zipfile.ZipFile(tmp_path / "o" / "demo-win-64.zip") as zf:
        manifest = json.loads(zf.read("demo/envpack.json"))
    install = manifest["install"]
    host = server.url.split("://", 1)[1].replace(":", "_")
    # "http\127.0.0.1_PORT\win-64\<dist>\<longest path>" for the package holding the longest path
    assert (
        install["longest_extract_path"] >= len(f"http\\{host}\\noarch\\") + install["longest_path"]
    )
    assert (
        install["longest_extract_path"]
        <= len(f"http\\{host}\\win-64\\") + 64 + install["longest_path"]
    )


def test_output_modes(recipe: Path, tmp_path: Path, cache_dir: Path) -> None:
    plain = run_cli("build", recipe, "-o", tmp_path / "a", "--no-sfx")
    assert plain.exit_code == 0
    # not a terminal: plain progress lines, one per package, then the bundle's path on stdout
    assert "[7/7] fetched " in plain.stderr and "win-64: writing " in plain.stderr
    assert plain.stdout.strip() == str(tmp_path / "a" / "demo-win-64.zip")
    quiet = run_cli("build", recipe, "-o", tmp_path / "b", "--no-sfx", "-q")
    assert quiet.exit_code == 0 and quiet.stdout == "" and quiet.stderr == ""
    as_json = run_cli("build", recipe, "-o", tmp_path / "c", "--no-sfx", "--json")
    data = json.loads(as_json.stdout)
    assert as_json.stderr == ""
    assert data["outputs"] == [str(tmp_path / "c" / "demo-win-64.zip")]
    assert data["packages"] == 6 and data["bytes"] > 0 and data["lock_changed"] is False
