"""lock_pip end to end: -e . and a resolved sdist built here, dependencies resolved, every wheel
fetched into the cache; the bundle members, SBOM components and verify's wheel check."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from envpack.errors import RecipeError, SolveError
from envpack.fetch.download import FetchOptions
from envpack.lock.record import LockedPackage
from envpack.pypi.bundle import sbom_components, wheel_members, wheel_problems
from envpack.pypi.plan import PipLock, lock_pip
from pypi_index import Dist, IndexServer, backend_project, sdist_bytes, standard_dists, write_index

pytest.importorskip("uv")


def _python(version: str = "3.9.10") -> LockedPackage:
    return LockedPackage(
        name="python", version=version, build="h0", build_number=0, subdir="win-64",
        fn=f"python-{version}-h0.conda", url=f"https://example.invalid/win-64/python-{version}-h0.conda",
        channel="https://example.invalid", sha256="1" * 64, md5="2" * 32, size=1,
    )  # fmt: skip


@pytest.fixture
def index(tmp_path: Path) -> Iterator[IndexServer]:
    root = write_index(
        tmp_path / "index",
        [*standard_dists(), Dist("omega", "1.0", requires=("epsilon",))],
        {"epsilon-1.0.tar.gz": sdist_bytes("epsilon", "1.0")},
    )
    with IndexServer(root) as srv:
        yield srv


def test_lock_pip_builds_resolves_and_fetches(index: IndexServer, tmp_path: Path) -> None:
    project = backend_project(tmp_path / "proj", "mytool", "0.1")
    env = project / "environment.yml"
    lines = [f"--index-url {index.url}/simple", "-e .", "alpha", "omega"]
    lock, paths = lock_pip(lines, env, "win-64", [_python()], FetchOptions(tmp_path / "cache"),
                           tmp_path / "work")  # fmt: skip
    assert [w.filename for w in lock.wheels] == [
        "alpha-1.1-cp39-cp39-win_amd64.whl",
        "beta-1.2-py3-none-any.whl",
        "epsilon-1.0-py3-none-any.whl",
        "gamma-0.5-py3-none-any.whl",
        "mytool-0.1-py3-none-any.whl",
        "omega-1.0-py3-none-any.whl",
    ]
    for w in lock.wheels:
        data = paths[w].read_bytes()
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (w.sha256, w.size)
        assert str(paths[w]).startswith(str(tmp_path / "cache"))
    assert lock.wheels[4].url.startswith("file:///")
    # the lock's pypi list reads back to the same records
    assert PipLock.from_list(lock.to_list(), "lock").wheels == lock.wheels

    # bundle members, SBOM, verify
    members = wheel_members(list(lock.wheels), paths)
    assert [m for m, _ in members][-1] == "wheels.txt"
    txt = members[-1][1]
    assert isinstance(txt, bytes) and txt.startswith(b"alpha==1.1 --hash=sha256:")
    assert sbom_components(list(lock.wheels))[0]["purl"] == (
        "pkg:pypi/alpha@1.1?file_name=alpha-1.1-cp39-cp39-win_amd64.whl"
    )
    bundle = tmp_path / "bundle"
    (bundle / "wheels").mkdir(parents=True)
    for arc, src in members:
        dest = bundle / arc
        if isinstance(src, bytes):
            dest.write_bytes(src)
        else:
            shutil.copy(src, dest)
    assert wheel_problems(bundle, list(lock.wheels)) == []
    victim = bundle / "wheels" / "beta-1.2-py3-none-any.whl"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    (bundle / "wheels" / "extra-1.0-py3-none-any.whl").write_bytes(b"x")
    assert wheel_problems(bundle, list(lock.wheels)) == [
        "wheels/extra-1.0-py3-none-any.whl: not in the lock",
        "wheels/beta-1.2-py3-none-any.whl: sha256 differs from the lock",
    ]


def test_lock_pip_needs_python_and_refuses_compiled_projects(
    index: IndexServer, tmp_path: Path
) -> None:
    project = backend_project(tmp_path / "proj", "fast", "0.1", compiled=True)
    env = project / "environment.yml"
    with pytest.raises(RecipeError, match=r"pip: entries need python"):
        lock_pip(["six"], env, "win-64", [], FetchOptions(tmp_path / "c"), tmp_path / "w")
    with pytest.raises(SolveError, match=r"pip: fast has no wheel for win-64"):
        lock_pip([f"--index-url {index.url}/simple", "-e ."], env, "win-64", [_python()],
                 FetchOptions(tmp_path / "c"), tmp_path / "w")  # fmt: skip
