"""Copy a byte range from one open file to another, in the kernel when it can.

A bundle is mostly package files copied verbatim, so the copy is most of a warm build. Asked in
this order: ``os.copy_file_range`` (no bytes pass through user space, and on XFS/btrfs with the
blocks aligned the filesystem may share them instead of copying: a reflink), ``os.sendfile``
(regular file to regular file on Linux), then ``pread``/``pwrite`` through one reused buffer.
A method the kernel or filesystem refuses (another filesystem, an old kernel, a FUSE mount) is
dropped for the rest of that copy and the next one is asked; errors that are about the data or
the disk (ENOSPC, EIO) are raised as they are.

Except into ext2/3/4, which cannot share blocks: there ``copy_file_range`` is the kernel's splice
path, and it measured slower than the plain copy through a 128 KiB buffer, for more CPU
(bench/FINDINGS.md, round 4: 1.5 GB of cached packages into one file, two threads, 0.43-0.49 s
and 0.72-0.86 s of system CPU against 0.30-0.37 s and 0.49-0.59 s; one thread 0.44-0.46 s
against 0.37-0.40 s), so the plain copy is all that is asked there. Into tmpfs the kernel copy
was the faster one, and XFS, btrfs, NFS, SMB and ZFS can share or copy on the server: they keep
the order above.

Both ends are file descriptors with explicit offsets: neither file's position is used or moved
(except sendfile's destination, which is positioned first).

:func:`reserve` asks the filesystem for a file's blocks before the copy: ext4 then allocates them
once instead of page by page.
"""

from __future__ import annotations

import errno
import functools
import os
import sys
from collections.abc import Callable
from typing import Any

# One system call's share: large enough that calls cost nothing, small enough that a progress
# bar moves (copy_file_range caps one call near 2 GiB anyway).
COPY_STEP = 64 << 20
_LINUX = sys.platform.startswith("linux")  # at import: tests change sys.platform to test paths
# The plain copy's buffer on Linux: what `cp --reflink=never` reads and writes with, and the
# fastest measured here (64 KiB 0.41 s, 128 KiB 0.30-0.37 s, 256 KiB 0.31-1.16 s, 1 MiB
# 0.31-1.58 s for the 1.5 GB above: a larger buffer leaves the core's cache between the read and
# the write). Elsewhere, not measured, the larger one: Windows has no pread/pwrite, so each step
# is four system calls.
COPY_BUFFER = 128 << 10 if _LINUX else 1 << 20
# statfs f_type of filesystems whose copy_file_range is a splice, slower than the plain copy.
_PLAIN_COPY_FILESYSTEMS = frozenset({0xEF53})  # ext2, ext3, ext4 (an overlayfs over ext4, as in
# a container, reports its own type and keeps the kernel copy: not measured)

# What a kernel or filesystem answers when it cannot do this kind of copy (as opposed to a
# failure of the disk): try the next method.
_UNSUPPORTED = frozenset(
    {
        errno.EXDEV,
        errno.ENOSYS,
        errno.EINVAL,
        errno.EOPNOTSUPP,
        errno.ENOTSUP,
        errno.EBADF,
        errno.ENOTSOCK,  # macOS' and FreeBSD's sendfile write only to sockets
    }
)

Method = Callable[[int, int, int, int, int], int]

FALLOC_FL_KEEP_SIZE = 1  # <linux/falloc.h>: blocks only; the file's size is left to the writes


def _by_copy_file_range(src: int, src_off: int, dst: int, dst_off: int, count: int) -> int:
    return os.copy_file_range(src, dst, count, src_off, dst_off)


def _by_sendfile(src: int, src_off: int, dst: int, dst_off: int, count: int) -> int:
    os.lseek(dst, dst_off, os.SEEK_SET)
    return os.sendfile(dst, src, src_off, count)


class _ReadWrite:
    """The plain copy: one buffer for the whole copy, allocated only if it comes to this."""

    def __init__(self) -> None:
        self._buf: bytearray | None = None

    def __call__(self, src: int, src_off: int, dst: int, dst_off: int, count: int) -> int:
        if self._buf is None:
            self._buf = bytearray(COPY_BUFFER)
        view = memoryview(self._buf)[: min(count, len(self._buf))]
        got = pread_into(src, view, src_off)
        done = 0
        while done < got:
            done += _pwrite(dst, view[done:got], dst_off + done)
        return got


def pread_into(fd: int, view: memoryview, offset: int) -> int:
    if hasattr(os, "preadv"):
        return os.preadv(fd, [view], offset)
    os.lseek(fd, offset, os.SEEK_SET)  # pragma: no cover - systems without preadv
    data = os.read(fd, len(view))  # pragma: no cover
    view[: len(data)] = data  # pragma: no cover
    return len(data)  # pragma: no cover


def _pwrite(fd: int, view: memoryview, offset: int) -> int:
    if hasattr(os, "pwrite"):
        return os.pwrite(fd, view, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # pragma: no cover - systems without pwrite
    return os.write(fd, view)  # pragma: no cover


def copy_methods(dst: int | None = None) -> list[Method]:
    """The methods this system offers for a copy into ``dst`` (a descriptor, when known), best
    first; the plain copy is always last, and alone into ext2/3/4 (see the module's notes)."""
    if dst is not None and _filesystem_type(dst) in _PLAIN_COPY_FILESYSTEMS:
        return [_ReadWrite()]  # (the type is read on Linux only)
    methods: list[Method] = []
    if hasattr(os, "copy_file_range"):
        methods.append(_by_copy_file_range)
    if hasattr(os, "sendfile") and sys.platform.startswith("linux"):
        # Only Linux's sendfile writes to a regular file; macOS' and the BSDs' need a socket.
        methods.append(_by_sendfile)
    methods.append(_ReadWrite())
    return methods


def copy_range(
    src: int,
    src_off: int,
    dst: int,
    dst_off: int,
    count: int,
    advance: Callable[[int], None] | None = None,
    methods: list[Method] | None = None,
) -> int:
    """Copy ``count`` bytes of ``src`` from ``src_off`` to ``dst`` at ``dst_off``.

    Returns the number of bytes copied: ``count``, or fewer when ``src`` ends first (the caller
    says what that means). ``advance`` is called with each step's byte count. ``methods`` (from
    :func:`copy_methods`) is consumed as methods fail, so a caller copying several ranges between
    the same two files can pass one list and not ask a refused method again.
    """
    methods = copy_methods(dst) if methods is None else methods
    done = 0
    while done < count:
        method = methods[0]
        step = min(COPY_STEP, count - done)
        try:
            n = method(src, src_off + done, dst, dst_off + done, step)
        except OSError as exc:
            if exc.errno in _UNSUPPORTED and len(methods) > 1:
                methods.pop(0)
                continue
            raise
        if n == 0:
            if len(methods) == 1:
                break  # a plain read found the end of src
            # A kernel path that copies nothing may mean the end of src or a filesystem that
            # does not do it (some FUSE mounts); the plain read tells which.
            methods.pop(0)
            continue
        done += n
        if advance is not None:
            advance(n)
    return done


def reserve(fd: int, offset: int, length: int) -> None:
    """Allocate ``length`` bytes of ``fd`` from ``offset`` now, for writes that will fill them.

    Measured on ext4 (bench/FINDINGS.md, round 3): copying 1.5 GB of packages into one file
    took 0.51-0.84 s as it grew and 0.40 s with each package's blocks reserved just before its
    copy (or all at once: the same), as ``cp`` of the same files into separate ones. Only
    Linux's ``fallocate(2)``, with ``FALLOC_FL_KEEP_SIZE``: the file keeps the size its writes
    give it, so the bytes written are the same with or without this, and the caller reserves no
    more than it will write (blocks reserved past the end would stay allocated). Not
    ``os.posix_fallocate``: where the filesystem cannot (FAT, exFAT on some kernels, NFSv3),
    glibc emulates it by writing a byte into every block, slower than the copy it was meant to
    speed up.

    A refusal is never an error, not even ENOSPC: on XFS or btrfs the copy that follows shares
    the cache's blocks (a reflink) and a 1.5 GB bundle takes a few MB, so a disk with less free
    space than a package's size may well hold its copy. A disk that really is full fails the
    writes. On btrfs and bcachefs nothing is reserved: there a reserved extent stays allocated whole
    while any block of it is in use (the headers written between the shared bodies), so the
    bundle would take its full size beside the blocks it shares (measured: tests/test_reflink).
    """
    if length <= 0 or not sys.platform.startswith("linux"):
        return
    fallocate = _fallocate()
    if fallocate is not None and _filesystem_type(fd) not in _WHOLE_EXTENT_FILESYSTEMS:
        # Any answer will do (EOPNOTSUPP, ENOSPC, EINTR...): the writes allocate what this did not.
        fallocate(fd, FALLOC_FL_KEEP_SIZE, offset, length)


# statfs f_type of copy-on-write filesystems that free an extent only when all of it is unused.
_WHOLE_EXTENT_FILESYSTEMS = frozenset({0x9123683E, 0xCA451A4E})  # btrfs, bcachefs


def _filesystem_type(fd: int) -> int | None:
    """``fstatfs(fd).f_type`` (Linux: the first field, a C long), or None when it cannot say."""
    libc = _libc()
    if libc is None or not hasattr(libc, "fstatfs") or not _LINUX:
        return None  # struct statfs is laid out otherwise elsewhere
    import ctypes

    buf = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes on 64-bit Linux
    if libc.fstatfs(fd, buf) != 0:
        return None
    return ctypes.c_ulong.from_buffer(buf).value & 0xFFFFFFFF


@functools.cache
def _libc() -> Any:
    """The C library, loaded once, when first asked for (ctypes costs 1 ms to import)."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True)
    except (OSError, TypeError):  # TypeError: Windows' ctypes cannot load the running program
        return None


_FALLOCATE: list[Callable[[int, int, int, int], int] | None] = []


def _fallocate() -> Callable[[int, int, int, int], int] | None:
    """libc's ``fallocate``, looked up once."""
    if not _FALLOCATE:
        import ctypes

        libc = _libc()
        # fallocate64 first: with 64-bit offsets on every ABI (on 64-bit ones it is the same)
        func = getattr(libc, "fallocate64", None) or getattr(libc, "fallocate", None)
        if func is not None:
            func.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
            func.restype = ctypes.c_int
        _FALLOCATE.append(func)
    return _FALLOCATE[0]
