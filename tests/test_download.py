"""The downloader against a real HTTP server: retries, resume, checksums, cache, offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from envpack.errors import ChecksumError, DownloadError
from envpack.fetch.download import Fetcher, FetchOptions, cache_path
from envpack.lock.record import LockedPackage
from locked_records import record_for

from channel_factory import Pkg, build_package
from http_server import ChannelServer


@pytest.fixture
def big(tmp_path: Path) -> tuple[Path, ChannelServer]:
    root = tmp_path / "srv"
    pkg = build_package(Pkg("big", random_bytes=3 << 20), root / "win-64")
    server = ChannelServer(root)
    server.__enter__()
    yield pkg, server  # type: ignore[misc]
    server.__exit__()


def fetcher(tmp_path: Path, **kw: object) -> Fetcher:
    opts = FetchOptions(cache_dir=tmp_path / "cache", backoff=0.01, **kw)  # type: ignore[arg-type]
    return Fetcher(opts, sleep=lambda s: None)


def test_resume_after_midstream_failure(big, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pkg, server = big
    rec = record_for(pkg, f"{server.url}/win-64/{pkg.name}")
    server.faults.cut_after[pkg.name] = 1 << 20
    path = fetcher(tmp_path).fetch(rec)
    assert path.read_bytes() == pkg.read_bytes()
    ranges = [r for p, r in server.requests if p.endswith(pkg.name)]
    assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")
    assert int(ranges[1][6:-1]) > 0  # resumed, not restarted


def test_retry_on_503_then_success(big, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pkg, server = big
    rec = record_for(pkg, f"{server.url}/win-64/{pkg.name}")
    server.faults.status[pkg.name] = [503, 429]
    assert fetcher(tmp_path).fetch(rec).is_file()
    assert server.hits[pkg.name] == 3


def test_gives_up_after_retries(big, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pkg, server = big
    rec = record_for(pkg, f"{server.url}/win-64/{pkg.name}")
    server.faults.status[pkg.name] = [503] * 10
    with pytest.raises(DownloadError, match=r"big-1.0-0.conda: download failed after 3 attempts"):
        fetcher(tmp_path, retries=2).fetch(rec)
    assert not cache_path(tmp_path / "cache", rec).exists()


def test_corrupted_file_names_file_expected_and_got(big, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pkg, server = big
    rec = record_for(pkg, f"{server.url}/win-64/{pkg.name}")
    server.faults.corrupt.add(pkg.name)
    with pytest.raises(ChecksumError) as info:
        fetcher(tmp_path).fetch(rec)
    msg = str(info.value)
    assert pkg.name in msg and rec.sha256 in msg and "got sha256" in msg
    folder = cache_path(tmp_path / "cache", rec).parent
    assert not any(folder.iterdir())  # nothing half-written left in the cache


def test_404(big, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pkg, server = big
    rec = record_for(pkg, f"{server.url}/win-64/missing.conda", fn="missing.conda")
    with pytest.raises(DownloadError, match=r"missing.conda: not found \(HTTP 404\)"):
        fetcher(tmp_path).fetch(rec)


def test_truncated_every_time(big, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pkg, server = big
    rec = record_for(pkg, f"{server.url}/win-64/{pkg.name}", size=pkg.stat().st_size + 10)
    with pytest.raises(DownloadError, match="truncated download"):
        fetcher(tmp_path, retries=1).fetch(rec)


def test_server_ignoring_range_restarts(big, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pkg, server = big
    rec = record_for(pkg, f"{server.url}/win-64/{pkg.name}")
    server.faults.cut_after[pkg.name] = 1 << 20
    server.faults.no_range.add(pkg.name)
    assert fetcher(tmp_path).fetch(rec).read_bytes() == pkg.read_bytes()


def test_unreachable(tmp_path: Path) -> None:
    rec = LockedPackage(
        "x",
        "1",
        "0",
        0,
        "win-64",
        "x-1-0.conda",
        "http://127.0.0.1:9/win-64/x-1-0.conda",
        "http://127.0.0.1:9",
        "0" * 64,
        "0" * 32,
        10,
    )
    with pytest.raises(DownloadError, match=r"x-1-0.conda: download failed after 2 attempts"):
        fetcher(tmp_path, retries=1).fetch(rec)


def test_cache_hit_does_not_rehash_unless_asked(big, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pkg, server = big
    rec = record_for(pkg, f"{server.url}/win-64/{pkg.name}")
    path = fetcher(tmp_path).fetch(rec)
    # Same size, different bytes: a plain warm fetch trusts the verified cache...
    data = bytearray(path.read_bytes())
    data[100] ^= 1
    path.write_bytes(bytes(data))
    assert fetcher(tmp_path).fetch(rec) == path
    assert server.hits[pkg.name] == 1
    # ...and --verify-cache notices and fetches a good copy again.
    assert fetcher(tmp_path, verify_cache=True).fetch(rec).read_bytes() == pkg.read_bytes()
    assert server.hits[pkg.name] == 2


def test_offline_uses_cache_only(big, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pkg, server = big
    rec = record_for(pkg, f"{server.url}/win-64/{pkg.name}")
    with pytest.raises(DownloadError, match="--offline"):
        fetcher(tmp_path, offline=True).fetch(rec)
    fetcher(tmp_path).fetch(rec)
    assert fetcher(tmp_path, offline=True).fetch(rec).is_file()


def test_md5_only_record_is_verified_and_completed(big, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pkg, server = big
    full = record_for(pkg, f"{server.url}/win-64/{pkg.name}")
    partial = record_for(pkg, full.url, sha256="", size=0)
    f = fetcher(tmp_path)
    f.fetch_all([partial])
    assert f.completed[partial].sha256 == full.sha256
    assert f.completed[partial].size == full.size
    bad = record_for(pkg, full.url, sha256="", size=0, md5="0" * 32)
    with pytest.raises(ChecksumError, match="expected md5 0000"):
        fetcher(tmp_path / "other").fetch(bad)


def test_concurrent_fetch_all(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    pkgs = [build_package(Pkg(f"p{i}", random_bytes=200_000), root / "win-64") for i in range(12)]
    with ChannelServer(root) as server:
        recs = [record_for(p, f"{server.url}/win-64/{p.name}", name=p.name) for p in pkgs]
        got = fetcher(tmp_path, concurrency=4).fetch_all(recs)
    assert {r.fn for r in got} == {p.name for p in pkgs}
    assert all(got[r].read_bytes() == (root / "win-64" / r.fn).read_bytes() for r in recs)


def test_first_failure_cancels_queued_downloads(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    pkgs = [
        build_package(Pkg(f"q{i:02d}", random_bytes=2 << 20), root / "win-64") for i in range(20)
    ]
    with ChannelServer(root) as server:
        recs = [record_for(p, f"{server.url}/win-64/{p.name}", name=p.name) for p in pkgs]
        missing = record_for(
            pkgs[0], f"{server.url}/win-64/a-missing.conda", name="a", fn="a-missing.conda"
        )
        with pytest.raises(DownloadError, match="a-missing.conda: not found"):
            fetcher(tmp_path, concurrency=2).fetch_all([missing, *recs])
        fetched = sum(server.hits[p.name] for p in pkgs)
    assert fetched < 10  # not all twenty were fetched after the failure
