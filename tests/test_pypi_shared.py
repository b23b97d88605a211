"""The real data in ../shared: conda-forge's python 3.9 win-64 tree gives the Python version uv
targets; the shared conda-lock's 12 pip packages import as wheel records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from envpack.channels import resolve_channel
from envpack.errors import LockError
from envpack.lock.pip_entries import conda_lock_wheels
from envpack.platforms import virtual_packages
from envpack.pypi.envfile import read_env_file
from envpack.pypi.requirements import parse_pip_list
from envpack.pypi.resolve import resolve
from envpack.pypi.target import Target, python_version_of
from envpack.resolve.rattler_backend import RattlerSolver
from envpack.resolve.solver import SolveRequest
from pypi_index import IndexServer, standard_dists, write_index

LOCK = "conda-lock-gh155-py39.yml"


@pytest.fixture
def index(tmp_path: Path) -> Iterator[IndexServer]:
    pytest.importorskip("uv")
    with IndexServer(write_index(tmp_path / "index", standard_dists())) as srv:
        yield srv


def test_conda_solve_gives_the_python_uv_targets(
    shared_data: Path, index: IndexServer, tmp_path: Path
) -> None:
    env_path = tmp_path / "environment.yml"
    env = read_env_file(
        {
            "channels": ["conda-forge"],
            "dependencies": ["python=3.9", {"pip": [f"--index-url {index.url}/simple", "alpha"]}],
        },
        env_path,
    )
    assert env.conda_specs == ["python 3.9.*", "pip"]
    channel = resolve_channel(str(shared_data / "conda-forge-py39-subset"), shared_data)
    records = RattlerSolver().solve(
        SolveRequest(
            channels=[channel],
            specs=env.conda_specs,
            platform="win-64",
            virtual_packages=virtual_packages("win-64", {}),
        )
    )
    python = python_version_of(records)
    assert python == "3.9"
    conda = {r.name: r.version for r in records}
    assert {"pip", "setuptools", "wheel"} <= set(conda)
    result = resolve(
        parse_pip_list(env.pip_lines, env_path), Target("win-64", python), conda, tmp_path / "w"
    )
    assert [w.filename for w in result.wheels] == [
        "alpha-1.1-cp39-cp39-win_amd64.whl",
        "beta-1.2-py3-none-any.whl",
        "gamma-0.5-py3-none-any.whl",
    ]


def test_conda_lock_pip_packages_import_as_wheels(shared_data: Path) -> None:
    path = shared_data / "locks" / LOCK
    data = yaml.safe_load(path.read_text())
    wheels = conda_lock_wheels(data, "win-64", path)
    assert [(w.name, w.version, w.filename) for w in wheels] == [
        ("cycler", "0.11.0", "cycler-0.11.0-py3-none-any.whl"),
        ("fonttools", "4.29.1", "fonttools-4.29.1-py3-none-any.whl"),
        ("kiwisolver", "1.3.2", "kiwisolver-1.3.2-cp39-cp39-win_amd64.whl"),
        ("matplotlib", "3.5.1", "matplotlib-3.5.1-cp39-cp39-win_amd64.whl"),
        ("numpy", "1.22.2", "numpy-1.22.2-cp39-cp39-win_amd64.whl"),
        ("packaging", "21.3", "packaging-21.3-py3-none-any.whl"),
        ("pillow", "9.0.1", "Pillow-9.0.1-cp39-cp39-win_amd64.whl"),
        ("pyparsing", "3.0.7", "pyparsing-3.0.7-py3-none-any.whl"),
        ("python-dateutil", "2.8.2", "python_dateutil-2.8.2-py2.py3-none-any.whl"),
        ("setuptools-scm", "6.4.2", "setuptools_scm-6.4.2-py3-none-any.whl"),
        ("six", "1.16.0", "six-1.16.0-py2.py3-none-any.whl"),
        ("tomli", "2.0.1", "tomli-2.0.1-py3-none-any.whl"),
    ]
    assert wheels[0].sha256.startswith("3a27e95f763a")
    assert all(w.url.endswith("/" + w.filename) and "@" not in w.url for w in wheels)
    # every one is installable on win-64 with Python 3.9: its tags are in the target's list
    target = {str(t) for t in Target("win-64", "3.9").tags()}
    assert all(w.tags & target for w in wheels)


def test_conda_lock_sdist_is_refused_naming_it(shared_data: Path) -> None:
    path = shared_data / "locks" / LOCK
    data = yaml.safe_load(path.read_text())
    with pytest.raises(LockError, match=r"pip package 'numpy' is not a wheel \(numpy-1.22.2.zip\)"):
        conda_lock_wheels(data, "osx-64", path)
