"""Fetching packages into the shared cache: concurrent, streaming, resumable, verified, stoppable.

A cached file lives at ``<cache>/pkgs/<sha256>/<fn>`` and only ever gets there by an atomic rename
after its size, sha256 and md5 were checked while streaming; the hashes measured then, and its
CRC-32 for the zip writer (:func:`envpack.fetch.cache.read_crc32`), are kept beside it (see
:mod:`.partfile`), so a warm build checks every hash the lock records against them without
reading the file again (``verify_cache`` re-hashes the file itself, and keeps its CRC-32 too).

:meth:`Fetcher.start` starts every download and returns a future per record at once, so a
caller can use each package as it lands; :meth:`Fetcher.fetch_all` is start, then wait. Bodies
are read with http.client (:mod:`.direct`), or with httpx when a proxy is configured
(:mod:`.http`), into one reused buffer (:mod:`.receive`).

How long a download may take (``FetchOptions.timeout``, the CLI's ``--timeout`` /
``ENVPACK_TIMEOUT``, default 60 s):

- connecting may take up to ``timeout`` seconds (at most 15), and each read may wait ``timeout``
  seconds for data: a server that stops sending fails the attempt after ``timeout`` seconds;
- a server that keeps sending, but less than ``receive.MIN_RATE`` (1 KiB/s) on average over a
  window of ``timeout`` seconds, fails the attempt too (a 1-byte-per-second trickle cannot hold
  a build);
- a failed attempt is retried ``retries`` times with exponential backoff (0.5 s, 1 s, 2 s, ... at
  most 30 s), resuming with an HTTP Range request; two attempts in a row that received nothing
  end the download at once. A checksum or size failure is never retried: it would not change.

A record without a size (imported from conda-lock v1 or ``@EXPLICIT``) is read up to a cap,
``ENVPACK_MAX_PACKAGE_SIZE`` bytes (default 4 GiB); a record with a size is read up to that size
and not one byte more.

On the first failure, queued downloads are dropped and running ones finish into the cache (see
:mod:`.batch`). Ctrl-C (:meth:`Fetcher.halt`) ends every download within a second: workers
check it between reads and while they wait, and their connections are shut down under them.
Every failure and interrupt deletes the part file; only a kill leaves one, to be resumed by the
next run.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from envpack.channels import Channel, credentialed_url, file_url_to_path, redact
from envpack.errors import ChecksumError, DownloadError, EnvpackError
from envpack.fetch.batch import Batch, Skipped
from envpack.fetch.partfile import (
    Digest,
    EntryLock,
    Hashes,
    Stopped,
    forget,
    hash_file,
    matches_key,
    mismatch,
    read_verified,
    write_verified,
)
from envpack.fetch.progress import NullProgress, Progress
from envpack.fetch.sockets import Sockets
from envpack.limits import CHUNK
from envpack.lock.record import LockedPackage

# The transports (http.client, ssl, httpx) and .receive are imported where a download or a
# copy from a file:// channel begins, not here: a warm build finds every package in the cache
# and never needs them (issue 18: they were a tenth of a warm build's start-up).
if TYPE_CHECKING:
    from envpack.fetch.direct import DirectTransport
    from envpack.fetch.http import HttpxTransport

RETRY_STATUS = {408, 429, 500, 502, 503, 504}
DEFAULT_MAX_SIZE = 4 << 30
MAX_SIZE_VAR = "ENVPACK_MAX_PACKAGE_SIZE"
STOP_GRACE = 1.0  # seconds the workers get to notice a stop before their files are removed


@dataclass(frozen=True)
class FetchOptions:
    cache_dir: Path
    concurrency: int = 8
    retries: int = 5
    backoff: float = 0.5
    timeout: float = 60.0  # seconds without progress; also the window of the MIN_RATE check
    offline: bool = False
    verify_cache: bool = False
    max_size: int = 0  # cap for records without a size; 0: ENVPACK_MAX_PACKAGE_SIZE or 4 GiB


def cache_path(cache_dir: Path, record: LockedPackage) -> Path:
    # Records imported from @EXPLICIT files may know only an md5 until first downloaded.
    return cache_dir / "pkgs" / (record.sha256 or f"md5-{record.md5}") / record.fn


def max_package_size(options: FetchOptions) -> int:
    if options.max_size:
        return options.max_size
    text = os.environ.get(MAX_SIZE_VAR, "").strip()
    if not text:
        return DEFAULT_MAX_SIZE
    m = re.fullmatch(r"(\d+)\s*([KMGT]?)(?:I?B)?", text, re.IGNORECASE)
    if not m or int(m.group(1)) == 0:
        raise EnvpackError(f"{MAX_SIZE_VAR}={text!r} is not a size; use bytes, or e.g. 500M, 8G")
    return int(m.group(1)) << (10 * " KMGT".index(m.group(2).upper() or " "))


def _incomplete(record: LockedPackage) -> bool:
    """Imported records may lack a size, a sha256 (``@EXPLICIT`` with md5) or an md5 (``conda list
    --explicit --sha256``); the download completes them, and env.txt needs the md5."""
    return not (record.sha256 and record.md5 and record.size)


class Fetcher:
    def __init__(
        self,
        options: FetchOptions,
        channels: Sequence[Channel] = (),
        progress: Progress | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.options = options
        self.channels = list(channels)
        self.progress = progress or NullProgress()
        self._sleep = sleep
        self.max_size = max_package_size(options)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sockets = Sockets(self._stop)  # every connection opened, to shut down on stop()
        self._direct: DirectTransport | None = None
        self._httpx: HttpxTransport | None = None
        self._proxied: bool | None = None  # whether a proxy is configured: httpx then
        self._entries: set[EntryLock] = set()  # cache entries being written right now
        self._batches: set[Batch] = set()  # every start() whose downloads are not all done
        # Records that arrived without a size or sha256, completed from what was downloaded.
        self.completed: dict[LockedPackage, LockedPackage] = {}

    def _transport(self, coded: bool = False) -> DirectTransport | HttpxTransport:
        """httpx when a proxy is configured (or for a body a server coded anyway), else the
        standard library's http.client, which reads bodies with less CPU (see :mod:`.direct`)."""
        from envpack.fetch.direct import DirectTransport
        from envpack.fetch.http import HttpxTransport, proxy_configured

        with self._lock:
            if self._proxied is None:
                self._proxied = proxy_configured()
            if self._proxied or coded:
                if self._httpx is None:
                    opts = self.options
                    self._httpx = HttpxTransport(opts.timeout, opts.concurrency, self._sockets)
                return self._httpx
            if self._direct is None:
                self._direct = DirectTransport(self.options.timeout, self._sockets)
            return self._direct

    def stop(self) -> None:
        """End every download soon: workers see the flag between reads and while waiting, and
        a read blocked on a silent server is woken by shutting its connection down."""
        self._stop.set()
        self._sockets.shutdown_all()

    def start(self, records: Sequence[LockedPackage]) -> dict[LockedPackage, Future[Path]]:
        """Start fetching every record into the cache and return at once: a future per record,
        resolving to its cached file. Downloads begin in the order given, ``concurrency`` at a
        time. A failure resolves every future not resolved yet with that first failure, once the
        running downloads are done (see :mod:`.batch`). On Ctrl-C while waiting, call
        :meth:`halt`; on another error before every future is resolved, :meth:`cancel`."""
        return dict(self._begin(records).outputs)

    def fetch_all(self, records: Sequence[LockedPackage]) -> dict[LockedPackage, Path]:
        """Ensure every record is in the cache; return where each one is."""
        batch = self._begin(sorted(set(records)))
        results: dict[LockedPackage, Path] = {}
        try:
            for record, future in batch.outputs.items():
                results[record] = wait_for(future)
        except Exception:
            raise  # the futures fail only once this batch's workers are done
        except BaseException:
            self.halt()  # Ctrl-C: everything stops now
            raise
        # As before: progress and connections closed by the time this returns.
        batch.wait_workers()
        return results

    def _begin(self, records: Sequence[LockedPackage]) -> Batch:
        # Two records of one file (an imported lock's and micromamba's own solve of vc14_runtime,
        # say) share a cache path: fetch each path once, or two threads write one file.
        by_path: dict[Path, list[LockedPackage]] = {}
        for r in dict.fromkeys(records):
            by_path.setdefault(cache_path(self.options.cache_dir, r), []).append(r)
        groups = []
        for group in by_path.values():
            # The most complete record of a group is the one to verify against.
            rep = max(group, key=lambda r: (bool(r.sha256), bool(r.md5), r.size))
            groups.append([rep, *(r for r in group if r is not rep)])
        self.progress.start(sum(g[0].size for g in groups), len(groups))
        batch = Batch(groups, self.fetch, self._judge_file, self.options.concurrency, self._ended)
        with self._lock:
            self._batches.add(batch)
        batch.begin()
        return batch

    def _judge_file(self, record: LockedPackage, path: Path) -> None:
        """Check another record of one cache file against the hashes its download measured."""
        known = read_verified(path)
        if known is not None:
            # The other records of one file must agree with it too (an md5 each).
            self._judge(record, known)

    def _ended(self, batch: Batch) -> None:
        """A batch's last download is done: what fetch_all did once every future was in."""
        self.progress.close()
        with self._lock:
            self._batches.discard(batch)
            idle = not self._batches
            transports = [self._direct, self._httpx] if idle else []
        for transport in transports:
            if transport is not None:
                transport.close()
        if idle:
            self._sockets.clear()

    def cancel(self) -> None:
        """As a failure does: drop the downloads not begun, let running ones finish into the
        cache (within their timeouts), and return when they have."""
        with self._lock:
            batches = list(self._batches)
        for batch in batches:
            batch.drop_queued(Skipped("the build stopped before this package was fetched"))
        try:
            for batch in batches:
                batch.wait_workers()
        except BaseException:
            self.halt()  # Ctrl-C while waiting: stop them now
            raise

    def halt(self) -> None:
        """Ctrl-C: stop every download now; remove the files of any worker that does not answer
        within ``STOP_GRACE`` seconds. Futures not resolved yet fail with KeyboardInterrupt."""
        with self._lock:
            batches = list(self._batches)
        for batch in batches:
            batch.drop_queued(KeyboardInterrupt())
        self.stop()
        deadline = time.monotonic() + STOP_GRACE
        for batch in batches:
            batch.wait_workers(max(0.0, deadline - time.monotonic()))
        with self._lock:
            stuck = list(self._entries)
        for entry in stuck:
            entry.abandon()
        self.progress.close()  # the cursor back now, even if a worker is stuck

    def fetch(self, record: LockedPackage) -> Path:
        dest = cache_path(self.options.cache_dir, record)
        if self._cached(record, dest):
            return dest
        entry = EntryLock(dest)
        entry.acquire(self._stop)
        with self._lock:
            self._entries.add(entry)
        try:
            # Another build sharing the cache may have fetched it while we waited for the lock.
            if self._cached(record, dest):
                return dest
            entry.adopt_old_part()
            url = credentialed_url(record.url, self.channels)
            if url.startswith("file://"):
                self._copy_local(record, self._local_source(record, file_url_to_path(url)), entry)
            elif self.options.offline:
                raise DownloadError(
                    f"{record.fn} is not in the cache ({self.options.cache_dir}) and --offline "
                    "forbids downloading it; build once online or drop --offline"
                )
            else:
                self._download(record, url, entry)
        except BaseException:
            entry.discard_part()
            raise
        finally:
            with self._lock:
                self._entries.discard(entry)
            entry.release()
        self.progress.finished(record, cached=False)
        return dest

    def _cached(self, record: LockedPackage, dest: Path) -> bool:
        """True if ``dest`` holds the package; a ChecksumError if the cached file (whose path
        promises one hash) disagrees with another hash or the size the record gives."""
        if not dest.is_file():
            return False
        known = read_verified(dest)
        if known is None or self.options.verify_cache:
            # A cache from before envpack kept hashes, or --verify-cache: hash the file, once.
            measured = hash_file(dest)
            if (known is not None and measured != known) or not matches_key(dest, measured):
                forget(dest)  # not the file its path promises: fetch it again
                return False
            if known is None or known.crc32 != measured.crc32:
                # The hashes agree (CRC-32 is no check): keep what was measured, CRC included.
                write_verified(dest, measured)
            known = measured
        self._judge(record, known)
        self.progress.advance(record.size)
        self.progress.finished(record, cached=True)
        return True

    def _judge(self, record: LockedPackage, known: Hashes) -> None:
        """Check a record against the hashes its cached file had when verified; complete it."""
        wrong = mismatch(record, known)
        if wrong:
            want, got = wrong
            raise ChecksumError(
                f"{record.fn}: the lock records {want}, but the cached file, verified by its "
                f"{'md5' if record.sha256 == '' else 'sha256'}, has {got}; the lock is "
                "inconsistent: lock again"
            )
        if _incomplete(record):
            self._complete(record, known)

    def _local_source(self, record: LockedPackage, src: Path) -> Path:
        """A local channel may have moved with its project since the lock was made: look for
        the file in the recipe's local channels too (its hash is checked all the same)."""
        if src.is_file():
            return src
        for channel in self.channels:
            if channel.is_local:
                candidate = channel.local_path / record.subdir / record.fn
                if candidate.is_file():
                    return candidate
        return src

    def _copy_local(self, record: LockedPackage, src: Path, entry: EntryLock) -> None:
        if not src.is_file():
            raise DownloadError(f"{record.fn}: not found in local channel ({src})")
        from envpack.fetch.receive import copy_file  # deferred: see the imports at the top

        digest = Digest()
        copy_file(
            src,
            entry.part,
            digest,
            record.size or self.max_size,
            self._stop,
            self.progress.advance,
            lambda: self._oversize(record, src.as_uri()),
        )
        self._finish(record, entry, digest, src.as_uri())

    def _pause(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
        elif self._stop.wait(seconds):
            raise Stopped
        if self._stop.is_set():
            raise Stopped

    def _download(self, record: LockedPackage, url: str, entry: EntryLock) -> None:
        from envpack.fetch.http import Retryable  # deferred: see the imports at the top

        public = redact(url)
        attempt = idle = 0
        restarted = False
        while True:
            attempt += 1
            digest = self._resume(record, entry)
            have = digest.size
            try:
                if not (record.size and have == record.size):
                    digest = self._stream(url, entry, digest, record)
            except Retryable as exc:
                progressed = entry.part.is_file() and entry.part.stat().st_size > have
                idle = 0 if progressed or not exc.stalled else idle + 1
                if attempt > self.options.retries or idle >= 2:
                    kind = "truncated download" if exc.truncated else "download failed"
                    raise DownloadError(
                        f"{record.fn}: {kind} after {attempt} attempts from {public}: {exc}"
                    ) from None
                self._pause(min(self.options.backoff * 2 ** (attempt - 1), 30.0))
                continue
            try:
                self._finish(record, entry, digest, public)
            except ChecksumError:
                # Bytes resumed from an earlier run may belong to another file the channel had
                # under this name: one clean start. A fresh download failing would fail again.
                if have == 0 or restarted:
                    raise
                restarted = True
                continue
            return

    def _resume(self, record: LockedPackage, entry: EntryLock) -> Digest:
        """The digest of what the part file already holds (a killed run's bytes)."""
        digest = Digest()
        if not entry.part.is_file():
            return digest
        with entry.part.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
        if digest.size > (record.size or self.max_size) or digest.size == 0:
            entry.part.unlink()
            return Digest()
        self.progress.advance(digest.size)
        return digest

    def _stream(self, url: str, entry: EntryLock, digest: Digest, record: LockedPackage) -> Digest:
        """Append the rest of the file to the part file; return the digest of the whole part."""
        from envpack.fetch.http import Fatal, Retryable
        from envpack.fetch.receive import receive

        have = digest.size
        headers = {"Range": f"bytes={have}-"} if have else {}
        public = redact(url)
        expected = 0
        try:
            body = self._transport().get(url, headers, self._stop)
            if body.header("Content-Encoding") not in ("", "identity"):
                # Coded although asked not to: httpx decodes it, as it always did.
                body.close()
                body = self._transport(coded=True).get(url, headers, self._stop)
            try:
                self._check_status(body.status, record, entry, have, public)
                if body.status == 200 and have:
                    # The server ignored the Range header: start over.
                    entry.part.unlink()
                    digest = Digest()
                length = body.header("Content-Length")
                if length.isdigit() and body.header("Content-Encoding") in ("identity", ""):
                    expected = digest.size + int(length)
                    self._check_announced(record, expected, public)
                receive(
                    body,
                    entry.part,
                    digest,
                    record.size or self.max_size,
                    max(self.options.timeout, 0.001),
                    self._stop,
                    self.progress.advance,
                    lambda: self._oversize(record, public),
                )
            finally:
                body.close()
        except Fatal as exc:
            raise DownloadError(f"{record.fn}: download failed from {public}: {exc}") from None
        want = record.size or expected
        if digest.size < want:
            raise Retryable(f"got {digest.size} of {want} bytes", truncated=True)
        return digest

    def _check_status(
        self, status: int, record: LockedPackage, entry: EntryLock, have: int, public: str
    ) -> None:
        from envpack.fetch.http import Retryable  # deferred: see the imports at the top

        if status in RETRY_STATUS:
            raise Retryable(f"HTTP {status}")
        if status == 416 and have:
            # The part file already holds all the server has.
            entry.part.unlink(missing_ok=True)
            if record.size and have < record.size:
                raise DownloadError(
                    f"{record.fn}: truncated download from {public}: the server has "
                    f"only {have} of the {record.size} bytes the lock records"
                )
            raise Retryable("HTTP 416 for a resumed download: starting over")
        if status == 404:
            raise DownloadError(
                f"{record.fn}: not found (HTTP 404) at {public}; the channel may have "
                "removed it: lock again"
            )
        if status in (401, 403):
            raise DownloadError(
                f"{record.fn}: access denied (HTTP {status}) at {public}; "
                "check the channel's token or credentials"
            )
        if status not in (200, 206):
            raise DownloadError(f"{record.fn}: HTTP {status} from {public}")

    def _check_announced(self, record: LockedPackage, total: int, public: str) -> None:
        """Refuse before reading a body whose announced length is already too long."""
        if total > (record.size or self.max_size):
            raise self._oversize(record, public, total)

    def _oversize(self, record: LockedPackage, source: str, total: int = 0) -> EnvpackError:
        amount = f"{total} bytes" if total else "more"
        if record.size:
            return ChecksumError(
                f"{record.fn}: {redact(source)} sent {amount} than the {record.size} bytes the "
                "lock records; the channel changed the file: lock again"
            )
        return DownloadError(
            f"{record.fn}: {redact(source)} sent {amount} than {self.max_size} bytes, the limit "
            f"for a package whose size the lock does not record; set {MAX_SIZE_VAR} to allow more"
        )

    def _finish(self, record: LockedPackage, entry: EntryLock, digest: Digest, source: str) -> None:
        hashes = digest.hashes()
        wrong = mismatch(record, hashes)
        if wrong:
            entry.discard_part()
            want, got = wrong
            raise ChecksumError(
                f"checksum mismatch for {record.fn} from {redact(source)}: expected {want}, "
                f"got {got}; the file is corrupt or the channel changed it: lock again"
            )
        try:
            write_verified(entry.dest, hashes)
            os.replace(entry.part, entry.dest)
        except OSError as exc:
            from envpack.fetch.receive import disk_error  # deferred: see the imports at the top

            raise disk_error(exc, entry.dest) from None
        if _incomplete(record):
            self._complete(record, hashes)

    def _complete(self, record: LockedPackage, hashes: Hashes) -> None:
        """Record the size and hashes an imported record lacked, from the verified file."""
        with self._lock:
            self.completed[record] = replace(
                record, size=hashes.size, sha256=hashes.sha256, md5=hashes.md5
            )


def wait_for(future: Future[Path]) -> Path:
    """The future's result, waiting in short steps: on Windows, Ctrl-C reaches a main thread
    only between them."""
    while True:
        try:
            return future.result(timeout=0.5)
        except FutureTimeout:
            if future.done():
                raise  # the download's own timeout, not the wait's
