"""Package downloads over the standard library's ``http.client``, when no proxy is configured.

Why not httpx here: a body read through httpx costs a Python object and an h11 parse per 64 KiB,
while ``http.client`` reads straight into the caller's buffer (``readinto1``, one socket read
each); the fetch phase takes about three quarters of the CPU time (bench/FINDINGS.md). With a
proxy configured, every download goes through httpx (:class:`~envpack.fetch.http.HttpxTransport`)
as before, so proxies, NO_PROXY and the system's proxy settings keep exactly httpx's meaning.

What httpx did, this does alike:

- TLS with :func:`~envpack.fetch.http.ssl_context` (SSL_CERT_FILE, REQUESTS_CA_BUNDLE, else the
  OS store), the handshake within the connect timeout;
- ``user:pass@`` in a URL becomes HTTP basic auth; a ``/t/<token>/`` path is sent as it is;
- connecting may take ``min(timeout, 15)`` seconds, each read may wait ``timeout`` seconds;
- redirects (301, 302, 303, 307, 308 with a Location) are followed, at most 20, relative ones
  resolved against the URL redirected from; the Authorization header is dropped when one leads to
  another scheme, host or port, unless it upgrades http on port 80 to https on 443 of one host;
  every other header (Range too) is sent again;
- connections are kept alive and reused, one request at a time each;
- bodies are asked for without content coding (``Accept-Encoding: identity``): a server that
  codes one anyway is read through httpx, which decodes it (see ``Fetcher._stream``).
"""

from __future__ import annotations

import base64
import http.client
import select
import socket
import ssl
import threading
from urllib.parse import SplitResult, quote, unquote, urljoin, urlsplit

from envpack.channels import redact
from envpack.fetch.http import (
    UNTRUSTED,
    USER_AGENT,
    Body,
    Fatal,
    Retryable,
    ssl_context,
    stalled,
)
from envpack.fetch.partfile import Stopped
from envpack.fetch.sockets import Sockets

MAX_REDIRECTS = 20  # httpx's default
REDIRECTS = {301, 302, 303, 307, 308}
IDLE_PER_HOST = 16  # kept-alive connections kept per host (the fetcher runs 8 at a time)
DRAIN = 64 << 10  # a redirect's body up to this is read to keep its connection; longer: closed
DEFAULT_PORT = {"http": 80, "https": 443}
# Characters a request target may carry as they are (RFC 3986 pchar, "/" and "%" of escapes).
SAFE_PATH = "/%:@!$&'()*+,;=-._~"

Key = tuple[str, str, int]  # scheme, host, port


def _origin(url: SplitResult) -> Key:
    scheme = url.scheme.lower()
    if scheme not in DEFAULT_PORT:
        raise Fatal(f"unsupported URL scheme {scheme!r} in {redact(url.geturl())}")
    try:
        port = url.port or DEFAULT_PORT[scheme]
    except ValueError:
        raise Fatal(f"invalid port in {redact(url.geturl())}") from None
    if not url.hostname:
        raise Fatal(f"no host in {redact(url.geturl())}")
    return scheme, url.hostname, port


def _host_header(key: Key) -> str:
    scheme, host, port = key
    host = f"[{host}]" if ":" in host else host.encode("idna").decode("ascii")
    return host if port == DEFAULT_PORT[scheme] else f"{host}:{port}"


def _target(url: SplitResult) -> str:
    target = quote(url.path or "/", safe=SAFE_PATH)
    return f"{target}?{quote(url.query, safe=SAFE_PATH + '?')}" if url.query else target


def _basic_auth(url: SplitResult) -> str | None:
    if not (url.username or url.password):
        return None
    userpass = f"{unquote(url.username or '')}:{unquote(url.password or '')}"
    return "Basic " + base64.b64encode(userpass.encode("utf-8")).decode("ascii")


def _keeps_auth(old: Key, new: Key) -> bool:
    """httpx's rule: same origin, or http on port 80 upgraded to https on 443 of one host."""
    return old == new or (old == ("http", new[1], 80) and new == ("https", old[1], 443))


def _redirect_url(current: SplitResult, location: str) -> SplitResult:
    # Never carry credentials of the URL redirected from into the new one's authority.
    base = current._replace(netloc=_netloc(current))
    url = urlsplit(urljoin(base.geturl(), location.strip()))
    if url.scheme and not url.netloc:
        url = url._replace(netloc=base.netloc)  # "http:/path", as httpx mends it
    return url


def _netloc(url: SplitResult) -> str:
    return url.netloc.rpartition("@")[2]


class DirectTransport:
    def __init__(self, timeout: float, sockets: Sockets) -> None:
        self._timeout = timeout
        self._connect_timeout = min(timeout, 15.0)
        self._sockets = sockets
        self._lock = threading.Lock()
        self._idle: dict[Key, list[http.client.HTTPConnection]] = {}
        self._context: ssl.SSLContext | None = None

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def get(self, url: str, headers: dict[str, str], stop: threading.Event) -> Body:
        current = urlsplit(url)
        sent = {"User-Agent": USER_AGENT, "Accept": "*/*", "Accept-Encoding": "identity"}
        sent.update(headers)
        auth = _basic_auth(current)
        if auth:
            sent["Authorization"] = auth
        for _ in range(MAX_REDIRECTS + 1):
            key = _origin(current)
            conn, resp = self._request(key, _target(current), sent, stop)
            location = resp.getheader("Location")
            if resp.status not in REDIRECTS or location is None:
                return _DirectBody(resp, conn, key, self, stop)
            self._drain(key, conn, resp)
            current = _redirect_url(current, location)
            if not _keeps_auth(key, _origin(current)):
                sent.pop("Authorization", None)
        raise Fatal(f"more than {MAX_REDIRECTS} redirects")

    def _request(
        self, key: Key, target: str, headers: dict[str, str], stop: threading.Event
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        headers = {**headers, "Host": _host_header(key)}
        while True:
            if stop.is_set():
                raise Stopped
            conn = self._take(key)
            reused = conn is not None
            if conn is None:
                conn = self._connect(key, stop)
            try:
                conn.request("GET", target, headers=headers)
                return conn, conn.getresponse()
            except (ConnectionError, http.client.BadStatusLine) as exc:
                conn.close()
                # A kept-alive connection the server closed meanwhile: a fresh one, at once
                # (what httpcore does too). A fresh connection failing is a real failure.
                if reused and not stop.is_set():
                    continue
                raise self.failure(exc, stop) from None
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise self.failure(exc, stop) from None

    def _connect(self, key: Key, stop: threading.Event) -> http.client.HTTPConnection:
        scheme, host, port = key
        try:
            sock = socket.create_connection((host, port), timeout=self._connect_timeout)
        except TimeoutError:
            raise self._stopped_or(stalled(self._timeout, "ConnectTimeout"), stop) from None
        except OSError as exc:
            raise self._stopped_or(Retryable(f"ConnectError: {exc}"), stop) from None
        self._sockets.add(sock)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                with self._lock:
                    if self._context is None:
                        self._context = ssl_context()
                    context = self._context
                sock = context.wrap_socket(sock, server_hostname=host)
                self._sockets.add(sock)
            sock.settimeout(self._timeout)
        except ssl.SSLCertVerificationError:
            sock.close()
            raise Fatal(UNTRUSTED) from None
        except TimeoutError:
            sock.close()
            raise self._stopped_or(stalled(self._timeout, "ConnectTimeout"), stop) from None
        except OSError as exc:
            sock.close()
            raise self._stopped_or(Retryable(f"ConnectError: {exc}"), stop) from None
        conn = http.client.HTTPConnection(host, port)
        conn.sock = sock  # connected already: http.client only connects when it has none
        return conn

    def _take(self, key: Key) -> http.client.HTTPConnection | None:
        while True:
            with self._lock:
                idle = self._idle.get(key)
                conn = idle.pop() if idle else None
            if conn is None or _alive(conn):
                return conn
            conn.close()

    def release(self, key: Key, conn: http.client.HTTPConnection, reusable: bool) -> None:
        if reusable:
            with self._lock:
                idle = self._idle.setdefault(key, [])
                if len(idle) < IDLE_PER_HOST:
                    idle.append(conn)
                    return
        conn.close()

    def _drain(
        self, key: Key, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse
    ) -> None:
        """Finish a redirect's response, keeping its connection if that is cheap."""
        reusable = not resp.will_close and resp.length is not None and resp.length <= DRAIN
        try:
            if reusable:
                resp.read()
        except (OSError, http.client.HTTPException):
            reusable = False
        resp.close()
        self.release(key, conn, reusable)

    def failure(self, exc: BaseException, stop: threading.Event) -> Exception:
        """What a failed request or read means to the download (named as httpx named it)."""
        if isinstance(exc, TimeoutError):
            failure: Exception = stalled(self._timeout, "ReadTimeout")
        elif isinstance(exc, http.client.RemoteDisconnected):
            failure = Retryable(f"RemoteProtocolError: {exc}", truncated=True)
        elif isinstance(exc, http.client.IncompleteRead):
            failure = Retryable(
                "RemoteProtocolError: peer closed connection without sending complete message body",
                truncated=True,
            )
        elif isinstance(exc, http.client.HTTPException):
            failure = Retryable(f"RemoteProtocolError: {exc!r}", truncated=True)
        else:
            failure = Retryable(f"ReadError: {exc}")
        return self._stopped_or(failure, stop)

    @staticmethod
    def _stopped_or(failure: Exception, stop: threading.Event) -> Exception:
        # A connection shut down by stop() fails as any broken one would: say why it broke.
        return Stopped() if stop.is_set() else failure


def _alive(conn: http.client.HTTPConnection) -> bool:
    """An idle kept-alive connection is usable while nothing can be read from it: a readable
    one was closed by the server (or sent what it should not have)."""
    sock = conn.sock
    if sock is None:
        return False
    try:
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return False
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


class _DirectBody:
    def __init__(
        self,
        resp: http.client.HTTPResponse,
        conn: http.client.HTTPConnection,
        key: Key,
        transport: DirectTransport,
        stop: threading.Event,
    ) -> None:
        self.status = resp.status
        self._resp = resp
        self._conn = conn
        self._key = key
        self._transport = transport
        self._stop = stop
        self._left = None if resp.chunked else resp.length  # None: chunked, or up to close
        self._ended = False

    def header(self, name: str) -> str:
        return self._resp.getheader(name) or ""

    def readinto(self, view: memoryview) -> int:
        try:
            if self._resp.chunked:
                data = self._resp.read1(len(view))  # chunk framing is http.client's to parse
                view[: len(data)] = data
                n = len(data)
            elif self._left == 0 or self._resp.fp is None:
                n = 0
            else:
                if self._left is not None:
                    view = view[: self._left]
                # One socket read at most, straight into the buffer: the rate checks between
                # reads see a trickle, and no bytes object is made per read.
                n = self._resp.fp.readinto1(view)
                if self._left is not None:
                    if n == 0:
                        raise http.client.IncompleteRead(b"", self._left)
                    self._left -= n
        except (OSError, http.client.HTTPException, ValueError) as exc:
            # ValueError: a read on a file closed under it (stop() shut the socket down).
            raise self._transport.failure(exc, self._stop) from None
        if n == 0:
            self._ended = True
        return n

    def close(self) -> None:
        done = self._left == 0 or (self._ended and self._resp.chunked)
        reusable = done and not self._resp.will_close and not self._stop.is_set()
        self._resp.close()
        self._transport.release(self._key, self._conn, reusable)
