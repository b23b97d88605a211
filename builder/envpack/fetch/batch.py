"""One :meth:`~envpack.fetch.download.Fetcher.start`: its downloads, the futures it handed out,
and its first failure.

Every record handed to ``start`` gets a future of its own. Records that share one cache file
(an imported lock's record and micromamba's own solve of the same package) are fetched once, by
the most complete of them; the others are checked against the hashes that download measured.

A failure behaves as :meth:`~envpack.fetch.download.Fetcher.fetch_all` always did: downloads not
yet begun are dropped, running ones finish into the cache (ready for the next run), and only then
does every future not yet resolved fail, all with that first failure; nothing resolves with a
path after it. A caller waiting on any future, in any order, therefore sees the error only once
the workers are done with the cache, and the same error whichever future it waits on. (A
download that completes just as another fails may still resolve its own future with its path.)
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

from envpack.lock.record import LockedPackage


class Skipped(Exception):
    """A download not begun because another one failed first (never reaches a caller)."""


class Batch:
    def __init__(
        self,
        groups: Sequence[list[LockedPackage]],
        fetch: Callable[[LockedPackage], Path],
        judge: Callable[[LockedPackage, Path], None],
        workers: int,
        on_end: Callable[[Batch], None],
    ) -> None:
        """``groups``: records sharing one cache file, the one to download first; ``judge``
        checks another record of a group against the downloaded file; ``on_end`` runs once,
        when no worker of this batch is left running."""
        self._fetch = fetch
        self._judge = judge
        self._on_end = on_end
        self._lock = threading.Lock()
        self.failure: BaseException | None = None
        self.ended = threading.Event()
        self.outputs: dict[LockedPackage, Future[Path]] = {}
        for group in groups:
            for record in group:
                self.outputs.setdefault(record, Future())
        self._groups = groups
        self._workers = workers
        self._remaining = len(groups)
        self._jobs: list[Future[Path]] = []

    def begin(self) -> None:
        if not self._groups:
            self._end()
            return
        pool = ThreadPoolExecutor(max_workers=max(1, min(self._workers, len(self._groups))))
        for group in self._groups:
            job = pool.submit(self._run, group[0])
            with self._lock:
                self._jobs.append(job)
            job.add_done_callback(functools.partial(self._done, group))
        # No new work comes: the pool's threads exit as the queue drains.
        pool.shutdown(wait=False)

    def _run(self, record: LockedPackage) -> Path:
        if self.failure is not None:
            raise Skipped
        return self._fetch(record)

    def _done(self, group: list[LockedPackage], job: Future[Path]) -> None:
        # Runs in the worker that finished (or in whoever cancelled the job); must not raise.
        error = None if job.cancelled() else job.exception()
        path = None if job.cancelled() or error is not None else job.result()
        if path is not None:
            for record in group[1:]:
                try:
                    self._judge(record, path)
                except Exception as exc:
                    error = exc
                    break
        with self._lock:
            if error is not None and not isinstance(error, Skipped) and self.failure is None:
                self.failure = error
                queued = list(self._jobs)
            else:
                queued = []
            succeeded = path is not None and self.failure is None
        if succeeded and path is not None:
            # Outside the lock: a caller's callback on the future may call back in. Before
            # the count below: the end, which fails whatever is unresolved, cannot come first.
            for record in group:
                self.outputs[record].set_result(path)
        with self._lock:
            self._remaining -= 1
            last = self._remaining == 0
        for other in queued:
            other.cancel()  # only those not begun; their callbacks run here, the lock released
        if last:
            self._end()

    def _end(self) -> None:
        try:
            self._on_end(self)
        finally:
            self.ended.set()
            failure = self.failure or Skipped("the build stopped before this package was fetched")
            for future in self.outputs.values():
                if not future.done():
                    # Every future left gets the first failure (a KeyboardInterrupt included).
                    future.set_exception(failure)

    def drop_queued(self, reason: BaseException | None) -> None:
        """Drop every download not begun yet; unresolved futures will fail with ``reason`` (a
        KeyboardInterrupt for Ctrl-C), or as the downloads end if None."""
        with self._lock:
            if self.failure is None and reason is not None:
                self.failure = reason
            jobs = list(self._jobs)
        for job in jobs:
            job.cancel()

    def running(self) -> list[Future[Path]]:
        with self._lock:
            return [job for job in self._jobs if not job.done()]

    def wait_workers(self, timeout: float | None = None) -> bool:
        """Wait until no worker of this batch is running (at most ``timeout`` seconds);
        True if none is."""
        if timeout is not None:
            wait(self.running(), timeout=timeout)
            return self.ended.is_set()
        while not self.ended.wait(0.5):
            pass  # short steps: on Windows, Ctrl-C reaches a main thread only between them
        return True
