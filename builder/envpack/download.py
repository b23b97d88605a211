"""Fetching packages into the shared cache: concurrent, streaming, resumable, verified.

A cached file lives at ``<cache>/pkgs/<sha256>/<fn>`` and only ever gets there by an atomic rename
after its size and sha256 were checked while streaming. So its presence (with the right size) is
proof enough, and a warm build re-hashes nothing unless asked (``verify_cache``).
"""

from __future__ import annotations

import errno
import hashlib
import os
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from . import __version__
from .channels import Channel, credentialed_url, file_url_to_path, redact
from .errors import ChecksumError, DownloadError, EnvpackError
from .lock import LockedPackage

if TYPE_CHECKING:
    import httpx

CHUNK = 1 << 20
RETRY_STATUS = {408, 429, 500, 502, 503, 504}


class Progress(Protocol):
    def start(self, total_bytes: int, count: int) -> None: ...
    def advance(self, nbytes: int) -> None: ...
    def finished(self, record: LockedPackage, cached: bool) -> None: ...


class NullProgress:
    def start(self, total_bytes: int, count: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def finished(self, record: LockedPackage, cached: bool) -> None:
        pass


@dataclass(frozen=True)
class FetchOptions:
    cache_dir: Path
    concurrency: int = 8
    retries: int = 5
    backoff: float = 0.5
    timeout: float = 60.0
    offline: bool = False
    verify_cache: bool = False


def cache_path(cache_dir: Path, record: LockedPackage) -> Path:
    # Records imported from @EXPLICIT files may know only an md5 until first downloaded.
    return cache_dir / "pkgs" / (record.sha256 or f"md5-{record.md5}") / record.fn


def _incomplete(record: LockedPackage) -> bool:
    """Imported records may lack a size, a sha256 (``@EXPLICIT`` with md5) or an md5 (``conda list
    --explicit --sha256``); the download completes them, and env.txt needs the md5."""
    return not (record.sha256 and record.md5 and record.size)


class _Digest:
    """sha256 always; md5 too when the record lacks either hash."""

    def __init__(self, record: LockedPackage) -> None:
        self.sha256 = hashlib.sha256()
        with_md5 = not record.sha256 or not record.md5
        self.md5 = hashlib.md5(usedforsecurity=False) if with_md5 else None

    def update(self, chunk: bytes) -> None:
        self.sha256.update(chunk)
        if self.md5 is not None:
            self.md5.update(chunk)


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


def make_client(options: FetchOptions) -> httpx.Client:
    # Imported here: a warm build never downloads, and httpx is a third of envpack's import time.
    import httpx

    # trust_env picks up HTTP(S)_PROXY / NO_PROXY as httpx users expect.
    return httpx.Client(
        verify=ssl_context(),
        trust_env=True,
        timeout=httpx.Timeout(options.timeout, connect=min(options.timeout, 15.0)),
        follow_redirects=True,
        headers={"User-Agent": f"envpack/{__version__}"},
        limits=httpx.Limits(max_connections=options.concurrency * 2),
    )


def _disk_error(exc: OSError, path: Path) -> EnvpackError:
    if exc.errno == errno.ENOSPC:
        return EnvpackError(f"disk full while writing {path}; free some space and build again")
    return EnvpackError(f"cannot write {path}: {exc.strerror}")


class Fetcher:
    def __init__(
        self,
        options: FetchOptions,
        channels: Sequence[Channel] = (),
        progress: Progress | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.options = options
        self.channels = list(channels)
        self.progress = progress or NullProgress()
        self._sleep = sleep
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        # Records that arrived without a size or sha256, completed from what was downloaded.
        self.completed: dict[LockedPackage, LockedPackage] = {}

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = make_client(self.options)
            return self._client

    def fetch_all(self, records: Sequence[LockedPackage]) -> dict[LockedPackage, Path]:
        """Ensure every record is in the cache; return where each one is."""
        # Two records of one file (an imported lock's and micromamba's own solve of vc14_runtime,
        # say) share a cache path: fetch each path once, or two threads write one file.
        groups: dict[Path, list[LockedPackage]] = {}
        for r in sorted(set(records)):
            groups.setdefault(cache_path(self.options.cache_dir, r), []).append(r)
        # The most complete record of a group is the one to verify against.
        unique = [
            max(g, key=lambda r: (bool(r.sha256), bool(r.md5), r.size)) for g in groups.values()
        ]
        self.progress.start(sum(r.size for r in unique), len(unique))
        fetched: dict[LockedPackage, Path] = {}
        try:
            if self.options.concurrency <= 1 or len(unique) <= 1:
                for r in unique:
                    fetched[r] = self.fetch(r)
            else:
                pool = ThreadPoolExecutor(max_workers=self.options.concurrency)
                try:
                    futures = {pool.submit(self.fetch, r): r for r in unique}
                    for future in as_completed(futures):
                        fetched[futures[future]] = future.result()
                finally:
                    # On the first failure, queued downloads are dropped, not run to no purpose.
                    pool.shutdown(wait=True, cancel_futures=True)
        finally:
            if self._client is not None:
                self._client.close()
                self._client = None
        results: dict[LockedPackage, Path] = {}
        for rep, path in fetched.items():
            full = self.completed.get(rep, rep)
            for r in groups[cache_path(self.options.cache_dir, rep)]:
                results[r] = path
                if r is not rep and _incomplete(r):
                    self.completed[r] = replace(r, size=full.size, sha256=full.sha256, md5=full.md5)
        return results

    def fetch(self, record: LockedPackage) -> Path:
        dest = cache_path(self.options.cache_dir, record)
        if dest.is_file() and (record.size == 0 or dest.stat().st_size == record.size):
            # Hash a cached file only when asked to, or to complete an imported record; once.
            digest = None
            if self.options.verify_cache or _incomplete(record):
                digest = _hash_file(dest, record)
            if not self.options.verify_cache or not _mismatch(record, dest, digest):
                if digest is not None and _incomplete(record):
                    self._complete(record, dest, digest)
                self.progress.advance(record.size)
                self.progress.finished(record, cached=True)
                return dest
            dest.unlink()
        url = credentialed_url(record.url, self.channels)
        if url.startswith("file://"):
            self._copy_local(record, self._local_source(record, file_url_to_path(url)), dest)
        elif self.options.offline:
            raise DownloadError(
                f"{record.fn} is not in the cache ({self.options.cache_dir}) and --offline "
                "forbids downloading it; build once online or drop --offline"
            )
        else:
            self._download(record, url, dest)
        self.progress.finished(record, cached=False)
        return dest

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

    def _copy_local(self, record: LockedPackage, src: Path, dest: Path) -> None:
        if not src.is_file():
            raise DownloadError(f"{record.fn}: not found in local channel ({src})")
        part = _part_path(dest)
        digest = _Digest(record)
        try:
            with src.open("rb") as fin, part.open("wb") as fout:
                while chunk := fin.read(CHUNK):
                    digest.update(chunk)
                    fout.write(chunk)
                    self.progress.advance(len(chunk))
        except OSError as exc:
            part.unlink(missing_ok=True)
            raise _disk_error(exc, part) from None
        self._finish(record, part, dest, digest, src.as_uri())

    def _download(self, record: LockedPackage, url: str, dest: Path) -> None:
        public = redact(url)
        part = _part_path(dest)
        attempt = 0
        restarted = False
        while True:
            attempt += 1
            digest = _Digest(record)
            have = 0
            if part.exists():
                with part.open("rb") as fh:
                    while chunk := fh.read(CHUNK):
                        digest.update(chunk)
                        have += len(chunk)
                if record.size and have >= record.size:
                    part.unlink()
                    digest, have = _Digest(record), 0
            try:
                digest = self._stream(url, part, digest, have, record)
            except _Retryable as exc:
                if attempt > self.options.retries:
                    kind = "truncated download" if exc.truncated else "download failed"
                    raise DownloadError(
                        f"{record.fn}: {kind} after {attempt} attempts from {public}: {exc}"
                    ) from None
                self._sleep(min(self.options.backoff * 2 ** (attempt - 1), 30.0))
                continue
            try:
                self._finish(record, part, dest, digest, public)
            except ChecksumError:
                # A resumed transfer may have glued two different files together: one clean retry.
                if restarted:
                    raise
                restarted = True
                continue
            return

    def _stream(
        self, url: str, part: Path, digest: _Digest, have: int, record: LockedPackage
    ) -> _Digest:
        """Append the rest of the file to ``part``; return the digest of the whole part."""
        import httpx

        headers = {"Range": f"bytes={have}-"} if have else {}
        public = redact(url)
        try:
            with self._http().stream("GET", url, headers=headers) as resp:
                if resp.status_code in RETRY_STATUS:
                    raise _Retryable(f"HTTP {resp.status_code}")
                if resp.status_code == 416 and have:
                    # The part file already holds all the server has.
                    part.unlink(missing_ok=True)
                    if record.size and have < record.size:
                        raise DownloadError(
                            f"{record.fn}: truncated download from {public}: the server has "
                            f"only {have} of the {record.size} bytes the lock records"
                        )
                    raise _Retryable("HTTP 416 for a resumed download: starting over")
                if resp.status_code == 404:
                    raise DownloadError(
                        f"{record.fn}: not found (HTTP 404) at {public}; the channel may have "
                        "removed it: lock again"
                    )
                if resp.status_code in (401, 403):
                    raise DownloadError(
                        f"{record.fn}: access denied (HTTP {resp.status_code}) at {public}; "
                        "check the channel's token or credentials"
                    )
                if resp.status_code not in (200, 206):
                    raise DownloadError(f"{record.fn}: HTTP {resp.status_code} from {public}")
                mode = "ab"
                if resp.status_code == 200 and have:
                    # The server ignored the Range header: start over.
                    mode, have = "wb", 0
                    digest = _Digest(record)
                got = have
                try:
                    with part.open(mode) as fh:
                        for (
                            chunk
                        ) in resp.iter_bytes():  # as read: re-chunking costs a copy per read
                            got += len(chunk)
                            if record.size and got > record.size:
                                raise ChecksumError(
                                    f"{record.fn}: server sent more than the expected "
                                    f"{record.size} bytes from {public}"
                                )
                            digest.update(chunk)
                            fh.write(chunk)
                            self.progress.advance(len(chunk))
                except OSError as exc:
                    raise _disk_error(exc, part) from None
                expected = record.size or int(resp.headers.get("Content-Length", 0)) + have
                if got < expected:
                    raise _Retryable(f"got {got} of {record.size} bytes", truncated=True)
                return digest
        except httpx.TransportError as exc:
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                # Retrying cannot fix trust; say what will.
                raise DownloadError(
                    f"{record.fn}: download failed from {public}: the server's TLS certificate is "
                    "not trusted; name your CA bundle in SSL_CERT_FILE or REQUESTS_CA_BUNDLE"
                ) from None
            raise _Retryable(
                f"{type(exc).__name__}: {redact(str(exc)) or 'connection error'}",
                truncated=isinstance(exc, httpx.RemoteProtocolError),
            ) from None

    def _finish(
        self, record: LockedPackage, part: Path, dest: Path, digest: _Digest, source: str
    ) -> None:
        mismatch = _mismatch(record, part, digest)
        if mismatch:
            part.unlink(missing_ok=True)
            want, got = mismatch
            raise ChecksumError(
                f"checksum mismatch for {record.fn} from {redact(source)}: expected {want}, "
                f"got {got}; the file is corrupt or the channel changed it: lock again"
            )
        os.replace(part, dest)
        if _incomplete(record):
            self._complete(record, dest, digest)

    def _complete(self, record: LockedPackage, path: Path, digest: _Digest) -> None:
        """Record the size and hashes an imported record lacked, from the verified file."""
        md5 = digest.md5.hexdigest() if digest.md5 is not None else record.md5
        with self._lock:
            self.completed[record] = replace(
                record, size=path.stat().st_size, sha256=digest.sha256.hexdigest(), md5=md5
            )


class _Retryable(Exception):
    def __init__(self, message: str, truncated: bool = False) -> None:
        super().__init__(message)
        self.truncated = truncated


def _part_path(dest: Path) -> Path:
    # One part file per process: two builds sharing a cache never write into the same file.
    # (Within a process, fetch_all fetches each cache path once.)
    dest.parent.mkdir(parents=True, exist_ok=True)
    return dest.with_name(f"{dest.name}.{os.getpid()}.part")


def _hash_file(path: Path, record: LockedPackage) -> _Digest:
    digest = _Digest(record)
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest


def _mismatch(record: LockedPackage, path: Path, digest: _Digest | None) -> tuple[str, str] | None:
    """(expected, got) for the first of size, sha256, md5 that ``path`` gets wrong, else None."""
    size = path.stat().st_size
    if record.size and size != record.size:
        return f"size {record.size}", f"size {size}"
    if digest is None:
        return None
    if record.sha256 and digest.sha256.hexdigest() != record.sha256:
        return f"sha256 {record.sha256}", f"sha256 {digest.sha256.hexdigest()}"
    if record.md5 and digest.md5 is not None and digest.md5.hexdigest() != record.md5:
        return f"md5 {record.md5}", f"md5 {digest.md5.hexdigest()}"
    return None
