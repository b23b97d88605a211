"""setup.sh runs pip-step.sh after micromamba: a linux-64 bundle with wheels (a 127.0.0.1 index),
installed under dash by the real Linux micromamba; the environment's bin/python is a stand-in
that records its argv, so the pip step's command line and its exit code 14 are checked."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conda_package_handling import api

from pypi_index import IndexServer, standard_dists, write_index

from channel_factory import REAL_MICROMAMBA, Pkg, make_channel
from conftest import run_cli

pytestmark = [
    pytest.mark.skipif(
        not REAL_MICROMAMBA.is_file(), reason="../shared's real micromamba is absent"
    ),
    pytest.mark.skipif(shutil.which("dash") is None, reason="dash is not installed"),
]
pytest.importorskip("uv")

# The environment's python: records its arguments next to itself, exits with STANDIN_PY_EXIT.
STANDIN = b"""#!/bin/sh
here=$(dirname "$0")
for a in "$@"; do printf 'arg=%s\\n' "$a" >>"$here/../python-argv.txt"; done
exit "${STANDIN_PY_EXIT:-0}"
"""


@pytest.fixture
def index(tmp_path: Path) -> Iterator[IndexServer]:
    with IndexServer(write_index(tmp_path / "index", standard_dists())) as srv:
        yield srv


def _executable_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """channel_factory writes package files 0644; bin/python must be executable in the package
    (micromamba keeps the mode it finds)."""
    create = api.create

    def create_executable(root: str, files: list[str], *args: Any, **kw: Any) -> Any:
        python = Path(root) / "bin" / "python"
        if python.is_file():
            python.chmod(0o755)
        return create(root, files, *args, **kw)

    monkeypatch.setattr(api, "create", create_executable)


@pytest.fixture
def bundle(
    index: IndexServer, tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    _executable_python(monkeypatch)
    pkgs = [
        Pkg("python", "3.9.10", "h0_cp39", subdir="linux-64", files={"bin/python": STANDIN}),
        Pkg("pip", "23.0", "pyh0", subdir="noarch", depends=["python >=3.7"]),
    ]
    channel = make_channel(tmp_path / "chan", pkgs)
    env = tmp_path / "environment.yml"
    env.write_text(
        f"name: pipenv\nchannels: [{channel.as_uri()}]\n"
        "dependencies:\n  - python=3.9.10=h0_cp39\n  - pip\n  - pip:\n"
        f"    - --index-url {index.url}/simple\n    - alpha\n"
    )
    out = tmp_path / "dist"
    result = run_cli(
        "build", str(env), "-o", str(out), "--platform", "linux-64",
        "--micromamba-exe", str(REAL_MICROMAMBA),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [tar] = out.glob("*.tar")
    unpacked = tmp_path / "un packed"
    unpacked.mkdir()
    with tarfile.open(tar) as tf:
        names = tf.getnames()
        tf.extractall(unpacked, filter="tar")
    assert "pipenv/pip-step.sh" in names
    assert "pipenv/wheels/alpha-1.1-cp39-cp39-manylinux_2_17_x86_64.manylinux2014_x86_64.whl" in (
        names
    )
    return unpacked / "pipenv"


def _setup(
    folder: Path, prefix: Path, home: Path, **extra: str
) -> subprocess.CompletedProcess[str]:
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8", **extra}
    return subprocess.run(
        ["dash", str(folder / "setup.sh"), str(prefix), "--yes"],
        env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_setup_sh_runs_the_pip_step(bundle: Path, tmp_path: Path) -> None:
    prefix = tmp_path / "my env"
    done = _setup(bundle, prefix, tmp_path / "home")
    assert done.returncode == 0, done.stdout + done.stderr
    argv = (prefix / "python-argv.txt").read_text().splitlines()
    assert argv[:7] == [
        "arg=-s", "arg=-m", "arg=pip", "arg=install", "arg=--no-index", "arg=--no-deps",
        "arg=--require-hashes",
    ]  # fmt: skip
    assert argv[-2:] == ["arg=-r", f"arg={bundle}/wheels.txt"]
    assert f"arg={bundle}/wheels" in argv
    assert "installing the Python wheels" in done.stdout
    assert "pip: done" in (prefix / "envpack-install.log").read_text()


def test_setup_sh_pip_failure_exits_14(bundle: Path, tmp_path: Path) -> None:
    prefix = tmp_path / "my env"
    done = _setup(bundle, prefix, tmp_path / "home", STANDIN_PY_EXIT="3")
    assert done.returncode == 14, done.stdout + done.stderr
    assert "installing the Python wheels failed" in done.stderr
    assert "pip: installing the wheels failed" in (prefix / "envpack-install.log").read_text()
    usage = subprocess.run(
        ["dash", str(bundle / "setup.sh"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert "14 installing the Python wheels failed;" in usage.stdout


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_rendered_setup_sh_with_pip_step_is_shellcheck_clean(bundle: Path) -> None:
    assert "pip-step.sh" in (bundle / "setup.sh").read_text()
    done = subprocess.run(
        ["shellcheck", "-s", "sh", str(bundle / "setup.sh"), str(bundle / "pip-step.sh")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout
