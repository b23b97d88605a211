"""setup.bat under wine's real cmd.exe, installing a real bundle with the micromamba stand-in.

Each test unpacks the session's bundle (built by envpack from a real HTTP channel) with Python's
zipfile into a folder with cmd.exe's awkward characters in its name and runs its setup.bat from a
wrapper batch file, as a user would at a cmd.exe prompt. The stand-in records the exact command
line, environment and working folder micromamba would see, and refuses what micromamba refuses.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from envpack.mamba_cli import CLEARED_VARS, PKGS_DIRS_VAR, ROOT_PREFIX_VAR, install_argv
from envpack.stubs import StubContext, prefix_files
from wine import (
    TEST_VARIABLE,
    Demo,
    Result,
    Wine,
    build_demo,
    get_wine,
    percent_survives,
    win_path,
)

pytestmark = pytest.mark.wine

# cmd.exe's troublemakers in a folder name: space, &, (x86), !, ^ and a non-ASCII letter
AWKWARD_BUNDLE = "bundle & co (x86)!^ é"
AWKWARD_PREFIX = "env & more (x86)!^ é"
PERCENT_BUNDLE = "100% bundle & co (x86)!^ é"
PERCENT_PREFIX = "env 50% & (x86)!^ é"

# What a parent shell may leak into setup.bat; none of it may reach micromamba.
LEAKY_ENV = {
    "CONDA_DEFAULT_ENV": "base",
    "CONDA_SHLVL": "2",
    "CONDA_EXE": r"C:\anaconda3\Scripts\conda.exe",
    "CONDA_SUBDIR": "linux-64",
    "CONDA_CHANNELS": "defaults",
    "CONDA_SOMETHING_ELSE": "1",
    "CONDARC": r"C:\elsewhere\.condarc",
    "MAMBARC": r"C:\elsewhere\.mambarc",
    "MAMBA_ROOT_PREFIX": r"C:\elsewhere\micromamba",
    "MAMBA_NO_BANNER": "1",
    "PYTHONHOME": r"C:\Python27",
    "PYTHONPATH": r"C:\lib",
}


@pytest.fixture(scope="session")
def wine() -> Wine:
    return get_wine()


@pytest.fixture(scope="session")
def demo(std_channel: Path, tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return build_demo(std_channel, tmp_path_factory.mktemp("demo-build"))


def unpack(demo: Demo, parent: Path) -> Path:
    parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(demo.zip) as zf:
        zf.extractall(parent)
    return parent / demo.name


def records(path: Path) -> list[dict[str, object]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def ctx_of(demo: Demo) -> StubContext:
    assert isinstance(demo.ctx, StubContext)
    return demo.ctx


@dataclass
class Run:
    bundle: Path
    prefix: Path
    result: Result
    record_file: Path

    @property
    def records(self) -> list[dict[str, object]]:
        return records(self.record_file)

    @property
    def work(self) -> Path:
        return self.prefix.with_name(self.prefix.name + ".envpack-work")

    @property
    def log(self) -> str:
        return (self.prefix / "envpack-install.log").read_text("latin-1")


class Setup:
    """One unpacked bundle and one prefix; :meth:`run` runs its setup.bat under wine."""

    def __init__(self, wine: Wine, demo: Demo, tmp: Path, bundle_dir: str, prefix_dir: str) -> None:
        self.wine = wine
        self.demo = demo
        self.bundle = unpack(demo, tmp / bundle_dir)
        self.prefix = tmp / "target" / prefix_dir
        self.prefix.parent.mkdir(parents=True, exist_ok=True)
        self.record_file = tmp / "micromamba-record.jsonl"
        self.cwd = tmp

    def run(
        self,
        args: Sequence[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        stdin: bytes = b"",
        before: Sequence[str] = (),
        bat: Path | None = None,
    ) -> Run:
        if args is None:
            args = [win_path(self.prefix), "/S"]
        result = self.wine.run_bat(
            bat or self.bundle / "setup.bat",
            args,
            cwd=self.cwd,
            before=before,
            env={"STANDIN_RECORD": win_path(self.record_file), **(env or {})},
            stdin=stdin,
        )
        return Run(self.bundle, self.prefix, result, self.record_file)


@pytest.fixture
def setup(wine: Wine, demo: Demo, tmp_path: Path) -> Setup:
    return Setup(wine, demo, tmp_path, AWKWARD_BUNDLE, AWKWARD_PREFIX)


def assert_installed(run: Run, ctx: StubContext) -> None:
    """Everything a successful install leaves, and nothing it should not."""
    assert run.result.rc == 0, run.result.out
    prefix = run.prefix
    for rel in ctx.packages:
        stem = rel.rsplit("\\", 1)[1].removesuffix(".conda").removesuffix(".tar.bz2")
        assert (prefix / "conda-meta" / f"{stem}.json").is_file(), stem
    for rel in ctx.micromamba_files:
        assert (prefix / "Scripts" / rel).read_bytes() == (run.bundle / rel).read_bytes()
    for name, text in prefix_files(ctx):
        assert (prefix / name).read_bytes() == text.replace("\n", "\r\n").encode(), name
    assert not (prefix / ".envpack-incomplete").exists()
    assert not run.work.exists()
    log = run.log
    assert "result: installed" in log
    assert "micromamba exit code: 0" in log
    assert "Transaction finished" in log


def test_install_into_awkward_paths(setup: Setup) -> None:
    ctx = ctx_of(setup.demo)
    run = setup.run(env=LEAKY_ENV)
    assert_installed(run, ctx)

    create, post = run.records
    prefix = win_path(run.prefix)
    work = prefix + ".envpack-work"
    bundle = win_path(run.bundle)
    assert create["argv"] == install_argv(
        work + "\\bin\\micromamba.exe", prefix, bundle + "\\env.txt", "win-64", shortcuts=False
    )
    env = create["env"]
    assert isinstance(env, dict)
    assert env[ROOT_PREFIX_VAR] == work + "\\root"
    assert env[PKGS_DIRS_VAR] == work + "\\pkgs"
    leaked = {k for k in env if k.upper().startswith(("CONDA", "MAMBA", "PYTHON"))}
    assert leaked == {ROOT_PREFIX_VAR, PKGS_DIRS_VAR}
    assert not set(CLEARED_VARS) & set(env)
    assert create["cwd"] == win_path(setup.cwd)

    # the post-install script ran micromamba.exe from PATH, inside the activated environment
    assert post["argv"] == ["micromamba.exe", "--version"]
    assert post["exe"] == prefix + "\\Scripts\\micromamba.exe"
    assert post["cwd"] == prefix
    penv = post["env"]
    assert isinstance(penv, dict)
    assert penv["CONDA_PREFIX"] == prefix
    assert penv["CONDA_SHLVL"] == "1"
    assert penv["PATH"].startswith(f"{prefix};{prefix}\\Library\\mingw-w64\\bin;")
    assert penv[TEST_VARIABLE[0]] == TEST_VARIABLE[1]
    assert ROOT_PREFIX_VAR not in penv and PKGS_DIRS_VAR not in penv
    assert "post-install ran" in run.log


def test_install_with_percent_in_paths(wine: Wine, demo: Demo, tmp_path: Path) -> None:
    if not percent_survives():
        pytest.skip(
            "this wine's cmd.exe re-expands the value it substitutes for %~dp0 or %VAR%, so a "
            "'%' in a path is lost before setup.bat sees it (cmd.exe on Windows substitutes once)"
        )
    setup = Setup(wine, demo, tmp_path, PERCENT_BUNDLE, PERCENT_PREFIX)
    run = setup.run()
    assert_installed(run, ctx_of(demo))
    assert run.records[0]["argv"][3] == win_path(run.prefix)  # type: ignore[index]
