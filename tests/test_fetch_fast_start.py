"""Fetcher.start (a future per record, returned before the downloads end) and the CRC-32 the
cache keeps beside the verified hashes (issue 18)."""

from __future__ import annotations

import json
import threading
import zlib
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from envpack.errors import DownloadError
from envpack.fetch.cache import read_crc32
from envpack.fetch.download import Fetcher, FetchOptions, cache_path
from locked_records import record_for

from channel_factory import Pkg, build_package
from http_server import ChannelServer

WAIT = 60.0  # seconds; generous for a loaded CI box, never reached when things work


class HeldServer(ThreadingHTTPServer):
    """Serves files from a folder; a GET of a name in ``held`` answers only once the test sets
    that name's event."""

    daemon_threads = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _HeldHandler)
        self.root = root
        self.held: dict[str, threading.Event] = {}
        self.hits: Counter[str] = Counter()
        self.arrived: dict[str, threading.Event] = {}
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def hold(self, name: str) -> threading.Event:
        self.arrived[name] = threading.Event()
        self.held[name] = threading.Event()
        return self.held[name]

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _HeldHandler(BaseHTTPRequestHandler):
    server: HeldServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        name = self.path.rsplit("/", 1)[-1]
        self.server.hits[name] += 1
        if name in self.server.held:
            self.server.arrived[name].set()
            self.server.held[name].wait(WAIT)
        target = self.server.root / name
        if not target.is_file():
            self.send_error(404)
            return
        data = target.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[HeldServer, list[Path]]]:
    root = tmp_path / "srv"
    pkgs = [build_package(Pkg(f"h{i}", random_bytes=300_000), root) for i in range(6)]
    server = HeldServer(root)
    yield server, pkgs
    for event in server.held.values():
        event.set()
    server.shutdown()
    server.server_close()


def fetcher(cache: Path, **kw: object) -> Fetcher:
    opts = FetchOptions(cache_dir=cache, backoff=0.01, **kw)  # type: ignore[arg-type]
    return Fetcher(opts, sleep=lambda s: None)


def rec(pkg: Path, base: str, **kw: object):  # type: ignore[no-untyped-def]
    return record_for(pkg, f"{base}/{pkg.name}", name=pkg.name.split("-")[0], **kw)


def test_start_returns_before_the_downloads_end(
    held: tuple[HeldServer, list[Path]], tmp_path: Path
) -> None:
    server, pkgs = held
    release = server.hold(pkgs[0].name)
    records = [rec(p, server.url) for p in pkgs[:3]]
    futures = fetcher(tmp_path / "cache", concurrency=4).start(records)
    assert set(futures) == set(records)
    assert server.arrived[pkgs[0].name].wait(WAIT)
    assert not futures[records[0]].done()  # its server has not answered yet
    # The others complete on their own while the first is held.
    for r, p in zip(records[1:], pkgs[1:3], strict=True):
        assert futures[r].result(timeout=WAIT).read_bytes() == p.read_bytes()
    assert not futures[records[0]].done()
    release.set()
    assert futures[records[0]].result(timeout=WAIT).read_bytes() == pkgs[0].read_bytes()


def test_one_failure_fails_every_unresolved_future_like_fetch_all(
    held: tuple[HeldServer, list[Path]], tmp_path: Path
) -> None:
    server, pkgs = held
    missing = record_for(pkgs[1], f"{server.url}/a-missing.conda", name="a", fn="a-missing.conda")
    records = [missing, *(rec(p, server.url) for p in pkgs[2:])]
    # One at a time: the missing one fails before any other begins.
    futures = fetcher(tmp_path / "cache", concurrency=1).start(records)
    with pytest.raises(DownloadError) as first:
        futures[missing].result(timeout=WAIT)
    assert "a-missing.conda: not found (HTTP 404)" in str(first.value)
    for r in records:
        with pytest.raises(DownloadError) as err:
            futures[r].result(timeout=WAIT)
        assert err.value is first.value  # one failure, whichever future is waited on
    assert all(server.hits[p.name] == 0 for p in pkgs[2:])  # the queued ones never began
    with pytest.raises(DownloadError) as again:
        fetcher(tmp_path / "other", concurrency=1).fetch_all(records)
    assert str(again.value) == str(first.value)


def test_a_failure_is_reported_once_running_downloads_end(
    held: tuple[HeldServer, list[Path]], tmp_path: Path
) -> None:
    server, pkgs = held
    release = server.hold(pkgs[0].name)
    missing = record_for(pkgs[1], f"{server.url}/a-missing.conda", name="a", fn="a-missing.conda")
    running = rec(pkgs[0], server.url)
    futures = fetcher(tmp_path / "cache", concurrency=2).start([running, missing])
    assert server.arrived[pkgs[0].name].wait(WAIT)
    # The missing one fails at once; while the other still runs, nobody hears of it.
    assert not futures[missing].done()
    release.set()
    with pytest.raises(DownloadError, match="a-missing.conda: not found"):
        futures[missing].result(timeout=WAIT)
    # The running one finished into the cache, ready for the next run (its own future has
    # the path or, if it ended after the failure, the failure).
    assert cache_path(tmp_path / "cache", running).read_bytes() == pkgs[0].read_bytes()


def test_cancel_drops_what_has_not_begun_and_waits_for_what_runs(
    held: tuple[HeldServer, list[Path]], tmp_path: Path
) -> None:
    server, pkgs = held
    release = server.hold(pkgs[0].name)
    running, queued = rec(pkgs[0], server.url), rec(pkgs[1], server.url)
    f = fetcher(tmp_path / "cache", concurrency=1)
    futures = f.start([running, queued])
    assert server.arrived[pkgs[0].name].wait(WAIT)
    canceller = threading.Thread(target=f.cancel)
    canceller.start()
    canceller.join(0.5)
    assert canceller.is_alive()  # held: the running download cannot have ended
    release.set()
    canceller.join(WAIT)
    assert not canceller.is_alive()
    assert cache_path(tmp_path / "cache", running).read_bytes() == pkgs[0].read_bytes()
    with pytest.raises(Exception, match="the build stopped before this package was fetched"):
        futures[queued].result(timeout=WAIT)
    assert server.hits[pkgs[1].name] == 0


def test_halt_stops_a_started_fetch_and_leaves_no_part(
    held: tuple[HeldServer, list[Path]], tmp_path: Path
) -> None:
    server, pkgs = held
    server.hold(pkgs[0].name)
    record = rec(pkgs[0], server.url)
    f = fetcher(tmp_path / "cache", concurrency=2)
    futures = f.start([record])
    assert server.arrived[pkgs[0].name].wait(WAIT)
    f.halt()
    with pytest.raises(KeyboardInterrupt):
        futures[record].result(timeout=WAIT)
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_start_of_nothing_returns_nothing(tmp_path: Path) -> None:
    assert fetcher(tmp_path / "cache").start([]) == {}


# --------------------------------------------------------------------------- CRC-32


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, ChannelServer]]:
    root = tmp_path / "srv"
    pkg = build_package(Pkg("big", random_bytes=3 << 20), root / "win-64")
    with ChannelServer(root) as server:
        yield pkg, server


def test_crc32_of_a_fresh_download(served: tuple[Path, ChannelServer], tmp_path: Path) -> None:
    pkg, server = served
    path = fetcher(tmp_path / "cache").fetch(record_for(pkg, f"{server.url}/win-64/{pkg.name}"))
    assert read_crc32(path) == zlib.crc32(pkg.read_bytes())


def test_crc32_of_a_download_cut_mid_body_and_resumed(
    served: tuple[Path, ChannelServer], tmp_path: Path
) -> None:
    pkg, server = served
    server.faults.cut_after[pkg.name] = 1 << 20
    path = fetcher(tmp_path / "cache").fetch(record_for(pkg, f"{server.url}/win-64/{pkg.name}"))
    assert [r for _, r in server.requests][1] is not None  # resumed with a Range request
    assert read_crc32(path) == zlib.crc32(pkg.read_bytes())


def test_crc32_of_a_killed_runs_part_resumed(
    served: tuple[Path, ChannelServer], tmp_path: Path
) -> None:
    pkg, server = served
    record = record_for(pkg, f"{server.url}/win-64/{pkg.name}")
    dest = cache_path(tmp_path / "cache", record)
    dest.parent.mkdir(parents=True)
    dest.with_name(dest.name + ".part").write_bytes(pkg.read_bytes()[:1_000_000])
    path = fetcher(tmp_path / "cache").fetch(record)
    assert server.requests == [(f"/win-64/{pkg.name}", "bytes=1000000-")]
    assert read_crc32(path) == zlib.crc32(pkg.read_bytes())


def test_crc32_of_a_file_url_copy(tmp_path: Path) -> None:
    pkg = build_package(Pkg("local", random_bytes=2 << 20), tmp_path / "chan" / "win-64")
    path = fetcher(tmp_path / "cache").fetch(record_for(pkg, pkg.as_uri()))
    assert read_crc32(path) == zlib.crc32(pkg.read_bytes())


def test_an_old_cache_entry_has_no_crc32_until_verified(
    served: tuple[Path, ChannelServer], tmp_path: Path
) -> None:
    pkg, server = served
    record = record_for(pkg, f"{server.url}/win-64/{pkg.name}")
    path = fetcher(tmp_path / "cache").fetch(record)
    sidecar = path.with_name(path.name + ".verified")
    data = json.loads(sidecar.read_text())
    assert set(data) == {"size", "sha256", "md5", "crc32"}
    del data["crc32"]  # what an envpack from before wrote
    sidecar.write_text(json.dumps(data))
    assert read_crc32(path) is None
    assert fetcher(tmp_path / "cache").fetch(record) == path  # a cache hit, no error
    assert read_crc32(path) is None
    assert server.hits[pkg.name] == 1
    assert fetcher(tmp_path / "cache", verify_cache=True).fetch(record) == path
    assert read_crc32(path) == zlib.crc32(pkg.read_bytes())
    assert server.hits[pkg.name] == 1


def test_crc32_unknown_for_a_file_not_in_the_cache(tmp_path: Path) -> None:
    stray = tmp_path / "x.conda"
    stray.write_bytes(b"not cached")
    assert read_crc32(stray) is None
