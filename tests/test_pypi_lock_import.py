"""build --from-lock's importers keep the pip part: a conda-lock's ``manager: pip`` packages and
a pixi.lock's ``pypi:`` packages become the platform lock's wheels (no download: the loaded
lock is asserted on)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import yaml

from envpack.errors import LockError
from envpack.lock.importers import load_lock_file
from pypi_built import build_wheel_bundle
from pypi_index import IndexServer, standard_dists, write_index

from conftest import run_cli

SHA_A = "a" * 64
SHA_B = "b" * 64
SHA_C = "c" * 64


def test_conda_lock_pip_packages_become_wheels(shared_data: Path) -> None:
    lock = load_lock_file(shared_data / "locks" / "conda-lock-gh155-py39.yml", "win-64")
    pl = lock.platforms["win-64"]
    by_name = {w.name: w for w in pl.pypi}
    assert sorted(by_name) == [
        "cycler",
        "fonttools",
        "kiwisolver",
        "matplotlib",
        "numpy",
        "packaging",
        "pillow",
        "pyparsing",
        "python-dateutil",
        "setuptools-scm",
        "six",
        "tomli",
    ]
    kiwi = by_name["kiwisolver"]
    assert (kiwi.version, kiwi.filename) == ("1.3.2", "kiwisolver-1.3.2-cp39-cp39-win_amd64.whl")
    assert kiwi.sha256 == "eedd3b59190885d1ebdf6c5e0ca56828beb1949b4dfe6e5d0256a461429ac386"
    assert by_name["six"].sha256 == (
        "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"
    )
    assert by_name["matplotlib"].version == "3.5.1"
    assert by_name["pillow"].filename == "Pillow-9.0.1-cp39-cp39-win_amd64.whl"
    assert not any("pip:" in s for s in lock.extra["skipped"])
    # The conda part is as before: python is a conda package, not a wheel.
    assert "python" in {r.name for r in pl.packages}


def _conda_lock(tmp_path: Path, pip_url: str, sha: str | None = SHA_A) -> Path:
    hash_line = f"    sha256: {sha}\n" if sha else "    md5: ''\n"
    path = tmp_path / "conda-lock.yml"
    path.write_text(
        "version: 1\nmetadata:\n  channels: [{url: conda-forge, used_env_vars: []}]\n"
        "  platforms: [win-64]\n  content_hash: {win-64: x}\n  sources: [environment.yml]\n"
        "package:\n"
        "- name: python\n  version: 3.9.10\n  manager: conda\n  platform: win-64\n"
        "  dependencies: {}\n"
        "  url: https://conda.example.invalid/conda-forge/win-64/python-3.9.10-h0.conda\n"
        f"  hash:\n    sha256: {SHA_C}\n  category: main\n  optional: false\n"
        "- name: Alpha\n  version: '1.1'\n  manager: pip\n  platform: win-64\n"
        f"  dependencies: {{}}\n  url: {pip_url}\n  hash:\n{hash_line}"
        "  category: main\n  optional: false\n",
        encoding="utf-8",
    )
    return path


def test_conda_lock_pip_wheel_and_refusals(tmp_path: Path) -> None:
    url = "https://user:pw@files.example.invalid/p/Alpha-1.1-cp39-cp39-win_amd64.whl"
    lock = load_lock_file(_conda_lock(tmp_path, url), "win-64")
    [wheel] = lock.platforms["win-64"].pypi
    assert (wheel.name, wheel.version, wheel.sha256) == ("alpha", "1.1", SHA_A)
    assert wheel.url == "https://files.example.invalid/p/Alpha-1.1-cp39-cp39-win_amd64.whl"
    sdist = "https://files.example.invalid/p/alpha-1.1.tar.gz"
    with pytest.raises(LockError, match=r"pip package 'Alpha' is not a wheel \(alpha-1\.1\.tar"):
        load_lock_file(_conda_lock(tmp_path, sdist), "win-64")
    with pytest.raises(LockError, match=r"pip package 'Alpha' has no sha256"):
        load_lock_file(_conda_lock(tmp_path, url, sha=None), "win-64")


PIXI = f"""\
version: 6
environments:
  default:
    channels:
    - url: https://conda.example.invalid/conda-forge/
    indexes:
    - https://index.example.invalid/simple
    packages:
      win-64:
      - conda: https://conda.example.invalid/conda-forge/win-64/python-3.9.10-h0_cp39.conda
      - pypi: https://files.example.invalid/packages/Alpha-1.1-cp39-cp39-win_amd64.whl
      - pypi: https://files.example.invalid/packages/beta-1.2-py3-none-any.whl
packages:
- conda: https://conda.example.invalid/conda-forge/win-64/python-3.9.10-h0_cp39.conda
  sha256: {SHA_C}
  md5: {"d" * 32}
  depends: []
  size: 100
  subdir: win-64
  timestamp: 1700000000000
- pypi: https://files.example.invalid/packages/Alpha-1.1-cp39-cp39-win_amd64.whl
  name: Alpha
  version: '1.1'
  sha256: {SHA_A}
  requires_dist:
  - beta>=1
  requires_python: '>=3.9'
- pypi: https://files.example.invalid/packages/beta-1.2-py3-none-any.whl
  name: beta
  version: '1.2'
  sha256: {SHA_B}
"""


def test_pixi_pypi_packages_become_wheels(tmp_path: Path) -> None:
    pytest.importorskip("rattler")
    path = tmp_path / "pixi.lock"
    path.write_text(PIXI, encoding="utf-8")
    lock = load_lock_file(path, "win-64")
    pl = lock.platforms["win-64"]
    assert [(w.name, w.version, w.filename, w.sha256) for w in pl.pypi] == [
        ("alpha", "1.1", "Alpha-1.1-cp39-cp39-win_amd64.whl", SHA_A),
        ("beta", "1.2", "beta-1.2-py3-none-any.whl", SHA_B),
    ]
    assert [r.name for r in pl.packages] == ["python"]
    assert lock.extra["skipped"] == []


def test_build_from_conda_lock_with_pip_packages(tmp_path: Path, cache_dir: Path) -> None:
    """A conda-lock written from a real build's lock (conda packages from the test channel,
    wheels from a 127.0.0.1 index): the bundle built from it holds the wheels."""
    pytest.importorskip("uv")
    with IndexServer(write_index(tmp_path / "index", standard_dists())) as index:
        build_wheel_bundle(tmp_path, index)
        ours = yaml.safe_load((tmp_path / "environment.lock.yaml").read_text())
        body = ours["platforms"]["win-64"]
        package = [
            {
                "name": r["name"],
                "version": r["version"],
                "manager": "conda",
                "platform": "win-64",
                "dependencies": {},
                "url": r["url"],
                "hash": {"sha256": r["sha256"], "md5": r["md5"]},
                "category": "main",
                "optional": False,
            }
            for r in body["packages"]
        ] + [
            {
                "name": w["name"],
                "version": w["version"],
                "manager": "pip",
                "platform": "win-64",
                "dependencies": {},
                "url": w["url"],
                "hash": {"sha256": w["sha256"]},
                "category": "main",
                "optional": False,
            }
            for w in body["pypi"]
        ]
        conda_lock = tmp_path / "conda-lock.yml"
        conda_lock.write_text(
            yaml.safe_dump(
                {
                    "version": 1,
                    "metadata": {
                        "channels": [
                            {"url": c, "used_env_vars": []} for c in ours["recipe"]["channels"]
                        ],
                        "platforms": ["win-64"],
                        "content_hash": {"win-64": "x"},
                        "sources": ["environment.yml"],
                    },
                    "package": package,
                }
            )
        )
        out = tmp_path / "from-lock"
        result = run_cli("build", str(conda_lock), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "skipped pip" not in result.output
    [bundle] = out.glob("*.zip")
    with zipfile.ZipFile(bundle) as zf:
        names = set(zf.namelist())
        txt = zf.read(f"{bundle.stem.rsplit('-win-64', 1)[0]}/wheels.txt").decode()
    assert any(n.endswith("/wheels/alpha-1.1-cp39-cp39-win_amd64.whl") for n in names)
    assert any(n.endswith("/pip-step.bat") for n in names)
    assert [line.split(" ")[0] for line in txt.splitlines()] == [
        "alpha==1.1",
        "beta==1.2",
        "gamma==0.5",
    ]
