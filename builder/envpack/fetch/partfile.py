"""One cache entry's files (the package, its part file, its lock, its verified hashes) and the
hashing that checks them.

For ``<cache>/pkgs/<key>/<fn>`` (``<key>`` is the record's sha256, so every name here is chosen by
content, not by process):

- ``<fn>.part`` is the download in progress. It survives only a kill -9 or a power cut, and the
  next run resumes it with an HTTP Range request; every failure envpack sees deletes it.
- ``<fn>.lock`` is held (``flock`` on POSIX, ``msvcrt.locking`` on Windows) by whoever writes the
  part, so two builds sharing a cache take turns: the second waits, then finds the package done.
  It is removed on release; a waiter that wakes on a removed lock file takes the new one.
- ``<fn>.verified`` holds the size, sha256 and md5 measured when the package entered the cache,
  so a warm build checks every hash a lock records without hashing the file again, and the
  CRC-32 of its bytes (``crc32``, since issue 18), so a zip writer can store it without reading
  it. Entries written before have no ``crc32``: they read as ``None``, never as an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from envpack.errors import DownloadError
from envpack.limits import CHUNK
from envpack.lock.record import LockedPackage

POLL = 0.1  # seconds between attempts to take a lock another build holds


@dataclass(frozen=True)
class Hashes:
    size: int
    sha256: str
    md5: str
    # Not a check (a lock records no CRC-32), so not part of equality: a file is what its
    # size, sha256 and md5 say; the CRC only spares the zip writer a read. None: not known.
    crc32: int | None = field(default=None, compare=False)


class Digest:
    """sha256 and md5 of everything written (every hash a record may carry is checked), and
    its CRC-32 for the zip writer.

    Each of the three releases the GIL on a large buffer, so downloads hash in parallel.
    """

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.crc32 = 0
        self.size = 0

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        self.sha256.update(chunk)
        self.md5.update(chunk)
        self.crc32 = zlib.crc32(chunk, self.crc32)
        self.size += len(chunk)

    def hashes(self) -> Hashes:
        return Hashes(self.size, self.sha256.hexdigest(), self.md5.hexdigest(), self.crc32)


def part_path(dest: Path) -> Path:
    return dest.with_name(f"{dest.name}.part")


def verified_path(dest: Path) -> Path:
    return dest.with_name(f"{dest.name}.verified")


def read_verified(dest: Path) -> Hashes | None:
    """The hashes recorded when ``dest`` entered the cache, if they still describe its size."""
    try:
        data = json.loads(verified_path(dest).read_text(encoding="utf-8"))
        crc = data.get("crc32")  # absent from entries written before it was kept
        hashes = Hashes(
            int(data["size"]),
            str(data["sha256"]),
            str(data["md5"]),
            crc if isinstance(crc, int) and 0 <= crc <= 0xFFFFFFFF else None,
        )
        if dest.stat().st_size != hashes.size:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return hashes


def write_verified(dest: Path, hashes: Hashes) -> None:
    target = verified_path(dest)
    # Unique per writer: two threads completing one entry never share a temp file.
    tmp = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    data: dict[str, int | str] = {"size": hashes.size, "sha256": hashes.sha256, "md5": hashes.md5}
    if hashes.crc32 is not None:
        # An added key: envpack from before reads these files still, and ignores it.
        data["crc32"] = hashes.crc32
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, target)


def forget(dest: Path) -> None:
    """Drop a cached package that turned out not to be what its path promises."""
    dest.unlink(missing_ok=True)
    verified_path(dest).unlink(missing_ok=True)


def hash_file(path: Path) -> Hashes:
    digest = Digest()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hashes()


def matches_key(dest: Path, hashes: Hashes) -> bool:
    """Whether the file is the one its cache folder (``<sha256>`` or ``md5-<md5>``) names."""
    key = dest.parent.name
    return key == (f"md5-{hashes.md5}" if key.startswith("md5-") else hashes.sha256)


def mismatch(record: LockedPackage, hashes: Hashes) -> tuple[str, str] | None:
    """(expected, got) for the first of size, sha256, md5 that ``hashes`` gets wrong, else None."""
    if record.size and hashes.size != record.size:
        return f"size {record.size}", f"size {hashes.size}"
    if record.sha256 and hashes.sha256 != record.sha256:
        return f"sha256 {record.sha256}", f"sha256 {hashes.sha256}"
    if record.md5 and hashes.md5 != record.md5:
        return f"md5 {record.md5}", f"md5 {hashes.md5}"
    return None


class Stopped(Exception):
    """The run is being stopped (Ctrl-C or another download's failure)."""


class EntryLock:
    """Exclusive use of one cache entry across threads and processes."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.part = part_path(dest)
        self.path = dest.with_name(f"{dest.name}.lock")
        self._fd: int | None = None

    def acquire(self, stop: threading.Event) -> None:
        """Wait for the lock, polling so that ``stop`` ends the wait."""
        while True:
            if stop.is_set():
                raise Stopped
            try:
                self.dest.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise DownloadError(f"cannot write {self.path}: {exc.strerror}") from None
            try:
                taken = _try_lock(fd)
                if taken and self._is_current(fd):
                    self._fd = fd
                    return
            except OSError as exc:
                os.close(fd)
                raise DownloadError(f"cannot lock {self.path}: {exc.strerror}") from None
            except BaseException:
                os.close(fd)
                raise
            if taken:
                _unlock(fd)
            os.close(fd)
            stop.wait(POLL)

    def _is_current(self, fd: int) -> bool:
        """True while the lock file at ``self.path`` is the one ``fd`` holds (a releasing owner
        removes it, and a waiter must then lock the new one instead)."""
        try:
            return os.path.samestat(os.fstat(fd), os.stat(self.path))
        except OSError:
            return False

    @property
    def held(self) -> bool:
        return self._fd is not None and self._is_current(self._fd)

    def adopt_old_part(self) -> None:
        """Earlier envpack named part files ``<fn>.<pid>.part``: resume such a leftover too."""
        if self.part.exists():
            return
        pattern = re.compile(re.escape(self.dest.name) + r"\.\d+\.part")
        for old in self.dest.parent.iterdir():
            if pattern.fullmatch(old.name):
                os.replace(old, self.part)
                return

    def discard_part(self) -> None:
        """Delete the part file, unless the lock was taken from us (see :meth:`abandon`)."""
        if self.held:
            self.part.unlink(missing_ok=True)

    def abandon(self) -> None:
        """From another thread, for a worker that does not answer the stop in time: remove its
        part and lock file now; the worker, once it wakes, sees it no longer holds the lock and
        touches nothing (a new build may own these names by then)."""
        if self.held:
            self.part.unlink(missing_ok=True)
            self.path.unlink(missing_ok=True)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        mine = self._is_current(fd)
        if mine and sys.platform != "win32":
            # Removed while still locked: a waiter then finds its file gone and starts afresh.
            self.path.unlink(missing_ok=True)
        _unlock(fd)
        os.close(fd)
        if mine and sys.platform == "win32":
            # Windows cannot remove a file another process has open; it stays for that one.
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)


if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        with contextlib.suppress(OSError):
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
