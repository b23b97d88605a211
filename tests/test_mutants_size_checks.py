"""Sizes are checked on their own, not only through the hashes (mutants dl-size and
verify-file-size in tests/README.md survived the first mutation run).

A lock whose size disagrees with a cached file that its sha256 and md5 do match is inconsistent:
the cache hit is refused, naming the size. ``envpack verify`` names a file whose size changed as
a size problem, not only as a changed sha256.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from envpack.errors import ChecksumError
from envpack.fetch.download import Fetcher, FetchOptions
from envpack.lock.record import LockedPackage
from locked_records import record_for

from channel_factory import Pkg, build_package
from conftest import run_cli, write_recipe
from http_server import ChannelServer


def record(path: Path, url: str, size: int) -> LockedPackage:
    return record_for(path, url, name="sized", size=size)


@pytest.mark.parametrize("delta", [1, -1])
def test_cache_hit_with_another_size_is_refused(tmp_path: Path, delta: int) -> None:
    pkg = build_package(Pkg("sized", random_bytes=50_000), tmp_path / "srv" / "win-64")
    size = len(pkg.read_bytes())
    with ChannelServer(tmp_path / "srv") as server:
        url = f"{server.url}/win-64/{pkg.name}"
        cached = Fetcher(FetchOptions(cache_dir=tmp_path / "cache"), sleep=lambda s: None)
        assert cached.fetch(record(pkg, url, size)).read_bytes() == pkg.read_bytes()
        again = Fetcher(FetchOptions(cache_dir=tmp_path / "cache"), sleep=lambda s: None)
        with pytest.raises(ChecksumError) as err:
            again.fetch(record(pkg, url, size + delta))
    message = str(err.value)
    assert pkg.name in message
    assert f"size {size + delta}" in message and f"size {size}" in message, message


def test_verify_names_a_file_whose_size_changed(
    std_channel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVPACK_CACHE_DIR", str(tmp_path / "cache"))
    with ChannelServer(std_channel) as server:
        recipe = write_recipe(tmp_path / "demo.yaml", [server.url], ["tool", "docs"])
        assert run_cli("build", recipe, "-o", tmp_path / "dist", "--no-sfx").exit_code == 0
    good = tmp_path / "dist" / "demo-win-64.zip"
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "demo/README.txt":
                readme = len(data)
                data += b"one line more\n"
            dst.writestr(info, data)
    shutil.rmtree(tmp_path / "cache")
    result = run_cli("verify", bad)
    assert result.exit_code != 0, result.output
    assert f"README.txt: {readme + 14} bytes, the manifest says {readme}" in result.output
