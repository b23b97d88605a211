"""The HTTP side of fetching: the TLS trust store, what a download reads a body through, and the
httpx transport, used whenever a proxy is configured (see :mod:`.direct` for the other case).

Both transports give a :class:`Body` whose ``readinto`` fills the caller's buffer, and both report
a failure as :class:`Retryable` (worth another attempt), :class:`Fatal` (not) or
:class:`~envpack.fetch.partfile.Stopped` (the run is being stopped).
"""

from __future__ import annotations

import os
import ssl
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.request import getproxies

from envpack import __version__
from envpack.channels import redact
from envpack.errors import DownloadError
from envpack.fetch.partfile import Stopped
from envpack.fetch.sockets import Sockets

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx

USER_AGENT = f"envpack/{__version__}"
UNTRUSTED = (
    "the server's TLS certificate is not trusted; name your CA bundle in SSL_CERT_FILE or "
    "REQUESTS_CA_BUNDLE"
)


class Retryable(Exception):
    def __init__(self, message: str, truncated: bool = False, stalled: bool = False) -> None:
        super().__init__(message)
        self.truncated = truncated
        self.stalled = stalled  # nothing arrived: a second such attempt ends the download


class Fatal(Exception):
    """A transport failure no retry can fix (an untrusted certificate, a redirect loop)."""


class Body(Protocol):
    """A response whose headers have arrived; its body is read with ``readinto``."""

    status: int

    def header(self, name: str) -> str:
        """The header's value, "" if absent."""
        ...

    def readinto(self, view: memoryview) -> int:
        """Read what has arrived into ``view`` (at least one byte; 0 at the body's end)."""
        ...

    def close(self) -> None: ...


def ssl_context() -> ssl.SSLContext:
    """The CA store corporate users expect: an explicit bundle if named, else the OS store."""
    for var in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        cafile = os.environ.get(var)
        if cafile:
            if not Path(cafile).is_file():
                raise DownloadError(f"{var}={cafile} does not name a readable CA bundle file")
            return ssl.create_default_context(cafile=cafile)
    import truststore

    ctx: ssl.SSLContext = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return ctx


def proxy_configured() -> bool:
    """Whether httpx (``trust_env``) would send any request through a proxy: the same reading
    of HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY=* (and, on Windows and macOS, of the
    system settings urllib reads). Which hosts NO_PROXY exempts is left to httpx itself."""
    info = getproxies()
    if any(host.strip() == "*" for host in info.get("no", "").split(",")):
        return False
    return any(info.get(scheme) for scheme in ("http", "https", "all"))


def make_client(timeout: float, concurrency: int) -> httpx.Client:
    # Imported here: a warm build never downloads, and httpx is a third of envpack's import time.
    import httpx

    # trust_env picks up HTTP(S)_PROXY / NO_PROXY as httpx users expect.
    return httpx.Client(
        verify=ssl_context(),
        trust_env=True,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
        follow_redirects=True,
        headers={"User-Agent": USER_AGENT},
        limits=httpx.Limits(max_connections=concurrency * 2),
    )


def stalled(timeout: float, what: str) -> Retryable:
    return Retryable(f"no data for {timeout:g} s ({what}; see --timeout)", stalled=True)


class HttpxTransport:
    """Downloads through httpx: what every download used before :mod:`.direct`, and what a
    download still uses when a proxy is configured."""

    def __init__(self, timeout: float, concurrency: int, sockets: Sockets) -> None:
        self._timeout = timeout
        self._concurrency = concurrency
        self._sockets = sockets
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = make_client(self._timeout, self._concurrency)
            return self._client

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _trace(self, event: str, info: dict[str, Any]) -> None:
        # httpcore's documented "trace" extension reports each new connection's stream.
        if event.endswith((".connect_tcp.complete", ".start_tls.complete")):
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if sock is not None:
                self._sockets.add(sock)

    def get(self, url: str, headers: dict[str, str], stop: threading.Event) -> Body:
        import httpx

        try:
            request = self._http().build_request(
                "GET", url, headers=headers, extensions={"trace": self._trace}
            )
            return _HttpxBody(self._http().send(request, stream=True), self, stop)
        except httpx.TooManyRedirects:
            raise Fatal("too many redirects") from None
        except httpx.TransportError as exc:
            raise self.failure(exc, stop) from None

    def failure(self, exc: httpx.TransportError, stop: threading.Event) -> Exception:
        import httpx

        if stop.is_set():
            return Stopped()
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return Fatal(UNTRUSTED)  # retrying cannot fix trust; say what will
        if isinstance(exc, httpx.TimeoutException):
            return stalled(self._timeout, type(exc).__name__)
        return Retryable(
            f"{type(exc).__name__}: {redact(str(exc)) or 'connection error'}",
            truncated=isinstance(exc, httpx.RemoteProtocolError),
        )


class _HttpxBody:
    def __init__(self, resp: httpx.Response, transport: HttpxTransport, stop: threading.Event):
        self.status = resp.status_code
        self._resp = resp
        self._transport = transport
        self._stop = stop
        self._chunks: Iterator[bytes] = resp.iter_bytes()  # decoded, as ever
        self._left = memoryview(b"")

    def header(self, name: str) -> str:
        return str(self._resp.headers.get(name, ""))

    def readinto(self, view: memoryview) -> int:
        import httpx

        while not self._left:
            try:
                self._left = memoryview(next(self._chunks))
            except StopIteration:
                return 0
            except httpx.TransportError as exc:
                raise self._transport.failure(exc, self._stop) from None
            except httpx.DecodingError as exc:
                # The server named a coding its body is not in: sending it again will not help.
                coding = self.header("Content-Encoding") or "coded"
                raise Fatal(f"the server's {coding} body does not decode ({exc})") from None
        n = min(len(view), len(self._left))
        view[:n] = self._left[:n]
        self._left = self._left[n:]
        return n

    def close(self) -> None:
        self._resp.close()
