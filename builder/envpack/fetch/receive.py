"""Bytes into a part file: read into one reused buffer, hashed and written each time it fills.

64 KiB at a time: that much stays in a core's cache from the socket read through the three hashes
(sha256, md5, CRC-32) to the write; a 1 MiB buffer measured more CPU, a fresh ``bytes`` per read
more still (bench/FINDINGS.md). The hashes, like the write, release the GIL, so eight downloads
hash on every core.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from envpack.errors import DownloadError
from envpack.fetch.http import Body, Retryable
from envpack.fetch.partfile import Digest, Stopped

BUFFER = 64 << 10
MIN_RATE = 1024  # bytes per second, averaged over `timeout` seconds
_buffers = threading.local()  # one buffer per download thread, reused: no allocation per read


def disk_error(exc: OSError, path: Path) -> DownloadError:
    """A failed write into the cache: DownloadError, as every cache write (see errors.py)."""
    if exc.errno == errno.ENOSPC:
        return DownloadError(f"disk full while writing {path}; free some space and build again")
    return DownloadError(f"cannot write {path}: {exc.strerror}")


def receive(
    body: Body,
    part: Path,
    digest: Digest,
    limit: int,
    window: float,
    stop: threading.Event,
    advance: Callable[[int], None],
    oversize: Callable[[], Exception],
) -> None:
    """Append ``body`` to ``part``, ``digest`` following every byte written; the stop flag and
    the rate floor (``MIN_RATE`` over ``window`` seconds) checked after every network read.

    Never more than ``limit`` bytes in all: one byte past it is ``oversize()``, raised before it
    is written. On a retryable failure what did arrive is written first, for the next attempt's
    Range request.
    """
    view = _buffer()
    started, at_start = time.monotonic(), digest.size
    try:
        with part.open("ab", buffering=0) as fh:
            filled, n = 0, 1
            try:
                while n:
                    # One byte past the limit at most: enough to know the body is too long.
                    room = min(len(view), limit - digest.size - filled + 1)
                    n = body.readinto(view[filled : filled + room])
                    filled += n
                    if stop.is_set():
                        raise Stopped
                    if digest.size + filled > limit:
                        # Not one byte past the size: the rest cannot make the hash right.
                        raise oversize()
                    if filled == len(view) or (filled and not n):
                        _absorb(digest, view[:filled], fh)
                        advance(filled)
                        filled = 0
                    elapsed = time.monotonic() - started
                    if elapsed >= window:
                        got = digest.size + filled - at_start
                        if got < MIN_RATE * elapsed:
                            raise Retryable(
                                f"too slow: {got / elapsed:.0f} bytes/s over {elapsed:.0f} s "
                                f"(under {MIN_RATE} bytes/s; see --timeout)",
                            )
                        started, at_start = time.monotonic(), digest.size + filled
            except Retryable:
                _absorb(digest, view[:filled], fh)
                advance(filled)
                raise
    except OSError as exc:
        raise disk_error(exc, part) from None


def copy_file(
    src: Path,
    part: Path,
    digest: Digest,
    limit: int,
    stop: threading.Event,
    advance: Callable[[int], None],
    oversize: Callable[[], Exception],
) -> None:
    """Copy a local channel's file into ``part`` as :func:`receive` does a body."""
    view = _buffer()
    try:
        with src.open("rb", buffering=0) as fin, part.open("wb", buffering=0) as fout:
            while n := fin.readinto(view):
                if stop.is_set():
                    raise Stopped
                if digest.size + n > limit:
                    raise oversize()
                _absorb(digest, view[:n], fout)
                advance(n)
    except OSError as exc:
        raise disk_error(exc, part) from None


def _buffer() -> memoryview:
    view: memoryview | None = getattr(_buffers, "view", None)
    if view is None:
        view = _buffers.view = memoryview(bytearray(BUFFER))
    return view


def _absorb(digest: Digest, data: memoryview, fh: BinaryIO) -> None:
    """Hash and write ``data``: the hashes cover exactly what the part file holds."""
    if not data:
        return
    digest.update(data)
    while data:
        data = data[fh.write(data) or 0 :]
