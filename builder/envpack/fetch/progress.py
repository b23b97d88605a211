"""Download progress for the CLI: a rich bar on a terminal, plain lines otherwise.

Both write to stderr (stdout carries only the command's result), and ``close`` is always called,
on success or failure, so the terminal's cursor is never left hidden.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from envpack.lock.record import LockedPackage


class Progress(Protocol):
    def start(self, total_bytes: int, count: int) -> None: ...
    def advance(self, nbytes: int) -> None: ...
    def finished(self, record: LockedPackage, cached: bool) -> None: ...
    def close(self) -> None: ...


class NullProgress:
    def start(self, total_bytes: int, count: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def finished(self, record: LockedPackage, cached: bool) -> None:
        pass

    def close(self) -> None:
        pass


class PlainProgress:
    def __init__(self, emit: Callable[[str], None]) -> None:
        self._emit = emit
        self._lock = threading.Lock()
        self._done = 0
        self._count = 0

    def start(self, total_bytes: int, count: int) -> None:
        self._count = count

    def advance(self, nbytes: int) -> None:
        pass

    def finished(self, record: LockedPackage, cached: bool) -> None:
        with self._lock:
            self._done += 1
            how = "cached" if cached else "fetched"
            self._emit(f"[{self._done}/{self._count}] {how} {record.fn}")

    def close(self) -> None:
        pass


class RichProgress:
    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TransferSpeedColumn,
        )

        self._progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=Console(stderr=True),
            transient=True,
            # stdout is the command's result: never route it through the bar.
            redirect_stdout=False,
        )
        self._task = self._progress.add_task("packages", total=0)
        self._lock = threading.RLock()  # finished() closes the bar while holding it
        self._done = 0
        self._count = 0
        self._started = False

    def start(self, total_bytes: int, count: int) -> None:
        self._count = count
        self._started = True
        self._progress.update(self._task, total=total_bytes, description=f"0/{count} packages")
        self._progress.start()

    def advance(self, nbytes: int) -> None:
        self._progress.advance(self._task, nbytes)

    def finished(self, record: LockedPackage, cached: bool) -> None:
        with self._lock:
            self._done += 1
            self._progress.update(self._task, description=f"{self._done}/{self._count} packages")
            if self._done >= self._count:
                self.close()

    def close(self) -> None:
        with self._lock:
            if self._started:
                self._started = False
                self._progress.stop()
