"""Package bodies copied into the bundle two at a time, while the writer goes on.

A warm build is mostly package files copied into the bundle (:mod:`.kcopy`), and one thread
copying one body after another left this 2-core machine's second core idle: copying the 1.5 GB
benchmark channel into one file on ext4 took 0.37-0.40 s from one thread and 0.30-0.37 s from two
(the plain copy; with copy_file_range 0.44-0.46 s and 0.43-0.49 s: bench/FINDINGS.md, round 4).
The writer hands each body to :class:`BackgroundCopies` and goes on to the next header; at most
``workers`` bodies are in flight, so the writer never runs far ahead and holds at most that many
open source files.

Each worker writes through its **own descriptor** of the output file: ``os.sendfile`` (the copy
used where ``copy_file_range`` cannot, e.g. across filesystems) moves the descriptor's file
position, which the writer's buffered file object relies on. Bodies and headers never overlap, so
the order in which their bytes land does not matter: the file's bytes are those of a sequential
write.

A failed copy (a full disk, a source that ended early) is raised in the writer's thread, at its
next hand-over or at :meth:`BackgroundCopies.wait`; :meth:`BackgroundCopies.close` stops the
copies in flight after their current step (Ctrl-C, an error elsewhere) before the files are
removed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from envpack.archive.kcopy import Method, copy_methods, copy_range, reserve

WORKERS = 2


class _Stopped(Exception):
    """A copy stopped by :meth:`BackgroundCopies.close`: nobody waits for its result."""


class BackgroundCopies:
    """Copies byte ranges of other files into the file at ``path``, from up to ``workers``
    threads. Only the thread that made it calls its methods."""

    def __init__(self, path: Path, workers: int = WORKERS) -> None:
        self._path = path
        self._limit = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="envpack-copy")
        self._running: set[Future[None]] = set()
        self._local = threading.local()
        self._fds: list[int] = []
        self._fds_lock = threading.Lock()
        self._stop = threading.Event()
        self._closed = False
        self._unfinished = False

    def submit(
        self,
        src: int,
        src_off: int,
        dst_off: int,
        count: int,
        short: Callable[[int], BaseException],
        advance: Callable[[int], None] | None = None,
    ) -> None:
        """Copy ``count`` bytes of ``src`` from ``src_off`` to ``dst_off`` of the file, soon.

        ``src`` is duplicated: the caller may close its descriptor at once. A copy that gets
        fewer bytes raises ``short(copied)``. Raises the error of an earlier copy, if any.
        """
        self._collect(block=len(self._running) >= self._limit)
        mine = os.dup(src)
        try:
            future = self._pool.submit(self._copy, mine, src_off, dst_off, count, short, advance)
        except RuntimeError:
            # Refused before it was queued (the pool is shut down). Any later interruption
            # (Ctrl-C while submit starts a thread) leaves the job queued: the worker owns
            # ``mine`` then and closes it, and close() stops it.
            os.close(mine)
            raise
        self._running.add(future)

    def wait(self) -> None:
        """Return once every copy is done; raise the first failure."""
        while self._running:
            self._collect(block=True)

    @property
    def stopped_unfinished(self) -> bool:
        """Whether :meth:`close` stopped copies that had not finished: the file has holes."""
        return self._unfinished

    def close(self) -> None:
        """Stop the copies still running (after their current step), then close every
        descriptor. Safe to call twice; raises nothing about the copies."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._pool.shutdown(wait=True)
        # Every copy has ended now: one that was stopped or failed left a hole.
        self._unfinished = any(f.exception() is not None for f in self._running)
        self._running.clear()
        with self._fds_lock:
            fds, self._fds = self._fds, []
        for fd in fds:
            os.close(fd)

    def _collect(self, block: bool) -> None:
        if not self._running:
            return
        if block:
            done: set[Future[None]] = set()
            while not done:
                # In short waits: on Windows before Python 3.14 a lock wait without a timeout
                # cannot be interrupted, and Ctrl-C would wait for a whole package's copy.
                done, _ = wait(self._running, timeout=0.25, return_when=FIRST_COMPLETED)
        else:
            done = {f for f in self._running if f.done()}
        for future in done:
            self._running.discard(future)
            future.result()  # a worker's error, raised here in the writer's thread

    def _copy(
        self,
        src: int,
        src_off: int,
        dst_off: int,
        count: int,
        short: Callable[[int], BaseException],
        advance: Callable[[int], None] | None,
    ) -> None:
        try:
            if self._stop.is_set():
                raise _Stopped
            dst, methods = self._thread_state()
            reserve(dst, dst_off, count)

            def step(n: int) -> None:
                if self._stop.is_set():
                    raise _Stopped  # between two steps of at most kcopy.COPY_STEP bytes
                if advance is not None:
                    advance(n)

            copied = copy_range(src, src_off, dst, dst_off, count, step, methods)
            if copied != count:
                raise short(copied)
        finally:
            os.close(src)

    def _thread_state(self) -> tuple[int, list[Method]]:
        """This worker's descriptor of the file and its copy methods (a method the kernel
        refused once is not asked again by the same worker)."""
        state: tuple[int, list[Method]] | None = getattr(self._local, "state", None)
        if state is None:
            # O_BINARY: Windows' C runtime would otherwise open it in text mode, and the plain
            # copy (Windows has neither kernel copy) would write CR before every LF.
            fd = os.open(self._path, os.O_WRONLY | getattr(os, "O_BINARY", 0))
            with self._fds_lock:
                self._fds.append(fd)
            state = (fd, copy_methods(fd))
            self._local.state = state
        return state
