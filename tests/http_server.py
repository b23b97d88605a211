"""A real HTTP server on 127.0.0.1 serving a folder, with Range support and injectable faults."""

from __future__ import annotations

import os
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Faults:
    """Per-path misbehaviour, keyed by the URL path's file name."""

    status: dict[str, list[int]] = field(
        default_factory=dict
    )  # statuses to answer first, once each
    cut_after: dict[str, int] = field(default_factory=dict)  # close mid-stream after N bytes, once
    corrupt: set[str] = field(default_factory=set)  # flip one byte of the body, always
    no_range: set[str] = field(default_factory=set)  # ignore Range headers
    require_auth: str | None = None  # a "/t/<token>/" prefix every request must carry


class _Handler(BaseHTTPRequestHandler):
    server: ChannelServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        srv = self.server
        path = self.path.split("?", 1)[0]
        srv.requests.append((path, self.headers.get("Range")))
        if srv.faults.require_auth:
            if not path.startswith(srv.faults.require_auth):
                self.send_error(403)
                return
            path = "/" + path[len(srv.faults.require_auth) :]
        name = path.rsplit("/", 1)[-1]
        srv.hits[name] += 1
        queued = srv.faults.status.get(name)
        if queued:
            code = queued.pop(0)
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        from urllib.parse import unquote

        target = (srv.root / unquote(path).lstrip("/")).resolve()
        if not str(target).startswith(str(srv.root)) or not target.is_file():
            self.send_error(404)
            return
        data = target.read_bytes()
        if name in srv.faults.corrupt:
            data = bytearray(data)
            data[len(data) // 2] ^= 0xFF
            data = bytes(data)
        start = 0
        rng = self.headers.get("Range")
        m = re.match(r"bytes=(\d+)-$", rng or "")
        if m and name not in srv.faults.no_range and int(m.group(1)) >= len(data):
            self.send_response(416)  # as nginx and every real server answer
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if m and name not in srv.faults.no_range:
            start = int(m.group(1))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        cut = srv.faults.cut_after.pop(name, None)
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


class ChannelServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root.resolve()
        self.faults = Faults()
        self.requests: list[tuple[str, str | None]] = []
        self.hits: Counter[str] = Counter()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> ChannelServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


def no_proxy_env() -> None:
    os.environ["NO_PROXY"] = "127.0.0.1,localhost"
