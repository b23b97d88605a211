"""A hostile or careless package server on 127.0.0.1: it stalls, trickles, pads, hides lengths,
and wants a token or a password. Every misbehaviour is keyed by the requested file's name."""

from __future__ import annotations

import base64
import contextlib
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote


@dataclass
class Misbehaviour:
    stall_headers: set[str] = field(default_factory=set)  # accept, read the request, say nothing
    stall_after: dict[str, int] = field(default_factory=dict)  # send N body bytes, then nothing
    trickle: dict[str, float] = field(default_factory=dict)  # one byte every N seconds
    pad: dict[str, int] = field(default_factory=dict)  # N extra bytes after the file
    hide_length: set[str] = field(default_factory=set)  # no Content-Length: the body ends at close
    token: str | None = None  # every path must start with /t/<token>/, else 404
    basic: str | None = None  # "user:password" every request must carry, else 401


class HostileServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root.resolve()
        self.bad = Misbehaviour()
        self.requests: list[tuple[str, str | None]] = []  # (file name, Range header)
        self.hits: Counter[str] = Counter()
        self.stalled: Counter[str] = Counter()  # requests now held silent, by file name
        self.release = threading.Event()  # set: every stall and trickle ends
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def wait_stalled(self, count: int, timeout: float = 60.0) -> None:
        """Block until ``count`` requests are being held silent (deterministic sync for tests)."""
        with self._changed:
            if not self._changed.wait_for(lambda: sum(self.stalled.values()) >= count, timeout):
                raise AssertionError(f"only {dict(self.stalled)} stalled after {timeout} s")

    def note_stall(self, name: str) -> None:
        with self._changed:
            self.stalled[name] += 1
            self._changed.notify_all()

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: HostileServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        srv, bad = self.server, self.server.bad
        path = unquote(self.path.split("?", 1)[0])
        name = path.rsplit("/", 1)[-1]
        srv.requests.append((name, self.headers.get("Range")))
        srv.hits[name] += 1
        if bad.basic is not None:
            wanted = "Basic " + base64.b64encode(bad.basic.encode()).decode()
            if self.headers.get("Authorization") != wanted:
                self.send_error(401)
                return
        if bad.token is not None:
            prefix = f"/t/{bad.token}/"
            if not path.startswith(prefix):
                self.send_error(404)
                return
            path = "/" + path[len(prefix) :]
        target = (srv.root / path.lstrip("/")).resolve()
        if not target.is_relative_to(srv.root) or not target.is_file():
            self.send_error(404)
            return
        if name in bad.stall_headers:
            srv.note_stall(name)
            srv.release.wait(120)
            return
        body = target.read_bytes() + b"\0" * bad.pad.get(name, 0)
        m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if m and int(m.group(1)) < len(body):
            start = int(m.group(1))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            body = body[start:]
        else:
            self.send_response(200)
        if name not in bad.hide_length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client went away: what a stopped download does
            self._send(name, body)

    def _send(self, name: str, body: bytes) -> None:
        srv, bad = self.server, self.server.bad
        if name in bad.trickle:
            for i in range(len(body)):
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()
                if srv.release.wait(bad.trickle[name]):
                    break
            return
        cut = bad.stall_after.get(name)
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            srv.note_stall(name)
            srv.release.wait(120)
            body = body[cut:]
        self.wfile.write(body)
