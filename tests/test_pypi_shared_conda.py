"""The conda side from real conda-forge metadata (../shared, the python 3.9 win-64 tree) with a
pip: section: the records the metadata solves to become real .conda/.tar.bz2 files (same name,
version, build, build number and depends; tiny generated payloads, as bench/make_channel.py
makes them), served on 127.0.0.1 beside the tests' PyPI index, and ``envpack build`` of
``python=3.9`` plus ``pip:`` ships that tree and the win_amd64/cp39 wheels."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from envpack.channels import resolve_channel
from envpack.lock.record import LockedPackage
from envpack.platforms import virtual_packages
from envpack.resolve.rattler_backend import RattlerSolver
from envpack.resolve.solver import SolveRequest
from pypi_index import IndexServer, standard_dists, write_index

from channel_factory import SHARED_DATA, Pkg, make_channel
from conftest import run_cli
from http_server import ChannelServer

SUBSET = SHARED_DATA / "conda-forge-py39-subset"
# What conda-forge's metadata solves python=3.9 + pip to on win-64 (written out, not computed:
# the served channel's solve must arrive at the same tree).
TREE = {
    "bzip2": "1.0.8",
    "ca-certificates": "2024.2.2",
    "libffi": "3.4.2",
    "libsqlite": "3.45.3",
    "libzlib": "1.2.13",
    "openssl": "3.3.0",
    "pip": "24.0",
    "python": "3.9.19",
    "setuptools": "69.5.1",
    "tk": "8.6.13",
    "tzdata": "2024a",
    "ucrt": "10.0.22621.0",
    "vc": "14.3",
    "vc14_runtime": "14.38.33130",
    "vs2015_runtime": "14.38.33130",
    "wheel": "0.43.0",
    "xz": "5.2.6",
}


@pytest.fixture(scope="module")
def metadata_tree() -> list[LockedPackage]:
    if not SUBSET.is_dir():
        pytest.skip(f"shared conda-forge metadata not found at {SUBSET} (only in the project's CI)")
    channel = resolve_channel(str(SUBSET), SHARED_DATA)
    return RattlerSolver().solve(
        SolveRequest(
            channels=[channel],
            specs=["python 3.9.*", "pip"],
            platform="win-64",
            virtual_packages=virtual_packages("win-64", {}),
        )
    )


def _pkg(r: Mapping[str, Any]) -> Pkg:
    """A package to generate with the record's name, version, build, build number, subdir,
    depends, timestamp and archive format."""
    return Pkg(
        str(r["name"]),
        str(r["version"]),
        str(r["build"]),
        build_number=int(r["build_number"]),
        subdir=str(r["subdir"]),
        depends=list(r["depends"]),
        fmt=".tar.bz2" if str(r["fn"]).endswith(".tar.bz2") else ".conda",
        timestamp=int(r.get("timestamp") or 1700000000000),
    )


@pytest.fixture(scope="module")
def served_tree(
    metadata_tree: list[LockedPackage], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    fields = ("name", "version", "build", "build_number", "subdir", "fn", "depends", "timestamp")
    pkgs = [_pkg({f: getattr(r, f) for f in fields}) for r in metadata_tree]
    channel = make_channel(tmp_path_factory.mktemp("shared-tree") / "conda-forge", pkgs)
    with ChannelServer(channel) as server:
        yield server.url


def test_the_metadata_solves_to_the_tree(metadata_tree: list[LockedPackage]) -> None:
    assert {r.name: r.version for r in metadata_tree} == TREE


def test_build_python39_tree_and_wheels(served_tree: str, tmp_path: Path, cache_dir: Path) -> None:
    pytest.importorskip("uv")
    exe = tmp_path / "micromamba.exe"
    exe.write_bytes(b"MZ stand-in micromamba")
    out = tmp_path / "out"
    with IndexServer(write_index(tmp_path / "index", standard_dists())) as index:
        env = tmp_path / "environment.yml"
        env.write_text(
            f"name: shared39\nchannels:\n  - {served_tree}\ndependencies:\n  - python=3.9\n"
            f"  - pip:\n    - --index-url {index.url}/simple\n    - alpha\n",
            encoding="utf-8",
        )
        result = run_cli("build", str(env), "-o", str(out), "--micromamba-exe", str(exe))
    assert result.exit_code == 0, result.output
    [bundle] = out.glob("*.zip")
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
        manifest = json.loads(zf.read("shared39/envpack.json"))
    packages = sorted(
        n.rsplit("/", 1)[1] for n in names if "/channel/" in n and not n.endswith("/repodata.json")
    )
    wheels = sorted(n.rsplit("/", 1)[1] for n in names if "/wheels/" in n)
    assert packages == [
        "bzip2-1.0.8-hcfcfb64_5.conda",
        "ca-certificates-2024.2.2-h56e8100_0.conda",
        "libffi-3.4.2-h8ffe710_5.tar.bz2",
        "libsqlite-3.45.3-hcfcfb64_0.conda",
        "libzlib-1.2.13-hcfcfb64_5.conda",
        "openssl-3.3.0-hcfcfb64_0.conda",
        "pip-24.0-pyhd8ed1ab_0.conda",
        "python-3.9.19-h4de0772_0_cpython.conda",
        "setuptools-69.5.1-pyhd8ed1ab_0.conda",
        "tk-8.6.13-h5226925_1.conda",
        "tzdata-2024a-h0c530f3_0.conda",
        "ucrt-10.0.22621.0-h57928b3_0.tar.bz2",
        "vc-14.3-hcf57466_18.conda",
        "vc14_runtime-14.38.33130-h82b7239_18.conda",
        "vs2015_runtime-14.38.33130-hcb4865c_18.conda",
        "wheel-0.43.0-pyhd8ed1ab_1.conda",
        "xz-5.2.6-h8d14728_0.tar.bz2",
    ]
    # The win_amd64/cp39 set: alpha's cp39 wheel (not manylinux, not cp310, not the 2.0 that
    # needs Python 3.10), its chain beta -> gamma as pure wheels.
    assert wheels == [
        "alpha-1.1-cp39-cp39-win_amd64.whl",
        "beta-1.2-py3-none-any.whl",
        "gamma-0.5-py3-none-any.whl",
    ]
    assert manifest["platform"] == "win-64"
