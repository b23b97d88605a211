"""A resumed download whose part file is already whole: the server answers 416, and the fetcher
starts again from the beginning instead of failing."""

from __future__ import annotations

import os
from pathlib import Path

from envpack.fetch.download import Fetcher, FetchOptions, cache_path
from envpack.lock.record import LockedPackage
from locked_records import record_for as shared_record_for

from channel_factory import Pkg, build_package
from http_server import ChannelServer


def record_for(path: Path, url: str, **changes: object) -> LockedPackage:
    """A lock record for the package file at ``path`` served at ``url``."""
    return shared_record_for(path, url, **{"name": "whole", **changes})


def test_416_on_a_stale_whole_part_file_restarts(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    pkg = build_package(Pkg("whole", random_bytes=100_000), root / "win-64")
    with ChannelServer(root) as server:
        full = record_for(pkg, f"{server.url}/win-64/{pkg.name}")
        unknown_size = record_for(pkg, full.url, size=0)
        dest = cache_path(tmp_path / "cache", unknown_size)
        dest.parent.mkdir(parents=True)
        part = dest.with_name(f"{dest.name}.{os.getpid()}.part")
        part.write_bytes(pkg.read_bytes())  # left whole by an interrupted earlier attempt
        fetcher = Fetcher(FetchOptions(cache_dir=tmp_path / "cache"), sleep=lambda s: None)
        assert fetcher.fetch(unknown_size).read_bytes() == pkg.read_bytes()
        assert [r for _, r in server.requests] == [f"bytes={len(pkg.read_bytes())}-", None]
