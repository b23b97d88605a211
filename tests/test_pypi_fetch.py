"""Wheels through envpack's fetcher: cached, hash-checked, offline from the cache; a target with
no wheel is one clear line."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from envpack.errors import ChecksumError, SolveError
from envpack.fetch.download import FetchOptions
from envpack.lock.wheel import WheelRecord
from envpack.pypi.fetch import fetch_wheels
from envpack.pypi.requirements import parse_pip_list
from envpack.pypi.resolve import resolve
from envpack.pypi.target import Target
from pypi_index import Dist, IndexServer, standard_dists, write_index

pytest.importorskip("uv")


@pytest.fixture
def index(tmp_path: Path) -> Iterator[IndexServer]:
    root = write_index(
        tmp_path / "index",
        [*standard_dists(), Dist("linuxonly", "1.0", "cp39-cp39-manylinux_2_17_x86_64")],
    )
    with IndexServer(root) as srv:
        yield srv


def _wheels(index: IndexServer, tmp_path: Path) -> list[WheelRecord]:
    pip = parse_pip_list([f"--index-url {index.url}/simple", "alpha"], tmp_path / "e.yml")
    return resolve(pip, Target("win-64", "3.9"), {"python": "3.9.10"}, tmp_path / "w").wheels


def test_fetch_completes_records_and_serves_offline_from_cache(
    index: IndexServer, tmp_path: Path
) -> None:
    wheels = _wheels(index, tmp_path)
    cache = tmp_path / "cache"
    first = fetch_wheels(wheels, FetchOptions(cache))
    sizes = {rec.filename: rec.size for rec, _ in first.values()}
    files = tmp_path / "index" / "files"
    assert sizes == {name: (files / name).stat().st_size for name in sizes}
    assert all(rec.requires_python is None for rec, _ in first.values())
    before = len(index.state.requests)
    again = fetch_wheels(wheels, FetchOptions(cache, offline=True))
    assert len(index.state.requests) == before
    assert {p.read_bytes() for _, p in again.values()} == {
        p.read_bytes() for _, p in first.values()
    }


def test_requires_python_is_read_from_the_wheel(index: IndexServer, tmp_path: Path) -> None:
    pip = parse_pip_list([f"--index-url {index.url}/simple", "alpha"], tmp_path / "e.yml")
    newer = resolve(pip, Target("win-64", "3.10"), {"python": "3.10.2"}, tmp_path / "w").wheels
    fetched = fetch_wheels(newer[:1], FetchOptions(tmp_path / "cache"))
    [(record, _)] = fetched.values()
    assert (record.filename, record.requires_python) == ("alpha-2.0-py3-none-any.whl", ">=3.10")


def test_hash_mismatch_is_a_checksum_error_naming_the_wheel(
    index: IndexServer, tmp_path: Path
) -> None:
    wheel = _wheels(index, tmp_path)[0]
    wrong = dataclasses.replace(wheel, sha256="0" * 64)
    with pytest.raises(ChecksumError, match="alpha-1.1-cp39-cp39-win_amd64.whl"):
        fetch_wheels([wrong], FetchOptions(tmp_path / "cache", retries=0))


def test_no_wheel_for_the_target_is_one_line(index: IndexServer, tmp_path: Path) -> None:
    pip = parse_pip_list([f"--index-url {index.url}/simple", "linuxonly"], tmp_path / "e.yml")
    with pytest.raises(SolveError, match=r"e.yml: pip: for win-64, Python 3.9: .*linuxonly"):
        resolve(pip, Target("win-64", "3.9"), {"python": "3.9.10"}, tmp_path / "w")
