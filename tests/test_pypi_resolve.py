"""pip: lists resolved for the target with uv, from a PEP 503 index of generated wheels."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from envpack.errors import DownloadError, RecipeError, SolveError
from envpack.fetch.download import FetchOptions
from envpack.lock.wheel import wheels_txt
from envpack.pypi.fetch import fetch_wheels
from envpack.pypi.requirements import parse_pip_list
from envpack.pypi.resolve import resolve
from envpack.pypi.target import Target
from pypi_index import IndexServer, standard_dists, write_index

pytest.importorskip("uv")

WIN39 = [
    "alpha-1.1-cp39-cp39-win_amd64.whl",
    "beta-1.2-py3-none-any.whl",
    "gamma-0.5-py3-none-any.whl",
]


@pytest.fixture(scope="module")
def index_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_index(tmp_path_factory.mktemp("pypi") / "index", standard_dists())


@pytest.fixture
def index(index_root: Path) -> Iterator[IndexServer]:
    with IndexServer(index_root) as srv:
        yield srv


@pytest.fixture
def private_index(index_root: Path) -> Iterator[IndexServer]:
    with IndexServer(index_root, auth="alice:s3cret-pw") as srv:
        yield srv


def _resolve(
    lines: list[str],
    tmp_path: Path,
    platform: str = "win-64",
    py: str = "3.9",
    conda: dict[str, str] | None = None,
):  # type: ignore[no-untyped-def]
    pip = parse_pip_list(lines, tmp_path / "environment.yml")
    return resolve(pip, Target(platform, py), conda or {"python": f"{py}.10"}, tmp_path / "work")


def test_win64_py39_gets_exactly_the_win_amd64_set(index: IndexServer, tmp_path: Path) -> None:
    result = _resolve([f"--index-url {index.url}/simple", "alpha"], tmp_path)
    assert [w.filename for w in result.wheels] == WIN39
    assert [w.version for w in result.wheels] == ["1.1", "1.2", "0.5"]
    assert all(w.url.startswith(index.url + "/files/") for w in result.wheels)


def test_linux_gets_manylinux_and_py310_gets_the_newer_version(
    index: IndexServer, tmp_path: Path
) -> None:
    linux = _resolve([f"--index-url {index.url}/simple", "alpha"], tmp_path, "linux-64")
    assert [w.filename for w in linux.wheels] == [
        "alpha-1.1-cp39-cp39-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "beta-1.2-py3-none-any.whl",
        "gamma-0.6-cp39-cp39-manylinux_2_17_x86_64.whl",
    ]
    newer = _resolve([f"--index-url {index.url}/simple", "alpha"], tmp_path, py="3.10")
    assert newer.wheels[0].filename == "alpha-2.0-py3-none-any.whl"


def test_markers_and_constraints_files(index: IndexServer, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.txt").write_text("beta<1.2\n")
    (tmp_path / "sub" / "r.txt").write_text("-c c.txt\ngamma ; sys_platform == 'win32'\n")
    result = _resolve(
        [f"--index-url={index.url}/simple", "-r sub/r.txt", "alpha; python_version < '3'"],
        tmp_path,
    )
    # alpha's marker is false for 3.9; beta is not required; gamma only through the -r file
    assert [w.filename for w in result.wheels] == ["gamma-0.5-py3-none-any.whl"]


def test_credentials_never_reach_the_records(private_index: IndexServer, tmp_path: Path) -> None:
    url = private_index.url.replace("http://", "http://alice:s3cret-pw@") + "/simple"
    result = _resolve([f"--index-url {url}", "alpha"], tmp_path)
    assert [w.filename for w in result.wheels] == WIN39
    text = repr(result.wheels) + wheels_txt(result.wheels)
    assert "alice" not in text and "s3cret" not in text
    # and the server did see them (so they were used where they belong)
    assert any(auth for _, auth in private_index.state.requests)

    fetched = fetch_wheels(result.wheels, FetchOptions(tmp_path / "cache"), [url])
    assert sorted(rec.filename for rec, _ in fetched.values()) == WIN39
    assert all("alice" not in rec.url for rec, _ in fetched.values())


def test_conda_first_skips_and_conflicts(index: IndexServer, tmp_path: Path) -> None:
    result = _resolve(
        [f"--index-url {index.url}/simple", "alpha", "beta>=1"],
        tmp_path,
        conda={"python": "3.9.10", "beta": "1.0"},
    )
    # conda's beta stands in for PyPI's, with conda's own dependencies: gamma is not pulled
    assert [w.filename for w in result.wheels] == ["alpha-1.1-cp39-cp39-win_amd64.whl"]
    assert result.skipped == ["beta"]
    with pytest.raises(SolveError, match=r"'beta>=1.1' conflicts with conda's beta 1.0"):
        _resolve(
            [f"--index-url {index.url}/simple", "beta>=1.1"],
            tmp_path,
            conda={"python": "3.9.10", "beta": "1.0"},
        )


def test_unsatisfiable_and_index_down(index: IndexServer, tmp_path: Path) -> None:
    with pytest.raises(SolveError, match="alpha"):
        _resolve([f"--index-url {index.url}/simple", "alpha>=5"], tmp_path)
    with pytest.raises(DownloadError, match="cannot be reached"):
        _resolve(["--index-url http://127.0.0.1:9/simple", "alpha"], tmp_path)


def test_bad_pip_lines_are_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"environment.yml: pip option '--user'"):
        parse_pip_list(["--user"], tmp_path / "environment.yml")
    with pytest.raises(RecipeError, match=r"pip requirement 'alpha>>1' is not valid"):
        parse_pip_list(["alpha>>1"], tmp_path / "environment.yml")
    with pytest.raises(RecipeError, match=r"cannot read .*missing.txt"):
        parse_pip_list(["-r missing.txt"], tmp_path / "environment.yml")
    pip = parse_pip_list(
        ["-e .", "git+https://example.invalid/x.git", "./local", "x @ file:///tmp/x.whl", "--pre"],
        tmp_path / "environment.yml",
    )
    assert pip.direct == [
        ".",
        "git+https://example.invalid/x.git",
        "./local",
        "x @ file:///tmp/x.whl",
    ]
    assert pip.pre is True and pip.requirements == []


def test_the_set_is_installable_for_the_target(index: IndexServer, tmp_path: Path) -> None:
    result = _resolve([f"--index-url {index.url}/simple", "alpha"], tmp_path)
    fetched = fetch_wheels(result.wheels, FetchOptions(tmp_path / "cache"))
    wheels = tmp_path / "bundle" / "wheels"
    wheels.mkdir(parents=True)
    records = []
    for rec, path in fetched.values():
        (wheels / rec.filename).write_bytes(path.read_bytes())
        records.append(rec)
    assert sorted(r.size > 0 for r in records) == [True, True, True]
    (tmp_path / "bundle" / "wheels.txt").write_text(wheels_txt(records))
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--find-links",
         str(wheels), "--platform", "win_amd64", "--python-version", "3.9",
         "--only-binary=:all:", "--target", str(tmp_path / "t"), "--require-hashes",
         "--no-deps", "--isolated", "-r", str(tmp_path / "bundle" / "wheels.txt")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Would install alpha-1.1 beta-1.2 gamma-0.5" in proc.stdout
    # and a linux-only set is not: the same check fails for the manylinux alpha
    linux = _resolve([f"--index-url {index.url}/simple", "alpha"], tmp_path, "linux-64")
    bad = fetch_wheels(linux.wheels[:1], FetchOptions(tmp_path / "cache"))
    other = tmp_path / "linux"
    other.mkdir()
    for rec, path in bad.values():
        (other / rec.filename).write_bytes(path.read_bytes())
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--find-links",
         str(other), "--platform", "win_amd64", "--python-version", "3.9",
         "--only-binary=:all:", "--target", str(tmp_path / "t2"), "--no-deps", "--isolated",
         "alpha==1.1"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
