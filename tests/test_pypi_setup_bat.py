"""setup.bat with the pip step, end to end under wine: a bundle with wheels (a 127.0.0.1 index)
whose micromamba.exe is the micromamba stand-in behind mamba_python_standin.exe (which then puts
the python.exe stand-in into the prefix, as installing python would); the stand-in python must
get pip's offline, hash-checked command line, and its failure must end setup.bat with 14."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import wine as winemod
from pypi_built import build_wheel_bundle
from pypi_index import IndexServer, standard_dists, write_index

pytestmark = pytest.mark.wine
pytest.importorskip("uv")

STANDINS = Path(__file__).parent / "pypi_standin"


def _compile(source: str, name: str, out: Path) -> Path:
    exe = out / name
    proc = subprocess.run(
        [winemod.MINGW_GCC, "-O2", "-municode", "-static", "-Wall", "-o", str(exe),
         str(STANDINS / source)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return exe


@pytest.fixture(scope="module")
def exes() -> Iterator[tuple[Path, Path]]:
    """(micromamba.exe wrapper, python.exe stand-in)."""
    reason = winemod.wine_missing() or winemod.mingw_missing()
    if reason:
        pytest.skip(reason)
    out = Path(tempfile.mkdtemp(prefix="envpack-pypi-setup-"))
    yield (
        _compile("mamba_python_standin.c", "micromamba.exe", out),
        _compile("python_standin.c", "python.exe", out),
    )
    shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="module")
def wine() -> Iterator[winemod.Wine]:
    reason = winemod.wine_missing()
    if reason:
        pytest.skip(reason)
    yield winemod.get_wine()
    winemod.shutdown()


@pytest.fixture
def bundle(tmp_path: Path, cache_dir: Path, exes: tuple[Path, Path]) -> Path:
    with IndexServer(write_index(tmp_path / "index", standard_dists())) as index:
        zipped = build_wheel_bundle(
            tmp_path / "build", index, extra_args=("--micromamba-exe", str(exes[0]))
        )
    with zipfile.ZipFile(zipped) as zf:
        zf.extractall(tmp_path / "unpacked")
    return tmp_path / "unpacked" / "pipenv"


def _setup(
    wine: winemod.Wine, bundle: Path, tmp_path: Path, exes: tuple[Path, Path], code: int
) -> tuple[winemod.Result, Path, list[str]]:
    prefix = tmp_path / "target" / "py env"
    prefix.parent.mkdir(parents=True)
    record = tmp_path / "python-record.txt"
    env = {
        "PYPI_MAMBA_STANDIN": winemod.win_path(winemod.micromamba_standin()),
        "PYPI_PYTHON_STANDIN": winemod.win_path(exes[1]),
        "STANDIN_RECORD": winemod.win_path(tmp_path / "mamba-record.jsonl"),
        "STANDIN_PY_RECORD": winemod.win_path(record),
        "STANDIN_PY_EXIT": str(code),
    }
    result = wine.run_bat(
        bundle / "setup.bat", [winemod.win_path(prefix), "/S"], cwd=tmp_path, env=env, timeout=300
    )
    lines = record.read_text().splitlines() if record.exists() else []
    return result, prefix, lines


def test_setup_bat_installs_the_wheels(
    wine: winemod.Wine, bundle: Path, tmp_path: Path, exes: tuple[Path, Path]
) -> None:
    result, prefix, lines = _setup(wine, bundle, tmp_path, exes, 0)
    assert result.rc == 0, result.out
    assert (prefix / "python.exe").is_file()
    assert (prefix / "conda-meta" / "python-3.9.10-h0_cp39.json").is_file()
    args = [ln[4:] for ln in lines if ln.startswith("arg=")]
    assert args[:7] == [
        "-s", "-m", "pip", "install", "--no-index", "--no-deps", "--require-hashes",
    ]  # fmt: skip
    assert args[-2:] == ["-r", winemod.win_path(bundle / "wheels.txt")]
    assert winemod.win_path(bundle / "wheels") in args


def test_setup_bat_pip_failure_exits_14(
    wine: winemod.Wine, bundle: Path, tmp_path: Path, exes: tuple[Path, Path]
) -> None:
    result, _, lines = _setup(wine, bundle, tmp_path, exes, 1)
    assert result.rc == 14, result.out
    assert any(ln.startswith("arg=") for ln in lines)
    assert "installing the Python wheels failed" in result.out
