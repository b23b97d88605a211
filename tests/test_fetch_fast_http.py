"""The fetcher's two HTTP paths (issue 18): http.client when no proxy is configured, httpx through
a proxy. Redirects, credentials across them, kept-alive connections a server dropped, chunked and
coded bodies, and a forward and a CONNECT proxy."""

from __future__ import annotations

import base64
import gzip
import select
import shutil
import socket
import ssl
import threading
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from envpack.errors import DownloadError
from envpack.fetch.cache import read_crc32
from envpack.fetch.download import Fetcher, FetchOptions
from envpack.fetch.http import proxy_configured
from locked_records import record_for

from channel_factory import Pkg, build_package

Route = Callable[["_Handler", dict[str, str]], None]


class Server(ThreadingHTTPServer):
    """HTTP/1.1 with keep-alive on 127.0.0.1; each path answered by a route of the test's."""

    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.routes: dict[str, Route] = {}
        self.seen: list[tuple[str, dict[str, str]]] = []  # (path, headers) of every request
        self.peers: set[int] = set()  # client ports: one per TCP connection
        self.scheme = "https" if tls else "http"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"{self.scheme}://{host!s}:{port}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.seen.append((self.path, headers))
        self.server.peers.add(self.client_address[1])
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        route(self, headers)

    def send_body(self, data: bytes, status: int = 200, **extra: str) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(data)


def serve_file(data: bytes) -> Route:
    def route(h: _Handler, headers: dict[str, str]) -> None:
        start = int(headers["range"][6:-1]) if "range" in headers else 0
        if start:
            extra = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
            h.send_body(data[start:], 206, **extra)
        else:
            h.send_body(data)

    return route


def redirect(location: str, status: int = 302) -> Route:
    def route(h: _Handler, headers: dict[str, str]) -> None:
        h.send_body(b"moved", status, Location=location)

    return route


@pytest.fixture
def pkg(tmp_path: Path) -> Path:
    return build_package(Pkg("fast", random_bytes=400_000), tmp_path / "pkgs")


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.close()


@pytest.fixture
def other() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.close()


def fetcher(tmp_path: Path, **kw: object) -> Fetcher:
    opts = FetchOptions(cache_dir=tmp_path / "cache", backoff=0.01, **kw)  # type: ignore[arg-type]
    return Fetcher(opts, sleep=lambda s: None)


def with_userinfo(url: str, userinfo: str) -> str:
    return url.replace("://", f"://{userinfo}@", 1)


BASIC = "Basic " + base64.b64encode(b"user:p@ss w").decode()


def test_no_proxy_configured_means_the_direct_path(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("all_proxy", raising=False)
    assert proxy_configured() is False
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert proxy_configured() is True
    monkeypatch.setenv("NO_PROXY", "*")
    assert proxy_configured() is False


def test_a_relative_redirect_keeps_credentials_and_range(
    pkg: Path, server: Server, tmp_path: Path
) -> None:
    data = pkg.read_bytes()
    server.routes["/win-64/fast.conda"] = redirect("/store/fast.conda", 307)
    server.routes["/store/fast.conda"] = serve_file(data)
    url = with_userinfo(f"{server.url}/win-64/fast.conda", "user:p%40ss%20w")
    record = record_for(pkg, url, fn="fast.conda")
    f = fetcher(tmp_path)
    dest = tmp_path / "cache" / "pkgs" / record.sha256 / "fast.conda"
    dest.parent.mkdir(parents=True)
    dest.with_name("fast.conda.part").write_bytes(data[:1000])  # a killed run's bytes
    path = f.fetch(record)
    assert path.read_bytes() == data
    assert read_crc32(path) == zlib.crc32(data)
    assert [p for p, _ in server.seen] == ["/win-64/fast.conda", "/store/fast.conda"]
    for _, headers in server.seen:
        assert headers["authorization"] == BASIC  # user:p@ss w, decoded from the URL
        assert headers["range"] == "bytes=1000-"
        assert headers["accept-encoding"] == "identity"
        assert headers["user-agent"].startswith("envpack/")


def test_a_redirect_to_another_origin_drops_the_authorization(
    pkg: Path, server: Server, other: Server, tmp_path: Path
) -> None:
    data = pkg.read_bytes()
    server.routes["/win-64/fast.conda"] = redirect(f"{other.url}/cdn/fast.conda?sig=1")
    other.routes["/cdn/fast.conda?sig=1"] = serve_file(data)
    url = with_userinfo(f"{server.url}/win-64/fast.conda", "user:p%40ss%20w")
    path = fetcher(tmp_path).fetch(record_for(pkg, url, fn="fast.conda"))
    assert path.read_bytes() == data
    assert server.seen[0][1]["authorization"] == BASIC
    [(_, headers)] = other.seen
    assert "authorization" not in headers
    _, port = other.server_address[:2]
    assert headers["host"] == f"127.0.0.1:{port}"


def test_a_redirect_loop_fails_once_without_retries(
    pkg: Path, server: Server, tmp_path: Path
) -> None:
    server.routes["/win-64/fast.conda"] = redirect("/win-64/fast.conda", 301)
    record = record_for(pkg, f"{server.url}/win-64/fast.conda", fn="fast.conda")
    with pytest.raises(DownloadError, match=r"fast\.conda: download failed from .*redirects"):
        fetcher(tmp_path, retries=3).fetch(record)
    assert len(server.seen) == 21  # the request and 20 redirects, once


def test_connections_are_kept_alive_and_a_dropped_one_replaced(
    tmp_path: Path, server: Server
) -> None:
    pkgs = [build_package(Pkg(f"k{i}", random_bytes=50_000), tmp_path / "pkgs") for i in range(4)]
    dropped = {pkgs[2].name}

    def route_for(data: bytes, name: str) -> Route:
        def route(h: _Handler, headers: dict[str, str]) -> None:
            h.send_body(data)
            if name in dropped:
                # As a keep-alive timeout does: closed without saying so.
                h.close_connection = True

        return route

    for p in pkgs:
        server.routes[f"/{p.name}"] = route_for(p.read_bytes(), p.name)
    f = fetcher(tmp_path)
    for p in pkgs:  # one after the other: each finds the previous one's connection idle
        assert f.fetch(record_for(p, f"{server.url}/{p.name}")).read_bytes() == p.read_bytes()
    assert len(server.seen) == 4  # no request sent twice
    assert len(server.peers) == 2  # one connection until the drop, one after


def test_a_chunked_body(pkg: Path, server: Server, tmp_path: Path) -> None:
    data = pkg.read_bytes()

    def chunked(h: _Handler, headers: dict[str, str]) -> None:
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        for i in range(0, len(data), 70_000):
            piece = data[i : i + 70_000]
            h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        h.wfile.write(b"0\r\n\r\n")

    server.routes["/fast.conda"] = chunked
    path = fetcher(tmp_path).fetch(record_for(pkg, f"{server.url}/fast.conda", fn="fast.conda"))
    assert path.read_bytes() == data
    assert read_crc32(path) == zlib.crc32(data)


def test_a_body_coded_although_asked_not_to_is_decoded(
    pkg: Path, server: Server, tmp_path: Path
) -> None:
    data = pkg.read_bytes()
    server.routes["/fast.conda"] = lambda h, headers: h.send_body(
        gzip.compress(data), Content_Encoding="gzip"
    )
    path = fetcher(tmp_path).fetch(record_for(pkg, f"{server.url}/fast.conda", fn="fast.conda"))
    assert path.read_bytes() == data
    assert read_crc32(path) == zlib.crc32(data)
    first, second = (h["accept-encoding"] for _, h in server.seen)
    assert first == "identity"
    assert "gzip" in second  # httpx's request, as it always asked


def test_a_coded_body_that_does_not_decode_is_one_clear_error(
    server: Server, tmp_path: Path, pkg: Path
) -> None:
    """A server that says gzip and sends something else: a DownloadError naming the package and
    the coding, no traceback, no part file left."""
    server.routes["/bad.conda"] = lambda h, headers: h.send_body(
        b"this is not gzip " * 64, Content_Encoding="gzip"
    )
    f = fetcher(tmp_path)
    with pytest.raises(DownloadError) as caught:
        f.fetch(record_for(pkg, f"{server.url}/bad.conda", fn="bad.conda"))
    message = str(caught.value)
    assert message.startswith("bad.conda: ")
    assert "gzip" in message and "does not decode" in message
    assert not list((tmp_path / "cache").rglob("*.part"))


# --------------------------------------------------------------------------- proxies


class Proxy(ThreadingHTTPServer):
    """A forward proxy for http:// and a CONNECT tunnel for https://, on 127.0.0.1."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.requests: list[str] = []  # request lines
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Proxy

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append(self.requestline)
        target = urlsplit(self.path)  # absolute form: http://host:port/path
        assert target.hostname is not None and target.port is not None
        with socket.create_connection((target.hostname, target.port), timeout=30) as upstream:
            path = target.path + (f"?{target.query}" if target.query else "")
            head = [f"GET {path} HTTP/1.1", f"Host: {target.netloc}", "Connection: close"]
            head += [f"{k}: {v}" for k, v in self.headers.items() if k.lower() != "host"]
            upstream.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
            while chunk := upstream.recv(65536):
                self.wfile.write(chunk)
        self.close_connection = True

    def do_CONNECT(self) -> None:
        self.server.requests.append(self.requestline)
        host, _, port = self.path.rpartition(":")
        upstream = socket.create_connection((host, int(port)), timeout=30)
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        ends = [self.connection, upstream]
        try:
            while True:
                readable, _, _ = select.select(ends, [], [], 30)
                if not readable:
                    return
                for end in readable:
                    data = end.recv(65536)
                    if not data:
                        return
                    (upstream if end is self.connection else self.connection).sendall(data)
        finally:
            upstream.close()
            self.close_connection = True


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[Proxy]:
    srv = Proxy()
    for var in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTP_PROXY", srv.url)
    monkeypatch.setenv("HTTPS_PROXY", srv.url)
    yield srv
    srv.shutdown()
    srv.server_close()


def test_through_a_forward_proxy(pkg: Path, server: Server, proxy: Proxy, tmp_path: Path) -> None:
    data = pkg.read_bytes()
    server.routes["/win-64/fast.conda"] = serve_file(data)
    url = f"{server.url}/win-64/fast.conda"
    path = fetcher(tmp_path).fetch(record_for(pkg, url, fn="fast.conda"))
    assert path.read_bytes() == data
    assert read_crc32(path) == zlib.crc32(data)
    assert proxy.requests == [f"GET {url} HTTP/1.1"]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_https_through_a_connect_proxy(
    pkg: Path, proxy: Proxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_tls import make_ca_and_cert

    ca, cert, key = make_ca_and_cert(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    secure = Server(tls)
    try:
        data = pkg.read_bytes()
        secure.routes["/win-64/fast.conda"] = serve_file(data)
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        url = f"{secure.url}/win-64/fast.conda"
        path = fetcher(tmp_path).fetch(record_for(pkg, url, fn="fast.conda"))
        assert path.read_bytes() == data
        assert read_crc32(path) == zlib.crc32(data)
        _, port = secure.server_address[:2]
        assert proxy.requests == [f"CONNECT 127.0.0.1:{port} HTTP/1.1"]
    finally:
        secure.close()
