"""Sources without a wheel for the target: built here when pure Python, refused by name when
they need a compiler (an sdist the resolve chose, -e ., a local path)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from envpack.errors import SolveError
from envpack.pypi.requirements import parse_pip_list
from envpack.pypi.resolve import resolve
from envpack.pypi.sdist import build_pure_wheel, local_record
from envpack.pypi.target import Target
from pypi_index import Dist, IndexServer, backend_project, sdist_bytes, write_index

pytest.importorskip("uv")


def test_pure_local_project_builds_a_wheel(tmp_path: Path) -> None:
    backend_project(tmp_path / "proj", "delta", "0.3")
    wheel = build_pure_wheel("proj", tmp_path, tmp_path / "out", "win-64")
    assert wheel.name == "delta-0.3-py3-none-any.whl"
    record = local_record(wheel)
    assert (record.name, record.version, record.size) == ("delta", "0.3", wheel.stat().st_size)
    assert record.url.startswith("file:///")


def test_compiled_project_is_refused_naming_it(tmp_path: Path) -> None:
    backend_project(tmp_path / "proj", "fastdelta", "0.3", compiled=True)
    with pytest.raises(
        SolveError,
        match=r"pip: fastdelta has no wheel for win-64 .* built "
        r"fastdelta-0.3-cp311-cp311-linux_x86_64.whl.*conda package",
    ):
        build_pure_wheel("proj", tmp_path, tmp_path / "out", "win-64")
    assert not (tmp_path / "out").exists()


def test_a_source_that_does_not_build_is_refused(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "nosuchbackend"\nbackend-path = ["."]\n'
    )
    with pytest.raises(SolveError, match=r"pip: broken has no wheel for win-64 .*build failed"):
        build_pure_wheel("broken", tmp_path, tmp_path / "out", "win-64")


@pytest.fixture
def sdist_index(tmp_path: Path) -> Iterator[IndexServer]:
    root = write_index(
        tmp_path / "index",
        [Dist("alpha", "1.0", requires=("epsilon", "zeta"))],
        {"epsilon-1.0.tar.gz": sdist_bytes("epsilon", "1.0"),
         "zeta-2.0.tar.gz": sdist_bytes("zeta", "2.0", compiled=True)},
    )  # fmt: skip
    with IndexServer(root) as srv:
        yield srv


def test_resolve_reports_sdists_and_they_build_or_are_refused(
    sdist_index: IndexServer, tmp_path: Path
) -> None:
    pip = parse_pip_list([f"--index-url {sdist_index.url}/simple", "alpha"], tmp_path / "e.yml")
    result = resolve(pip, Target("win-64", "3.9"), {"python": "3.9.10"}, tmp_path / "w")
    assert [w.filename for w in result.wheels] == ["alpha-1.0-py3-none-any.whl"]
    assert [(n, v) for n, v, _, _ in result.sdists] == [("epsilon", "1.0"), ("zeta", "2.0")]
    files = tmp_path / "index" / "files"
    built = build_pure_wheel(str(files / "epsilon-1.0.tar.gz"), tmp_path, tmp_path / "o", "win-64")
    assert built.name == "epsilon-1.0-py3-none-any.whl"
    with pytest.raises(SolveError, match=r"pip: zeta has no wheel for win-64"):
        build_pure_wheel(str(files / "zeta-2.0.tar.gz"), tmp_path, tmp_path / "o", "win-64")
