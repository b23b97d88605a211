"""``envpack build A B``: one bundle holding two environments, each package stored once.

Built from the standard channel over real HTTP with the micromamba stand-in: "alpha" (tool, docs,
a post-install script) and "beta" (libzlib) share libzlib, vc, vc14_runtime and ucrt. Each is
also built alone, for the size comparison. setup.bat runs under wine's cmd.exe.
"""

from __future__ import annotations

import json
import shutil
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from envpack.bundle.stubs import render_multi_setup
from multi_env_built import Built, build_multi_demo
from wine import (
    POST_INSTALL_NAME,
    Wine,
    get_wine,
    shutdown,
)

from conftest import run_cli

SHARED = (
    "libzlib-1.3.1-h2466b09_2",
    "ucrt-10.0.22621.0-h57928b3_0",
    "vc-14.3-hcf57466_18",
    "vc14_runtime-14.38.33130-h82b7239_18",
)
ALPHA_ONLY = ("docs-0.1-pyh0", "tool-2.0-h1234_0")


@pytest.fixture(scope="module")
def built(std_channel: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_multi_demo(std_channel, tmp_path_factory.mktemp("multi"))


def members(path: Path) -> dict[str, int]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: i.file_size for i in zf.infolist()}


def manifest(path: Path) -> dict[str, object]:
    with zipfile.ZipFile(path) as zf:
        top = zf.namelist()[0].split("/", 1)[0]
        data: dict[str, object] = json.loads(zf.read(f"{top}/envpack.json"))
        return data


def test_each_shared_package_stored_once(built: Built) -> None:
    multi = members(built.multi)
    packages = sorted(n for n in multi if n.endswith(".conda"))
    assert packages == [
        "alpha+beta/channel/noarch/docs-0.1-pyh0.conda",
        "alpha+beta/channel/win-64/libzlib-1.3.1-h2466b09_2.conda",
        "alpha+beta/channel/win-64/tool-2.0-h1234_0.conda",
        "alpha+beta/channel/win-64/ucrt-10.0.22621.0-h57928b3_0.conda",
        "alpha+beta/channel/win-64/vc-14.3-hcf57466_18.conda",
        "alpha+beta/channel/win-64/vc14_runtime-14.38.33130-h82b7239_18.conda",
    ]
    alone = members(built.alpha) | {f"b:{k}": v for k, v in members(built.beta).items()}
    assert len(multi) < len(alone)
    assert built.multi.stat().st_size < built.alpha.stat().st_size + built.beta.stat().st_size
    # the package bytes of the two alone, less those of the shared four counted twice
    shared = sum(v for k, v in multi.items() if any(s in k for s in SHARED))
    pkg = sum(v for k, v in alone.items() if k.endswith(".conda"))
    assert sum(v for k, v in multi.items() if k.endswith(".conda")) == pkg - shared
    for name in (
        "alpha+beta/setup.bat",
        "alpha+beta/micromamba.exe",
        "alpha+beta/envs/alpha/setup.bat",
        "alpha+beta/envs/alpha/env.txt",
        f"alpha+beta/envs/alpha/post-install/01-{POST_INSTALL_NAME}",
        "alpha+beta/envs/beta/setup.bat",
        "alpha+beta/envs/beta/env.txt",
    ):
        assert name in multi, name
    assert not any(n.startswith("alpha+beta/post-install/") for n in multi)


def test_manifest_lists_environments_and_the_pool(built: Built) -> None:
    data = manifest(built.multi)
    assert data["format_version"] == 1
    assert data["name"] == "alpha+beta"
    lock = data["lock"]
    assert isinstance(lock, dict)
    assert len(lock["packages"]) == 6
    envs = data["environments"]
    assert isinstance(envs, list)
    assert [e["name"] for e in envs] == ["alpha", "beta"]
    assert [len(e["lock"]["packages"]) for e in envs] == [6, 4]
    assert envs[1]["install"]["default_prefix"] == "installed\\beta"
    assert envs[0]["install"]["post_install"] == [f"envs/alpha/post-install/01-{POST_INSTALL_NAME}"]
    with zipfile.ZipFile(built.multi) as zf:
        beta_txt = zf.read("alpha+beta/envs/beta/env.txt").decode()
        sbom = json.loads(zf.read("alpha+beta/sbom.cdx.json"))
    assert sorted(line.rsplit("/", 1)[-1].split("#")[0] for line in beta_txt.split()[1:]) == [
        f"{s}.conda" for s in SHARED
    ]
    assert sorted(c["bom-ref"] for c in sbom["components"]) == sorted(SHARED + ALPHA_ONLY)


def test_verify_passes_and_names_a_flipped_shared_package(built: Built, tmp_path: Path) -> None:
    result = run_cli("verify", built.multi)
    assert result.exit_code == 0, result.output
    bad = tmp_path / "bad.zip"
    shutil.copy(built.multi, bad)
    name = "alpha+beta/channel/win-64/libzlib-1.3.1-h2466b09_2.conda"
    with zipfile.ZipFile(bad) as zf:
        info = zf.getinfo(name)
    data = bytearray(bad.read_bytes())
    # a byte in the middle of the stored member's data (stored: no compression); the data
    # starts after the LOCAL header's name and extra (the alignment padding is only there)
    at = info.header_offset
    name_len, extra_len = struct.unpack("<HH", data[at + 26 : at + 30])
    offset = at + 30 + name_len + extra_len
    data[offset + info.file_size // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    result = run_cli("verify", bad)
    assert result.exit_code == 8, result.output
    assert "libzlib-1.3.1-h2466b09_2" in result.output


@pytest.mark.parametrize("form", [["--format", "7z"], ["--split", "1M"]])
def test_7z_and_split_forms_verify(built: Built, tmp_path: Path, form: list[str]) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENVPACK_CACHE_DIR", str(built.work / "cache"))
        result = run_cli(
            "build",
            *built.recipes,
            "-o",
            tmp_path,
            "--frozen",
            "--micromamba-exe",
            built.exe,
            "--offline",
            *form,
        )
    assert result.exit_code == 0, result.output
    outputs = [Path(p) for p in result.output.split() if p.startswith(str(tmp_path))]
    assert outputs, result.output
    target = outputs[0]
    if form[0] == "--split":
        target = next(p for p in outputs if p.name.endswith(".001"))
    verified = run_cli("verify", target)
    assert verified.exit_code == 0, verified.output


def test_build_from_is_byte_identical(built: Built, tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENVPACK_CACHE_DIR", str(built.work / "cache"))
        result = run_cli("build", "--from", built.multi, "-o", tmp_path, "--offline")
    assert result.exit_code == 0, result.output
    again = tmp_path / "alpha+beta-win-64.zip"
    assert again.read_bytes() == built.multi.read_bytes()


def test_bad_command_lines(built: Built, tmp_path: Path) -> None:
    result = run_cli("build", built.recipes[0], "--name", "x", "-o", tmp_path)
    assert result.exit_code == 2
    assert "--name" in result.output


# ------------------------------------------------------------------ setup.bat under wine


@pytest.fixture(scope="module")
def wine() -> Iterator[Wine]:
    yield get_wine()
    shutdown()


def unpack(built: Built, parent: Path) -> Path:
    with zipfile.ZipFile(built.multi) as zf:
        zf.extractall(parent)
    return parent / "alpha+beta"


def installed(prefix: Path) -> list[str]:
    meta = prefix / "conda-meta"
    return sorted(p.stem for p in meta.glob("*.json")) if meta.is_dir() else []


@pytest.mark.wine
def test_setup_installs_both_environments(built: Built, wine: Wine, tmp_path: Path) -> None:
    bundle = unpack(built, tmp_path / "b & co (x86)")
    result = wine.run_bat(bundle / "setup.bat", ["/S"], cwd=tmp_path)
    assert result.rc == 0, result.out
    assert installed(bundle / "installed" / "alpha") == sorted(SHARED + ALPHA_ONLY)
    assert installed(bundle / "installed" / "beta") == sorted(SHARED)
    for env in ("alpha", "beta"):
        prefix = bundle / "installed" / env
        assert (prefix / "activate.bat").is_file()
        assert (prefix / "Scripts" / "micromamba.exe").is_file()
        assert not (prefix / ".envpack-incomplete").exists()
    # alpha's post-install script ran (it copied itself into the prefix first)
    assert (bundle / "installed" / "alpha" / "etc" / "envpack" / "post-install").is_dir()
    # a second run without /FORCE: alpha's prefix is taken, the check pass stops before any
    # install, with setup.bat's exit code 6
    again = wine.run_bat(bundle / "setup.bat", ["/S"], cwd=tmp_path)
    assert again.rc == 6, again.out
    assert "alpha" in again.out


@pytest.mark.wine
def test_setup_installs_only_the_named_one(built: Built, wine: Wine, tmp_path: Path) -> None:
    bundle = unpack(built, tmp_path / "bundle")
    result = wine.run_bat(bundle / "setup.bat", ["BETA", "/S"], cwd=tmp_path)
    assert result.rc == 0, result.out
    assert installed(bundle / "installed" / "beta") == sorted(SHARED)
    assert not (bundle / "installed" / "alpha").exists()


@pytest.mark.wine
def test_setup_refuses_an_unknown_name(built: Built, wine: Wine, tmp_path: Path) -> None:
    bundle = unpack(built, tmp_path / "bundle")
    result = wine.run_bat(bundle / "setup.bat", ["gamma", "/S"], cwd=tmp_path)
    assert result.rc == 1, result.out
    assert 'no environment "gamma"' in result.out
    assert "it has: alpha, beta" in result.out
    assert not (bundle / "installed").exists()


@pytest.mark.wine
def test_free_space_counts_every_chosen_environment(
    built: Built, wine: Wine, tmp_path: Path
) -> None:
    """beta needing 10^15 bytes more: alpha's check (first) already asks for both together;
    naming alpha alone, beta's share is not counted and alpha installs."""
    bundle = unpack(built, tmp_path / "bundle")
    alpha, beta = built.contexts
    huge = replace(beta, installed_size=10**15)
    (bundle / "setup.bat").write_bytes(render_multi_setup("alpha+beta", [alpha, huge]))
    result = wine.run_bat(bundle / "setup.bat", ["/S"], cwd=tmp_path)
    assert result.rc == 7, result.out
    assert "not enough free space" in result.out
    # 10^15 bytes are 10^9 MB; alpha's own need (1 MB) comes on top
    assert "about 1000000002 MB needed." in result.out
    assert 'stopped at the environment "alpha" (exit code 7)' in result.out
    assert not (bundle / "installed").exists()
    alone = wine.run_bat(bundle / "setup.bat", ["alpha", "/S"], cwd=tmp_path)
    assert alone.rc == 0, alone.out
    assert installed(bundle / "installed" / "alpha") == sorted(SHARED + ALPHA_ONLY)
