"""The bundle's zip writer: every member stored, the packages' data aligned to 4 KiB, their
bodies kernel-copied.

Why not :mod:`zipfile`: zipfile pushes every byte through Python (read, CRC, write) and cannot
align. Here a package's CRC-32 is usually known before its body is written (the download kept
it), so the local header is written first with the final CRC and sizes and the body follows by
:func:`.kcopy.copy_range`, nothing patched afterwards. Without a known CRC the body is read,
summed and written in one pass and the CRC patched into the header (a stream that cannot seek
gets the file read once for its CRC first).

Layout of one member, every field fixed by its entry and the bundle's epoch (deterministic)::

    local header (30 bytes, version 20 or 45, no flags but UTF-8, method 0 stored,
                  one DOS time, CRC-32, sizes)
    name
    zip64 extra (id 0x0001: size, size)   only when the size is 0xFFFFFFFF or more
    alignment extra (id 0xD935: u16 4096, then zeros)   what Android's zipalign writes;
                                          packages and wheels only (ALIGNED_SUFFIXES)
    data                                  at an offset from the zip's start divisible by 4096

Aligned data lets a filesystem with reflinks (XFS, btrfs) share the package's blocks with the
cached file instead of copying them, and costs under 4 KiB per package. Offsets are counted from
the start of the file, with a self-extracting header before the zip included (absolute, what
zipfile and Info-ZIP's ``zip -A`` produce); the alignment is counted from where the zip starts,
so the zip inside a ``-setup.bat`` is the plain zip's bytes shifted by the header's length and
:func:`central_directory` is all that differs (see :mod:`.sfxcopy`).

ZIP64 follows APPNOTE 4.5.3: a 32-bit field holds 0xFFFFFFFF exactly when its value does not
fit (0xFFFFFFFF or more) and the zip64 extra carries the value; the local header's zip64 extra
holds both sizes; the central one holds, in order, the sizes and the header offset that
overflowed. The end record goes zip64 (record + locator) when the count, the directory's size or
its offset overflows.
"""

from __future__ import annotations

import io
import os
import struct
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import IO

from envpack.archive.kcopy import copy_range, pread_into
from envpack.bundle.manifest import Entry
from envpack.errors import BundleError
from envpack.limits import CHUNK

ALIGN = 4096
ALIGN_EXTRA_ID = 0xD935  # Android zipalign's extra field: u16 alignment, then padding
# The members copied from the download cache, whose blocks a reflink can share: only they are
# aligned. The files made in memory (setup.bat, envpack.json, ...) could never share a block,
# and padding them would add up to 4 KiB each (a quarter of an update bundle's overhead).
ALIGNED_SUFFIXES = (".conda", ".tar.bz2", ".whl")
ZIP64_EXTRA_ID = 0x0001
LIMIT32 = 0xFFFFFFFF  # what a 32-bit field holds when the zip64 extra has the value
LIMIT16 = 0xFFFF
# From which value zip64 is used (APPNOTE: the field's all-ones value and above). Names of their
# own so that a test can lower them and take every zip64 path with a small bundle.
ZIP64_AT = LIMIT32
ZIP64_COUNT_AT = LIMIT16
VERSION = 20  # 2.0: stored members, folders
VERSION64 = 45  # 4.5: ZIP64
UNIX = 3  # "version made by" host: the attribute bits below are Unix mode bits
FILE_ATTR = 0o100644 << 16
UTF8_FLAG = 0x800

LOCAL = struct.Struct("<4sHHHHHIIIHH")
CENTRAL = struct.Struct("<4sBBHHHHHIIIHHHHHII")
END = struct.Struct("<4sHHHHIIH")
END64 = struct.Struct("<4sQBBHIIQQQQ")
LOCATOR64 = struct.Struct("<4sIQI")
LOCAL_SIG = b"PK\x03\x04"
CRC_AT = 14  # the CRC-32's offset in a local header
CENTRAL_SIG = b"PK\x01\x02"
END_SIG = b"PK\x05\x06"
END64_SIG = b"PK\x06\x06"
LOCATOR64_SIG = b"PK\x06\x07"


@dataclass(frozen=True)
class Member:
    """What the central directory says of one member (sizes equal: stored)."""

    name: bytes
    flags: int
    crc32: int
    size: int
    offset: int  # of its local header, from the zip's start
    dostime: int
    dosdate: int
    external_attr: int = FILE_ATTR


def dos_datetime(epoch: int) -> tuple[int, int]:
    """(time, date) in DOS form for ``epoch`` read as UTC, as zipfile does with gmtime."""
    t = time.gmtime(epoch)
    dostime = t.tm_hour << 11 | t.tm_min << 5 | (t.tm_sec // 2)
    dosdate = (t.tm_year - 1980) << 9 | t.tm_mon << 5 | t.tm_mday
    return dostime, dosdate


def encode_name(name: str) -> tuple[bytes, int]:
    try:
        return name.encode("ascii"), 0
    except UnicodeEncodeError:
        return name.encode("utf-8"), UTF8_FLAG


def is_aligned(name: str) -> bool:
    """Whether the member ``name`` gets its data aligned (see ALIGNED_SUFFIXES)."""
    return name.endswith(ALIGNED_SUFFIXES)


def local_header(m: Member, align: bool) -> bytes:
    """The local header, name and extras of ``m``; with ``align``, its data follows at an
    offset from the zip's start divisible by ALIGN."""
    extra = b""
    size = m.size
    version = VERSION
    if m.size >= ZIP64_AT:
        extra = struct.pack("<HHQQ", ZIP64_EXTRA_ID, 16, m.size, m.size)
        size = LIMIT32
        version = VERSION64
    if align:
        before_pad = m.offset + LOCAL.size + len(m.name) + len(extra) + 6
        pad = -before_pad % ALIGN
        extra += struct.pack("<HHH", ALIGN_EXTRA_ID, 2 + pad, ALIGN) + bytes(pad)
    head = LOCAL.pack(
        LOCAL_SIG,
        version,
        m.flags,
        0,
        m.dostime,
        m.dosdate,
        m.crc32,
        size,
        size,
        len(m.name),
        len(extra),
    )
    return head + m.name + extra


def central_directory(members: Sequence[Member], base: int, cd_start: int) -> bytes:
    """The central directory and end records, for members whose zip starts at ``base`` in the
    file (the header's length) and whose directory starts at ``cd_start`` (from the zip's start).
    """
    out = io.BytesIO()
    for m in members:
        fields: list[int] = []
        size = m.size
        if m.size >= ZIP64_AT:
            fields += [m.size, m.size]
            size = LIMIT32
        offset = base + m.offset
        if offset >= ZIP64_AT:
            fields.append(offset)
            offset = LIMIT32
        extra = struct.pack(f"<HH{len(fields)}Q", ZIP64_EXTRA_ID, 8 * len(fields), *fields)
        version = VERSION64 if fields else VERSION
        out.write(
            CENTRAL.pack(
                CENTRAL_SIG,
                version,
                UNIX,
                version,
                m.flags,
                0,
                m.dostime,
                m.dosdate,
                m.crc32,
                size,
                size,
                len(m.name),
                len(extra) if fields else 0,
                0,
                0,
                0,
                m.external_attr,
                offset,
            )
        )
        out.write(m.name)
        if fields:
            out.write(extra)
    cd_size = out.tell()
    cd_offset = base + cd_start
    count = len(members)
    if count >= ZIP64_COUNT_AT or cd_size >= ZIP64_AT or cd_offset >= ZIP64_AT:
        end64_at = cd_offset + cd_size
        out.write(
            END64.pack(
                END64_SIG,
                END64.size - 12,
                VERSION64,
                UNIX,
                VERSION64,
                0,
                0,
                count,
                count,
                cd_size,
                cd_offset,
            )
        )
        out.write(LOCATOR64.pack(LOCATOR64_SIG, 0, end64_at, 1))
    out.write(
        END.pack(
            END_SIG,
            0,
            0,
            min(count, LIMIT16),
            min(count, LIMIT16),
            min(cd_size, LIMIT32),
            min(cd_offset, LIMIT32),
            0,
        )
    )
    return out.getvalue()


class AlignedZipWriter:
    """Writes members to ``fp`` from its current position (after any header), then the
    directory on :meth:`close`. ``fp`` may offer ``copy_from`` (the split writer does: it copies
    across part boundaries); a real file is copied into by its descriptor; anything else gets
    plain writes."""

    def __init__(
        self, fp: IO[bytes], epoch: int, advance: Callable[[int], None] | None = None
    ) -> None:
        self._fp = fp
        self._base = fp.tell()
        self._pos = 0  # from the zip's start
        self._members: list[Member] = []
        self._dostime, self._dosdate = dos_datetime(epoch)
        self._advance = advance

    def add(self, name: str, entry: Entry) -> None:
        """Write ``entry`` (ready: its file is there) as the member ``name``."""
        raw, flags = encode_name(name)
        if entry.data is not None:
            if len(entry.data) != entry.size:
                raise BundleError(f"{entry.arcname}: {len(entry.data)} bytes, not {entry.size}")
            crc = zlib.crc32(entry.data)
            self._header(raw, flags, crc, entry.size, is_aligned(name))
            self._fp.write(entry.data)
            if self._advance is not None and entry.data:
                self._advance(len(entry.data))
            self._pos += entry.size
            return
        if entry.source is None:
            raise BundleError(f"internal error: {entry.arcname} has neither bytes nor a file")
        align = is_aligned(name)
        with open(entry.source, "rb", buffering=0) as src:
            fd = src.fileno()
            found = os.fstat(fd).st_size
            if found != entry.size:
                raise _changed(entry, found)
            if entry.crc32 is not None:
                self._header(raw, flags, entry.crc32, entry.size, align)
                copied = self._body(fd, entry.size, lambda n: _changed(entry, n))
            elif self._fp.seekable():
                # No CRC yet: one pass that reads, sums and writes (as zipfile does), then the
                # CRC goes into the header; reading to sum and then kernel-copying is two.
                at = self._base + self._pos
                self._header(raw, flags, 0, entry.size, align)
                copied, crc = _copy_to_stream(fd, self._fp, entry.size, self._advance)
                end = self._fp.tell()
                self._fp.seek(at + CRC_AT)
                self._fp.write(struct.pack("<I", crc))
                self._fp.seek(end)
                self._members[-1] = replace(self._members[-1], crc32=crc)
            else:
                self._header(raw, flags, file_crc32(fd, entry.size), entry.size, align)
                copied = self._body(fd, entry.size)
        if copied != entry.size:
            raise _changed(entry, copied)
        self._pos += entry.size

    def _header(self, name: bytes, flags: int, crc: int, size: int, align: bool) -> None:
        m = Member(name, flags, crc, size, self._pos, self._dostime, self._dosdate)
        head = local_header(m, align)
        self._fp.write(head)
        self._pos += len(head)
        self._members.append(m)

    def _body(
        self, src: int, size: int, short: Callable[[int], BaseException] | None = None
    ) -> int:
        fp = self._fp
        copy_from = getattr(fp, "copy_from", None)
        if copy_from is not None:
            # With ``short``, the split writer may copy in the background (see .copier) and
            # raise ``short(copied)`` later if the file turns out shorter than its fstat said.
            done: int = copy_from(src, 0, size, self._advance, short)
            return done
        try:
            dst = fp.fileno()
        except (OSError, io.UnsupportedOperation, AttributeError):
            return _copy_to_stream(src, fp, size, self._advance)[0]
        fp.flush()
        at = fp.tell()
        done = copy_range(src, 0, dst, at, size, self._advance)
        fp.seek(at + done)
        return done

    def close(self) -> None:
        """Write the central directory and the end records."""
        self._fp.write(central_directory(self._members, self._base, self._pos))
        self._fp.flush()


def _changed(entry: Entry, found: int) -> BundleError:
    return BundleError(
        f"{entry.arcname} changed while the bundle was written "
        f"({found} bytes, expected {entry.size})"
    )


def file_crc32(fd: int, size: int) -> int:
    """The CRC-32 of the first ``size`` bytes of ``fd`` (read once, one reused buffer)."""
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    crc = 0
    done = 0
    while done < size:
        n = pread_into(fd, view[: min(len(buf), size - done)], done)
        if n == 0:
            break
        crc = zlib.crc32(view[:n], crc)
        done += n
    return crc


def _copy_to_stream(
    src: int, fp: IO[bytes], size: int, advance: Callable[[int], None] | None
) -> tuple[int, int]:
    """Copy ``size`` bytes of ``src`` to ``fp`` through one buffer: (bytes copied, their CRC-32)."""
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    done = 0
    crc = 0
    while done < size:
        n = pread_into(src, view[: min(len(buf), size - done)], done)
        if n == 0:
            break
        fp.write(view[:n])
        crc = zlib.crc32(view[:n], crc)
        done += n
        if advance is not None:
            advance(n)
    return done, crc
