"""stubs/pip-step.bat under wine's cmd.exe, with a stand-in python.exe recording what it got."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import wine as winemod

pytestmark = pytest.mark.wine

STEP = Path(__file__).parent.parent / "stubs" / "pip-step.bat"
SOURCE = Path(__file__).parent / "pypi_standin" / "python_standin.c"


@pytest.fixture(scope="module")
def python_exe() -> Path:
    reason = winemod.mingw_missing()
    if reason:
        pytest.skip(reason)
    out = Path(tempfile.mkdtemp(prefix="envpack-pypi-standin-"))
    exe = out / "python.exe"
    proc = subprocess.run(
        [winemod.MINGW_GCC, "-O2", "-municode", "-static", "-Wall", "-o", str(exe), str(SOURCE)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    yield exe  # type: ignore[misc]
    shutil.rmtree(out, ignore_errors=True)


def _layout(tmp_path: Path, python_exe: Path) -> tuple[Path, Path, Path]:
    prefix = tmp_path / "env"
    prefix.mkdir()
    shutil.copy(python_exe, prefix / "python.exe")
    bundle = tmp_path / "bundle"
    (bundle / "wheels").mkdir(parents=True)
    shutil.copy(STEP, bundle / "pip-step.bat")
    (bundle / "wheels.txt").write_bytes(b"alpha==1.1 --hash=sha256:" + b"a" * 64 + b"\r\n")
    return prefix, bundle, tmp_path / "setup.log"


def _run(tmp_path: Path, prefix: Path, bundle: Path, log: Path, code: int = 0):  # type: ignore[no-untyped-def]
    w = winemod.get_wine()
    record = tmp_path / "record.txt"
    env = {
        "STANDIN_PY_RECORD": winemod.win_path(record),
        "STANDIN_PY_EXIT": str(code),
        "PIP_INDEX_URL": "http://user:pw@example.invalid/simple",
        "PIP_USER": "1",
        "PIP_REQUIRE_VIRTUALENV": "1",
        "PYTHONPATH": "C:\\elsewhere",
    }
    result = w.run_bat(
        bundle / "pip-step.bat",
        [winemod.win_path(prefix), winemod.win_path(bundle) + "\\", winemod.win_path(log)],
        env=env,
    )
    lines = record.read_text().splitlines() if record.exists() else []
    return result, lines


def test_pip_step_installs_offline_hash_checked_isolated(tmp_path: Path, python_exe: Path) -> None:
    prefix, bundle, log = _layout(tmp_path, python_exe)
    result, lines = _run(tmp_path, prefix, bundle, log)
    assert result.rc == 0, result.out
    args = [ln[4:] for ln in lines if ln.startswith("arg=")]
    assert args == [
        "-s", "-m", "pip", "install", "--no-index", "--no-deps", "--require-hashes",
        "--no-cache-dir", "--isolated", "--disable-pip-version-check",
        "--no-warn-script-location", "--find-links", winemod.win_path(bundle / "wheels"),
        "-r", winemod.win_path(bundle / "wheels.txt"),
    ]  # fmt: skip
    env = sorted(ln[4:] for ln in lines if ln.startswith("env="))
    assert env == ["PIP_CONFIG_FILE=NUL", "PYTHONNOUSERSITE=1"]
    text = log.read_text(encoding="latin-1")
    assert "pip: installing the bundle's wheels" in text
    assert "standin pip output" in text
    assert "pip: done" in text


def test_pip_failure_exits_14_and_is_logged(tmp_path: Path, python_exe: Path) -> None:
    prefix, bundle, log = _layout(tmp_path, python_exe)
    result, _ = _run(tmp_path, prefix, bundle, log, code=1)
    assert result.rc == 14
    assert "installing the Python wheels failed" in result.out
    assert "pip: installing the wheels failed" in log.read_text(encoding="latin-1")


def test_no_wheels_txt_does_nothing(tmp_path: Path, python_exe: Path) -> None:
    prefix, bundle, log = _layout(tmp_path, python_exe)
    (bundle / "wheels.txt").unlink()
    result, lines = _run(tmp_path, prefix, bundle, log)
    assert result.rc == 0
    assert lines == []


def test_missing_python_exits_14(tmp_path: Path, python_exe: Path) -> None:
    prefix, bundle, log = _layout(tmp_path, python_exe)
    (prefix / "python.exe").unlink()
    result, _ = _run(tmp_path, prefix, bundle, log)
    assert result.rc == 14
    assert "no python.exe" in result.out
