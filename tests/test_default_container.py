"""One container by default: `envpack build` writes the bundle alone; the self-extracting
-setup.bat / -setup.sh comes with `--sfx` or the recipe's `envpack: sfx: true`, and `--no-sfx`
beats the recipe (issue 18)."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from channel_factory import Pkg, build_package
from conftest import run_cli, write_recipe
from http_server import ChannelServer


def outputs(result_stdout: str, out: Path) -> list[str]:
    return [Path(p).relative_to(out).as_posix() for p in json.loads(result_stdout)["outputs"]]


def test_default_build_writes_exactly_one_bundle_file(
    recipe: Path, tmp_path: Path, cache_dir: Path
) -> None:
    out = tmp_path / "dist"
    result = run_cli("build", recipe, "-o", out, "--json")
    assert result.exit_code == 0, result.output
    assert outputs(result.stdout, out) == ["demo-win-64.zip"]
    assert sorted(p.name for p in out.iterdir()) == ["demo-win-64.zip"]


@pytest.mark.parametrize("how", ["flag", "recipe"])
def test_sfx_flag_or_recipe_key_writes_both(
    how: str, tmp_path: Path, server: ChannelServer, cache_dir: Path
) -> None:
    extra = "envpack:\n  sfx: true\n" if how == "recipe" else ""
    recipe = write_recipe(tmp_path / "demo.yaml", [server.url], ["tool", "docs"], extra)
    out = tmp_path / "dist"
    flags = ["--sfx"] if how == "flag" else []
    result = run_cli("build", recipe, "-o", out, "--json", *flags)
    assert result.exit_code == 0, result.output
    assert outputs(result.stdout, out) == ["demo-win-64.zip", "demo-win-64-setup.bat"]
    assert sorted(p.name for p in out.iterdir()) == ["demo-win-64-setup.bat", "demo-win-64.zip"]
    bat = (out / "demo-win-64-setup.bat").read_bytes()
    assert bat.startswith(b"@")
    with (
        zipfile.ZipFile(out / "demo-win-64.zip") as a,
        zipfile.ZipFile(out / "demo-win-64-setup.bat") as b,
    ):
        assert a.namelist() == b.namelist()
        assert all(a.read(n) == b.read(n) for n in a.namelist())
    assert run_cli("verify", out / "demo-win-64-setup.bat").exit_code == 0


def test_no_sfx_beats_the_recipe(tmp_path: Path, server: ChannelServer, cache_dir: Path) -> None:
    recipe = write_recipe(tmp_path / "demo.yaml", [server.url], ["tool"], "envpack:\n  sfx: true\n")
    out = tmp_path / "dist"
    result = run_cli("build", recipe, "-o", out, "--no-sfx", "--json")
    assert result.exit_code == 0, result.output
    assert outputs(result.stdout, out) == ["demo-win-64.zip"]
    assert sorted(p.name for p in out.iterdir()) == ["demo-win-64.zip"]


def test_recipe_sfx_false_is_one_bundle(
    tmp_path: Path, server: ChannelServer, cache_dir: Path
) -> None:
    recipe = write_recipe(
        tmp_path / "demo.yaml", [server.url], ["tool"], "envpack:\n  sfx: false\n"
    )
    out = tmp_path / "dist"
    assert run_cli("build", recipe, "-o", out).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["demo-win-64.zip"]


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("yes", "a string ('yes')"),  # YAML 1.2, as conda reads it: a word, not true
        ("'true'", "a string ('true')"),
        ("1", "a number (1)"),
        ("[true]", "a list ([True])"),
    ],
)
def test_wrong_type_for_sfx_is_one_clear_error(
    value: str, found: str, tmp_path: Path, server: ChannelServer, cache_dir: Path
) -> None:
    recipe = write_recipe(
        tmp_path / "demo.yaml", [server.url], ["tool"], f"envpack:\n  sfx: {value}\n"
    )
    result = run_cli("build", recipe, "-o", tmp_path / "dist")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"envpack: error: {recipe}: 'envpack.sfx' must be true or false (unquoted), found {found}"
    ]
    assert not (tmp_path / "dist").exists()


def test_several_environments_write_one_bundle_and_say_so_on_sfx(
    tmp_path: Path, server: ChannelServer, cache_dir: Path
) -> None:
    a = write_recipe(tmp_path / "alpha.yaml", [server.url], ["tool"])
    b = write_recipe(tmp_path / "beta.yaml", [server.url], ["libzlib"])
    plain = run_cli("build", a, b, "-o", tmp_path / "one")
    assert plain.exit_code == 0, plain.output
    assert "self-extracting" not in plain.stderr
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["alpha+beta-win-64.zip"]
    asked = run_cli("build", a, b, "-o", tmp_path / "two", "--sfx")
    assert asked.exit_code == 0, asked.output
    assert "note: a bundle of several environments has no self-extracting -setup.bat" in (
        asked.stderr
    )
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["alpha+beta-win-64.zip"]


@pytest.fixture
def linux_lock(tmp_path: Path) -> tuple[Path, Path]:
    """An @EXPLICIT lock of one linux-64 package from a local folder, and a micromamba file."""
    package = build_package(
        Pkg("hello", "1.0", "0", subdir="linux-64", files={"bin/hello": b"#!/bin/sh\n"}),
        tmp_path / "chan" / "linux-64",
    )
    md5 = hashlib.md5(package.read_bytes()).hexdigest()
    lock = tmp_path / "hello.txt"
    lock.write_text(f"# platform: linux-64\n@EXPLICIT\n{package.as_uri()}#{md5}\n")
    exe = tmp_path / "micromamba"
    exe.write_bytes(b"\x7fELF stand-in micromamba\n")
    return lock, exe


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], ["hello-linux-64.tar"]),
        (["--sfx"], ["hello-linux-64-setup.sh", "hello-linux-64.tar"]),
    ],
)
def test_linux_bundle_is_one_tar_unless_sfx(
    flags: list[str],
    expected: list[str],
    linux_lock: tuple[Path, Path],
    tmp_path: Path,
    cache_dir: Path,
) -> None:
    lock, exe = linux_lock
    out = tmp_path / "dist"
    result = run_cli("build", lock, "-o", out, "--micromamba-exe", exe, *flags)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == expected


@pytest.mark.parametrize("split", [False, True])
def test_a_build_without_sfx_removes_the_old_installer(
    split: bool, tmp_path: Path, server: ChannelServer, cache_dir: Path
) -> None:
    """An old -setup.bat beside a new zip would install the previous packages: a build without
    --sfx removes it (whole or in parts) and says so; other files in the folder stay."""
    out = tmp_path / "dist"
    parts = ["--split", "1M"] if split else []
    first = write_recipe(tmp_path / "demo.yaml", [server.url], ["tool", "docs"])
    assert run_cli("build", first, "-o", out, "--sfx", *parts).exit_code == 0
    old = out / "demo-win-64-setup" if split else out / "demo-win-64-setup.bat"
    assert old.exists()
    (out / "notes.txt").write_text("mine")
    second = write_recipe(tmp_path / "demo.yaml", [server.url], ["tool"])
    result = run_cli("build", second, "-o", out, *parts)
    assert result.exit_code == 0, result.output
    assert not old.exists()
    assert "removed the old demo-win-64-setup" in result.output
    assert (out / "notes.txt").read_text() == "mine"
    expected = ["demo-win-64", "notes.txt"] if split else ["demo-win-64.zip", "notes.txt"]
    assert sorted(p.name for p in out.iterdir()) == expected
