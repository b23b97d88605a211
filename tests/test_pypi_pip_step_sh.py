"""stubs/pip-step.sh under dash and bash, with a stand-in bin/python recording what it got."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

STEP = Path(__file__).parent.parent / "stubs" / "pip-step.sh"
STANDIN = """#!/bin/sh
for a in "$@"; do echo "arg=$a" >>"$STANDIN_PY_RECORD"; done
env | grep -E '^(PIP_|PYTHON)' | sort | sed 's/^/env=/' >>"$STANDIN_PY_RECORD"
echo "standin pip output"
exit "${STANDIN_PY_EXIT:-0}"
"""


def _layout(tmp_path: Path) -> tuple[Path, Path, Path]:
    prefix = tmp_path / "env"
    (prefix / "bin").mkdir(parents=True)
    python = prefix / "bin" / "python"
    python.write_text(STANDIN)
    python.chmod(0o755)
    bundle = tmp_path / "bundle"
    (bundle / "wheels").mkdir(parents=True)
    (bundle / "wheels.txt").write_text("alpha==1.1 --hash=sha256:" + "a" * 64 + "\n")
    return prefix, bundle, tmp_path / "setup.log"


def _run(shell: str, tmp_path: Path, code: int = 0) -> tuple[int, list[str], str]:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    prefix, bundle, log = _layout(tmp_path)
    record = tmp_path / "record.txt"
    env = {
        "PATH": os.environ["PATH"],
        "STANDIN_PY_RECORD": str(record),
        "STANDIN_PY_EXIT": str(code),
        "PIP_INDEX_URL": "http://user:pw@example.invalid/simple",
        "PIP_USER": "1",
        "PYTHONPATH": "/elsewhere",
    }
    proc = subprocess.run(
        [shell, str(STEP), str(prefix), f"{bundle}/", str(log)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    lines = record.read_text().splitlines() if record.exists() else []
    return proc.returncode, lines, log.read_text() if log.exists() else ""


@pytest.mark.parametrize("shell", ["dash", "bash"])
def test_pip_step_sh_installs_offline_isolated(shell: str, tmp_path: Path) -> None:
    rc, lines, log = _run(shell, tmp_path)
    assert rc == 0
    bundle = tmp_path / "bundle"
    assert [ln[4:] for ln in lines if ln.startswith("arg=")] == [
        "-s", "-m", "pip", "install", "--no-index", "--no-deps", "--require-hashes",
        "--no-cache-dir", "--isolated", "--disable-pip-version-check",
        "--no-warn-script-location", "--find-links", f"{bundle}/wheels",
        "-r", f"{bundle}/wheels.txt",
    ]  # fmt: skip
    assert [ln[4:] for ln in lines if ln.startswith("env=")] == [
        "PIP_CONFIG_FILE=/dev/null",
        "PYTHONNOUSERSITE=1",
    ]
    assert "standin pip output" in log and "pip: done" in log


def test_pip_step_sh_failure_exits_14(tmp_path: Path) -> None:
    rc, _, log = _run("dash", tmp_path, code=3)
    assert rc == 14
    assert "pip: installing the wheels failed" in log
