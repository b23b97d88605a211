"""The connections a fetcher opened, to shut down under the threads reading them on stop.

A module of its own, importing nothing of the network: a fetcher makes one when it is made,
and a warm build, which opens no connection, must not pay for ``socket`` or ``ssl`` (issue 18).
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import socket


class Sockets:
    """Every connection a fetcher opened, to shut down under the threads reading them on stop."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._lock = threading.Lock()
        self._items: list[socket.socket] = []

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._items.append(sock)
        if self._stop.is_set():
            self.shutdown_all()

    def shutdown_all(self) -> None:
        with self._lock:
            items = list(self._items)
        if not items:
            return
        import socket  # loaded already: a connection was added (see the module's docstring)

        for sock in items:
            # OSError: already closed, or detached by TLS (its TLS socket is in the list too).
            # socket.socket's own shutdown: an SSLSocket's would drop its TLS state under a
            # thread still reading it.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
