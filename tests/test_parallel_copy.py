"""Package bodies copied into an unsplit zip from two threads (envpack.archive.copier): two bodies
really are in flight at once, the bytes are those of the one-at-a-time (split) path, every way a
background copy can fail reaches the caller as one error with nothing left behind, and an
interrupted write stops the copies still running."""

from __future__ import annotations

import errno
import os
import sys
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

if not sys.platform.startswith("linux"):
    pytest.skip("background copies are Linux's (envpack.archive.split)", allow_module_level=True)

import envpack.archive.copier as copier
from cached_packages import cached_packages
from envpack.archive.write import stage_bundle, write_bundle
from envpack.bundle.manifest import Entry
from envpack.errors import BundleError

EPOCH = 1_700_000_000
MiB = 1 << 20


def _packages(tmp_path: Path, sizes: list[int]) -> list[Entry]:
    return cached_packages(tmp_path / "cache", sizes)


def _copy_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("envpack-copy")]


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def test_two_bodies_are_copied_at_the_same_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each copy waits at a two-party barrier before it starts: if the writer copied one body
    # after the other, the first would wait alone and the barrier would break.
    barrier = threading.Barrier(2, timeout=30)
    real = copier.copy_range
    seen: set[str] = set()

    def meeting(*args: Any, **kwargs: Any) -> int:
        name = threading.current_thread().name
        if name not in seen:
            seen.add(name)
            barrier.wait()
        return real(*args, **kwargs)

    monkeypatch.setattr(copier, "copy_range", meeting)
    entries = _packages(tmp_path, [3 * MiB, 2 * MiB + 17, 5000, MiB + 1])
    entries.append(Entry.from_bytes("README.txt", b"read me\r\n"))
    out = tmp_path / "out"
    [bundle] = write_bundle(out, "b", "b", entries, EPOCH)
    assert len(seen) == 2
    got = _members(bundle)
    for e in entries:
        want = e.data if e.data is not None else Path(str(e.source)).read_bytes()
        assert got[f"b/{e.arcname}"] == want
    assert _copy_threads() == []


def test_the_bytes_are_those_of_the_one_at_a_time_copy(tmp_path: Path) -> None:
    # A split bundle whose one part holds everything is written one body after the other,
    # through the same writer; its part must equal the zip written with background copies.
    entries = _packages(tmp_path, [MiB + 3, 4096, 0, 2 * MiB, 123_457, 4095])
    entries.append(Entry.from_bytes("setup.bat", b"@echo off\r\n"))
    [whole] = write_bundle(tmp_path / "whole", "b", "b", entries, EPOCH)
    parts = write_bundle(tmp_path / "split", "b", "b", entries, EPOCH, split=1 << 30)
    assert parts[0].name == "b.zip.001"
    assert whole.read_bytes() == parts[0].read_bytes()
    for info in zipfile.ZipFile(whole).infolist():
        if info.filename.endswith(".conda") and info.file_size:
            # the body lands where the aligned header says
            with open(whole, "rb") as fh:
                fh.seek(info.header_offset + 26)
                n, m = int.from_bytes(fh.read(2), "little"), int.from_bytes(fh.read(2), "little")
            assert (info.header_offset + 30 + n + m) % 4096 == 0


def test_sendfile_from_two_threads_keeps_the_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Where copy_file_range is refused (another filesystem), each worker falls back to sendfile,
    # which moves its descriptor's position: each worker must have its own descriptor, so that
    # neither the other worker nor the writer's buffered headers are moved.
    import envpack.archive.kcopy as kcopy
    import envpack.archive.split as split

    barrier = threading.Barrier(2, timeout=30)  # both workers in a sendfile copy at once
    by_thread: dict[str, set[int]] = {}
    real_sendfile = kcopy._by_sendfile
    writer_fds: set[int] = set()
    real_handle = split.PartWriter._handle

    def handle(self: split.PartWriter, index: int) -> Any:
        fh = real_handle(self, index)
        writer_fds.add(fh.fileno())
        return fh

    def refuse(*_: Any) -> int:
        raise OSError(errno.EXDEV, "cross-device")

    def counted(src: int, src_off: int, dst: int, dst_off: int, count: int) -> int:
        name = threading.current_thread().name
        if name not in by_thread:
            by_thread[name] = set()
            barrier.wait()
        by_thread[name].add(dst)
        return real_sendfile(src, src_off, dst, dst_off, count)

    monkeypatch.setattr(split.PartWriter, "_handle", handle)
    monkeypatch.setattr(kcopy, "_filesystem_type", lambda fd: None)  # not ext4: kernel first
    monkeypatch.setattr(kcopy, "_by_copy_file_range", refuse)
    monkeypatch.setattr(kcopy, "_by_sendfile", counted)
    monkeypatch.setattr(kcopy, "COPY_STEP", 64 * 1024)  # many steps each, interleaved
    entries = _packages(tmp_path, [MiB + 11, MiB + 5, 700_001, 3 * MiB])
    [bundle] = write_bundle(tmp_path / "out", "b", "b", entries, EPOCH)
    assert len(by_thread) == 2
    [one], [other] = by_thread.values()  # one descriptor per worker, for all its copies...
    assert one != other  # ...its own
    assert not writer_fds & {one, other}  # and never the writer's
    got = _members(bundle)
    for e in entries:
        assert got[f"b/{e.arcname}"] == Path(str(e.source)).read_bytes()


def _fail_with(monkeypatch: pytest.MonkeyPatch, fail: Callable[..., int], after: str) -> None:
    """copy_range fails for the body of ``after`` (others copy normally)."""
    real = copier.copy_range

    def maybe(src: int, src_off: int, dst: int, dst_off: int, count: int, *rest: Any) -> int:
        if os.readlink(f"/proc/self/fd/{src}").endswith(after):
            return fail(src, src_off, dst, dst_off, count, *rest)
        return real(src, src_off, dst, dst_off, count, *rest)

    monkeypatch.setattr(copier, "copy_range", maybe)


def test_a_body_that_ends_early_is_named_and_nothing_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = _packages(tmp_path, [MiB, MiB, MiB])

    def short(*args: Any) -> int:
        return int(args[4]) - 10

    _fail_with(monkeypatch, short, "pkg-01-1.0-0.conda")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(BundleError) as info:
        write_bundle(out, "b", "b", entries, EPOCH)
    message = str(info.value)
    assert "channel/win-64/pkg-01-1.0-0.conda changed while the bundle was written" in message
    assert f"({MiB - 10} bytes, expected {MiB})" in message
    assert list(out.iterdir()) == []
    assert _copy_threads() == []


def test_a_full_disk_in_a_background_copy_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = _packages(tmp_path, [MiB, MiB, MiB, MiB])

    def full(*_: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    _fail_with(monkeypatch, full, "pkg-02-1.0-0.conda")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(BundleError, match=r"^disk full while writing .*b\.zip; free some space$"):
        write_bundle(out, "b", "b", entries, EPOCH)
    assert list(out.iterdir()) == []
    assert _copy_threads() == []


def test_an_interrupted_write_stops_the_copies_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first body's copy would take a very long time (a slow disk): it is stopped between two
    # steps once the writer is interrupted, and the staging folder goes.
    started = threading.Event()
    steps: list[int] = []
    real = copier.copy_range

    def slow(
        src: int,
        src_off: int,
        dst: int,
        dst_off: int,
        count: int,
        advance: Callable[[int], None] | None = None,
        methods: Any = None,
    ) -> int:
        if count != MiB + 1:
            return real(src, src_off, dst, dst_off, count, advance, methods)
        started.set()
        for _ in range(1_000_000):  # ~1000 s unless stopped
            assert advance is not None
            advance(0)
            steps.append(1)
            time.sleep(0.001)
        return count

    def interrupted() -> tuple[Path, int | None]:
        assert started.wait(30)
        raise KeyboardInterrupt

    monkeypatch.setattr(copier, "copy_range", slow)
    entries = _packages(tmp_path, [MiB + 1])
    entries.append(Entry("channel/win-64/zzz-1.0-0.conda", 10, "0" * 64, pending=interrupted))
    out = tmp_path / "out"
    out.mkdir()
    outcome: list[BaseException] = []

    def build() -> None:
        try:
            stage_bundle(out, "b", "b", entries, EPOCH)
        except BaseException as exc:  # the outcome (KeyboardInterrupt) is what is checked
            outcome.append(exc)

    runner = threading.Thread(target=build)
    runner.start()
    runner.join(60)
    assert not runner.is_alive(), "the write did not stop its background copy"
    assert len(outcome) == 1 and isinstance(outcome[0], KeyboardInterrupt)
    assert 0 < len(steps) < 1_000_000
    assert list(out.iterdir()) == []
    assert _copy_threads() == []


def test_finish_waits_for_the_copies_still_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PartWriter is the archive package's public writer: a caller that goes from writing the
    # zip straight to finish() (no wait()) must get a whole file, not one with holes.
    from envpack.archive.split import PartWriter
    from envpack.archive.zip import write_zip_stream

    real = copier.copy_range

    def late(*args: Any) -> int:
        time.sleep(0.3)  # still copying when finish() is called
        return real(*args)

    monkeypatch.setattr(copier, "copy_range", late)
    entries = _packages(tmp_path, [MiB, 2 * MiB])
    (tmp_path / "o").mkdir()
    writer = PartWriter(tmp_path / "o", "b.zip", None)
    write_zip_stream(writer, "b", entries, EPOCH)  # type: ignore[arg-type]
    [path] = writer.finish()
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        for e in entries:
            assert zf.read(f"b/{e.arcname}") == Path(str(e.source)).read_bytes()
