"""The zip container: the writer (every member stored and aligned, one timestamp; the format
itself is :mod:`.zipwriter`'s) and its reader."""

from __future__ import annotations

import io
import stat
import struct
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from envpack.archive.base import (
    MAX_HEADER,
    MAX_RATIO,
    RATIO_FLOOR,
    BundleReader,
    Window,
    admit_members,
)
from envpack.archive.zipwriter import AlignedZipWriter
from envpack.bundle.manifest import Entry, arcname_key, check_entries
from envpack.errors import BundleError, first_line


def write_zip_entries(
    zw: AlignedZipWriter,
    top: str,
    entries: Sequence[Entry],
    epoch: int,
    advance: Callable[[int], None] | None = None,
) -> None:
    """Add every entry under ``top/``, in :func:`arcname_key` order (the epoch is ``zw``'s)."""
    check_entries(entries)
    for pending in sorted(entries, key=arcname_key):
        entry = pending.ready()  # waits here for a package still downloading
        zw.add(f"{top}/{entry.arcname}", entry)


def write_zip_stream(
    fp: IO[bytes],
    top: str,
    entries: Sequence[Entry],
    epoch: int,
    header: bytes = b"",
    advance: Callable[[int], None] | None = None,
) -> None:
    """The bundle as a zip (see :mod:`.zipwriter`) written to ``fp`` after ``header``.

    The header goes first and the zip's offsets count from the start of the stream (absolute),
    as zipfile's ``"a"`` mode on a non-zip file, or ``zip -A``, produces.
    """
    fp.write(header)
    zw = AlignedZipWriter(fp, epoch, advance)
    write_zip_entries(zw, top, entries, epoch, advance)
    zw.close()


class ZipBundleReader(BundleReader):
    """A bundle zip, or the self-extracting .bat (a batch stub with the zip appended)."""

    kind = "zip"

    @classmethod
    def probe(cls, path: Path) -> bool:
        # is_zipfile finds the end record from the end, so a stub in front does not matter;
        # a damaged zip is still a zip to report on, hence the name test as well.
        return path.is_file() and (
            zipfile.is_zipfile(path) or path.suffix.lower() in (".zip", ".bat")
        )

    def __init__(self, source: Path) -> None:
        super().__init__(source)
        try:
            self._zf = zipfile.ZipFile(source)
        except (zipfile.BadZipFile, OSError, ValueError, struct.error) as exc:
            raise BundleError(f"{source}: not a readable zip ({first_line(exc)})") from None
        self.archive_size = source.stat().st_size
        first = self._zf.infolist()[0].header_offset if self._zf.infolist() else 0
        self.form = "sfx" if first > 0 else "zip"
        self._members: dict[str, zipfile.ZipInfo] = {}
        self._damaged: dict[str, str] = {}
        self._scan()

    def _scan(self) -> None:
        infos = [i for i in self._zf.infolist() if not i.filename.endswith("/")]
        found = [
            (i.filename, i, i.create_system == 3 and stat.S_ISLNK(i.external_attr >> 16))
            for i in infos
        ]
        self.top, self._members = admit_members(found, self.problems)
        prefix = f"{self.top}/" if self.top else ""
        for name, info in self._members.items():
            why = self._size_problem(info)
            if why:
                self._damaged[name] = why
        self._check_overlaps(prefix)

    def _check_overlaps(self, prefix: str) -> None:
        # Overlapping members are how the worst zip bombs multiply one payload (Fifield 2019);
        # a member's data must end before the next local header, or the central directory.
        ordered = sorted(self._zf.infolist(), key=lambda i: i.header_offset)
        bounds = [i.header_offset for i in ordered[1:]] + [self._zf.start_dir]
        for info, bound in zip(ordered, bounds, strict=True):
            name = info.filename[len(prefix) :] if info.filename.startswith(prefix) else None
            if name not in self._members or name in self._damaged:
                continue
            if self._data_start(info) + info.compress_size > bound:
                self._damaged[name] = "overlaps the member after it in the archive (zip bomb?)"

    def _data_start(self, info: zipfile.ZipInfo) -> int:
        """Where the member's data starts: after its *local* header's name and extra field,
        whose length need not be the central directory's (the writer's alignment padding is
        only in the local one). A local header that cannot be read counts as bare (30 bytes):
        opening the member then says what is wrong with it."""
        fp = self._zf.fp
        assert fp is not None
        fp.seek(info.header_offset)
        head = fp.read(30)
        if len(head) != 30 or head[:4] != b"PK\x03\x04":
            return info.header_offset + 30
        name_len, extra_len = struct.unpack("<HH", head[26:30])
        return int(info.header_offset + 30 + name_len + extra_len)

    def _size_problem(self, info: zipfile.ZipInfo) -> str | None:
        if info.flag_bits & 0x1:
            return "encrypted member"
        end = info.header_offset + info.compress_size
        if info.header_offset < 0 or end > self.archive_size:
            return (
                f"member claims {info.compress_size} bytes at offset {info.header_offset}, "
                f"past the end of the {self.archive_size}-byte archive (truncated or hostile)"
            )
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            return (
                f"stored member declares {info.file_size} bytes but holds {info.compress_size} "
                "(damaged or hostile)"
            )
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            return (
                f"member expands {info.compress_size} bytes to {info.file_size}, "
                "an implausible ratio (zip bomb?)"
            )
        return None

    def leading_bytes(self, cap: int = MAX_HEADER) -> bytes | None:
        """The bytes before the first member: a self-extracting file's batch header, the code
        the user runs. ``None`` when there are more than ``cap`` of them (not an envpack header).
        """
        infos = self._zf.infolist()
        first = min((i.header_offset for i in infos), default=self._zf.start_dir)
        if first <= 0:
            return b""  # nothing before the zip, or a damaged one whose members say so
        if first > cap:
            return None
        fp = self._zf.fp
        assert fp is not None
        fp.seek(0)
        data: bytes = fp.read(first)
        return data

    def _hint(self) -> str:
        # A zip cut short loses its directory; the last one left may be a stored package's
        # (a .conda is a zip), which then reads as a small zip behind "prepended" data.
        if self.form == "sfx" and not any(n.endswith(".bat") for n in self._members):
            return " (or truncated: the only zip directory left describes data inside it)"
        return ""

    def names(self) -> list[str]:
        return sorted(self._members)

    def size(self, name: str) -> int:
        return self._members[name].file_size

    def damaged(self, name: str) -> str | None:
        return self._damaged.get(name)

    def _open(self, name: str, seekable: bool) -> IO[bytes]:
        info = self._members[name]
        if seekable and info.compress_type == zipfile.ZIP_STORED:
            return io.BufferedReader(Window.of_stored(self.source, info))
        return self._zf.open(info)

    def close(self) -> None:
        self._zf.close()
