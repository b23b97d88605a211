"""pixi.lock's pypi: packages as wheel records (a v6 lock written in pixi's shape)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from envpack.errors import LockError
from envpack.lock.pip_entries import pixi_wheels

SHA_A = "a" * 64
SHA_B = "b" * 64
PIXI = f"""\
version: 6
environments:
  default:
    channels:
    - url: https://example.invalid/conda-forge/
    indexes:
    - https://index.example.invalid/simple
    packages:
      win-64:
      - conda: https://example.invalid/conda-forge/win-64/python-3.9.10-h0.conda
      - pypi: https://files.example.invalid/packages/Alpha-1.1-cp39-cp39-win_amd64.whl
      - pypi: https://files.example.invalid/packages/beta-1.2-py3-none-any.whl
      linux-64:
      - pypi: https://files.example.invalid/packages/beta-1.2-py3-none-any.whl
packages:
- conda: https://example.invalid/conda-forge/win-64/python-3.9.10-h0.conda
  sha256: {"c" * 64}
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


def test_pixi_pypi_packages_import(tmp_path: Path) -> None:
    data = yaml.safe_load(PIXI)
    wheels = pixi_wheels(data, "win-64", tmp_path / "pixi.lock")
    assert [(w.name, w.version, w.filename, w.sha256, w.requires_python) for w in wheels] == [
        ("alpha", "1.1", "Alpha-1.1-cp39-cp39-win_amd64.whl", SHA_A, ">=3.9"),
        ("beta", "1.2", "beta-1.2-py3-none-any.whl", SHA_B, None),
    ]
    assert [w.filename for w in pixi_wheels(data, "linux-64", tmp_path)] == [
        "beta-1.2-py3-none-any.whl"
    ]


def test_pixi_sdist_and_missing_hash_are_refused(tmp_path: Path) -> None:
    data = yaml.safe_load(PIXI.replace("beta-1.2-py3-none-any.whl", "beta-1.2.tar.gz"))
    with pytest.raises(LockError, match=r"pixi.lock: pypi package 'beta' is not a wheel"):
        pixi_wheels(data, "win-64", tmp_path / "pixi.lock")
    data = yaml.safe_load(PIXI.replace(f"sha256: {SHA_B}", "sha256: ''"))
    with pytest.raises(LockError, match=r"pypi package 'beta' has no sha256"):
        pixi_wheels(data, "win-64", tmp_path / "pixi.lock")
    with pytest.raises(LockError, match=r"no environment 'dev'"):
        pixi_wheels(yaml.safe_load(PIXI), "win-64", tmp_path / "pixi.lock", "dev")
