"""The self-extracting form made from a finished zip: the header, the zip's members copied by
the kernel, and the zip's central directory again with every offset moved by the header's length
(what Info-ZIP's ``zip -A`` does). The bytes are those a full write with the header gives
(:mod:`.zipwriter` aligns from the zip's start, so only the directory depends on the header).

Only a zip that :mod:`.zipwriter` wrote is accepted: its directory is parsed, written again at
offset 0 and compared with the original before anything is shifted, so a zip this module does
not fully understand is refused instead of being copied wrong.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import IO

from envpack.archive.kcopy import copy_methods, copy_range
from envpack.archive.zipwriter import (
    CENTRAL,
    CENTRAL_SIG,
    END,
    END64,
    END64_SIG,
    END_SIG,
    LIMIT16,
    LIMIT32,
    LOCATOR64,
    LOCATOR64_SIG,
    ZIP64_EXTRA_ID,
    Member,
    central_directory,
)
from envpack.errors import BundleError

# A central directory is ~100 bytes a member: 64 MiB is far past any bundle (600,000 members).
MAX_DIRECTORY = 64 << 20


def _not_ours(path: Path, why: str) -> BundleError:
    return BundleError(f"{path}: {why}; not a zip envpack wrote, cannot make the .bat from it")


def read_directory(path: Path, fh: IO[bytes]) -> tuple[list[Member], int]:
    """The members of the zip envpack wrote at ``path`` and where its directory starts."""
    size = os.fstat(fh.fileno()).st_size
    if size < END.size:
        raise _not_ours(path, "too short for a zip")
    fh.seek(size - END.size)
    tail = fh.read(END.size)
    sig, disk, cd_disk, n_here, count, cd_size, cd_offset, comment = END.unpack(tail)
    if sig != END_SIG or disk or cd_disk or comment or n_here != count:
        raise _not_ours(path, "no plain end record at its end")
    end_at = size - END.size
    locator = b""
    if end_at >= LOCATOR64.size + END64.size:
        fh.seek(end_at - LOCATOR64.size)
        locator = fh.read(LOCATOR64.size)
    if locator[:4] == LOCATOR64_SIG:
        _, _, end64_at, _ = LOCATOR64.unpack(locator)
        if end64_at != end_at - LOCATOR64.size - END64.size:
            raise _not_ours(path, "a ZIP64 locator that does not point before it")
        fh.seek(end64_at)
        fields = END64.unpack(fh.read(END64.size))
        if fields[0] != END64_SIG:
            raise _not_ours(path, "a ZIP64 end record is missing")
        count, cd_size, cd_offset = fields[7], fields[9], fields[10]
        end_at = end64_at
    elif count == LIMIT16 or LIMIT32 in (cd_size, cd_offset):
        raise _not_ours(path, "a ZIP64 end record is missing")
    if cd_offset + cd_size != end_at or cd_size > MAX_DIRECTORY:
        raise _not_ours(path, "its central directory is not where its end record says")
    fh.seek(cd_offset)
    raw = fh.read(cd_size)
    members = _parse_members(path, raw, count)
    fh.seek(cd_offset)
    if central_directory(members, 0, cd_offset) != fh.read(size - cd_offset):
        raise _not_ours(path, "its directory is not one envpack writes")
    return members, cd_offset


def _parse_members(path: Path, raw: bytes, count: int) -> list[Member]:
    members: list[Member] = []
    at = 0
    for _ in range(count):
        if at + CENTRAL.size > len(raw):
            raise _not_ours(path, "its central directory is cut short")
        f = CENTRAL.unpack_from(raw, at)
        if f[0] != CENTRAL_SIG:
            raise _not_ours(path, "a damaged central directory")
        flags, method, dostime, dosdate, crc = f[4], f[5], f[6], f[7], f[8]
        csize, usize, n_name, n_extra, n_comment = f[9], f[10], f[11], f[12], f[13]
        external, offset = f[16], f[17]
        name = raw[at + CENTRAL.size : at + CENTRAL.size + n_name]
        extra = raw[at + CENTRAL.size + n_name : at + CENTRAL.size + n_name + n_extra]
        if method != 0 or csize != usize or n_comment:
            raise _not_ours(path, f"member {name!r} is not stored plainly")
        if extra and (extra[:2] != ZIP64_EXTRA_ID.to_bytes(2, "little") or len(extra) % 8 != 4):
            raise _not_ours(path, f"member {name!r} has an extra field envpack does not write")
        values = list(struct.unpack(f"<{len(extra) // 8}Q", extra[4:])) if extra else []
        wanted = (usize == LIMIT32) * 2 + (offset == LIMIT32)
        if len(values) < wanted:
            raise _not_ours(path, f"member {name!r} has a short ZIP64 field")
        if usize == LIMIT32:
            usize = values.pop(0)
            values.pop(0)  # the compressed size: the same, stored
        if offset == LIMIT32:
            offset = values.pop(0)
        members.append(Member(name, flags, crc, usize, offset, dostime, dosdate, external))
        at += CENTRAL.size + n_name + n_extra + n_comment
    return members


def write_sfx_from_zip(
    zip_path: Path, dst: IO[bytes], header: bytes, advance: Callable[[int], None] | None = None
) -> None:
    """Write ``header`` and then the zip at ``zip_path`` moved by ``len(header)`` into ``dst``
    (an empty real file)."""
    with open(zip_path, "rb", buffering=0) as src:
        members, cd_start = read_directory(zip_path, src)
        if members and members[0].offset != 0:
            raise _not_ours(zip_path, "something before its first member")
        dst.write(header)
        dst.flush()
        base = len(header)
        methods = copy_methods(dst.fileno())
        copied = copy_range(src.fileno(), 0, dst.fileno(), base, cd_start, advance, methods)
        if copied != cd_start:
            raise BundleError(f"{zip_path} changed while the .bat was written from it")
        dst.seek(base + cd_start)
        dst.write(central_directory(members, base, cd_start))
        dst.flush()
