"""The ``.tar`` bundle of the Linux and macOS targets: a deterministic writer and a reader.

Writing: :func:`write_tar_stream` has the shape of ``formats.write_zip_stream`` (a stream, the
top folder, the entries, the bundle's epoch, an optional header written first, a progress
callback). The archive is POSIX pax (plain ustar headers; a pax extended header only for a
name longer than 100 bytes or not ASCII), every member stored (tar has no compression here:
the packages are compressed already), in :func:`~envpack.bundle.manifest.arcname_key` order,
folders before what they hold, one mtime (the
epoch), uid/gid 0 with empty user and group names, mode 0644, and 0755 for the few files that
are run (:data:`EXECUTABLE_MEMBERS`). GNU tar, bsdtar and busybox tar read it (tested), and the
same entries always give the same bytes.

The self-extracting ``NAME-<platform>-setup.sh`` is a shell header followed by this tar; the
header states the payload's offset on a line of its own (``EP_SKIP=<bytes>``, see shstubs), which
is how :class:`TarBundleReader` finds the archive in it too.

Reading: :class:`TarBundleReader` is a :class:`~envpack.archive.base.BundleReader`; member names go
through :func:`.base.admit_members` like every other format's, links and special files
are left out with the reason, and a member whose data would run past the end of the file is
listed as damaged, not read.
"""

from __future__ import annotations

import io
import re
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, cast

from envpack.archive.base import MAX_HEADER, BundleReader, Window, admit_members
from envpack.bundle.manifest import Entry, arcname_key, check_entries
from envpack.errors import BundleError, first_line
from envpack.limits import CHUNK

# Bundle members that are run rather than read: setup.sh (``./setup.sh`` works as well as
# ``sh setup.sh``), the bundle's micromamba, and the uninstaller setup.sh copies into the prefix.
EXECUTABLE_MEMBERS = frozenset({"setup.sh", "micromamba", "prefix-files/uninstall.sh"})
FILE_MODE = 0o644
EXEC_MODE = 0o755
DIR_MODE = 0o755
USTAR_MAGIC_OFFSET = 257
# The self-extracting header's offset line; shstubs writes it, the reader parses it.
SFX_SKIP_RE = re.compile(rb"^EP_SKIP=(\d{1,12})$", re.M)
SFX_SHEBANG = b"#!/bin/sh\n"


def member_mode(arcname: str) -> int:
    return EXEC_MODE if arcname in EXECUTABLE_MEMBERS else FILE_MODE


def _info(name: str, kind: bytes, mode: int, size: int, epoch: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = epoch  # an int: a float would add a pax "mtime" record
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


class _Source(io.RawIOBase):
    """An entry's bytes for tarfile, counted for the progress callback and the size check."""

    def __init__(self, src: IO[bytes], advance: Callable[[int], None] | None) -> None:
        self._src, self._advance, self.count = src, advance, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._src.read(min(len(buffer), CHUNK))
        buffer[: len(data)] = data
        self.count += len(data)
        if data and self._advance is not None:
            self._advance(len(data))
        return len(data)


def write_tar_stream(
    fp: IO[bytes],
    top: str,
    entries: Sequence[Entry],
    epoch: int,
    header: bytes = b"",
    advance: Callable[[int], None] | None = None,
) -> None:
    """Write the bundle as a tar under ``top/`` to ``fp``, after ``header`` (the sfx form)."""
    check_entries(entries)
    if not entries:
        raise BundleError("a bundle needs at least one file")
    fp.write(header)
    done: set[str] = set()
    with tarfile.open(fileobj=fp, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for pending in sorted(entries, key=arcname_key):
            entry = pending.ready()  # waits here for a package still downloading
            full = f"{top}/{entry.arcname}"
            parts = full.split("/")
            for depth in range(1, len(parts)):
                folder = "/".join(parts[:depth])
                if folder not in done:
                    done.add(folder)
                    tf.addfile(_info(folder + "/", tarfile.DIRTYPE, DIR_MODE, 0, epoch))
            info = _info(full, tarfile.REGTYPE, member_mode(entry.arcname), entry.size, epoch)
            with entry.open() as raw:
                src = _Source(raw, advance)
                try:
                    tf.addfile(info, io.BufferedReader(src, CHUNK))
                except OSError as exc:
                    if src.count < entry.size:
                        raise BundleError(
                            f"{entry.arcname} changed while the bundle was written "
                            f"({src.count} bytes, expected {entry.size})"
                        ) from None
                    raise BundleError(f"cannot write {entry.arcname}: {first_line(exc)}") from None
                if raw.read(1):
                    raise BundleError(
                        f"{entry.arcname} changed while the bundle was written "
                        f"(more than the expected {entry.size} bytes)"
                    )


def sfx_payload_offset(head: bytes) -> int | None:
    """The payload offset a self-extracting header states, or ``None`` if ``head`` is not one."""
    if not head.startswith(SFX_SHEBANG):
        return None
    m = SFX_SKIP_RE.search(head[:4096])
    return int(m.group(1)) if m else None


class TarBundleReader(BundleReader):
    """A ``.tar`` bundle, or the self-extracting ``-setup.sh`` (a shell header, then the tar)."""

    kind = "tar"

    @classmethod
    def probe(cls, path: Path) -> bool:
        if not path.is_file():
            return False
        try:
            with path.open("rb") as fh:
                head = fh.read(4096)
        except OSError:
            return False
        if sfx_payload_offset(head) is not None:
            return True
        # A damaged tar is still one to report on, hence the name as well as the magic.
        magic = head[USTAR_MAGIC_OFFSET : USTAR_MAGIC_OFFSET + 5] == b"ustar"
        return magic or path.suffix.lower() == ".tar"

    def __init__(self, source: Path) -> None:
        super().__init__(source)
        self._fh = source.open("rb")
        try:
            self.archive_size = source.stat().st_size
            offset = sfx_payload_offset(self._fh.read(4096)) or 0
            if offset > self.archive_size:
                raise BundleError(
                    f"{source}: its header says the archive starts at byte {offset}, past the "
                    f"end of the {self.archive_size}-byte file (truncated)"
                )
            self.offset = offset
            self.form = "sfx" if offset else "tar"
            window = Window(self._fh, offset, self.archive_size - offset)
            try:
                tf = tarfile.open(fileobj=cast(IO[bytes], window), mode="r:")  # noqa: SIM115
            except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
                raise BundleError(f"{source}: not a readable tar ({first_line(exc)})") from None
            infos: list[tarfile.TarInfo] = []
            try:
                while (info := tf.next()) is not None:
                    infos.append(info)
            except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
                # Cut short: the members listed so far stay, the last one is found damaged.
                self.problems.append(f"the archive ends early ({first_line(exc)}): truncated")
            finally:
                tf.close()
        except BaseException:
            self._fh.close()
            raise
        self._members: dict[str, tarfile.TarInfo] = {}
        self._damaged: dict[str, str] = {}
        self._scan(infos)

    def _scan(self, infos: list[tarfile.TarInfo]) -> None:
        found: list[tuple[str, tarfile.TarInfo, bool]] = []
        for info in infos:
            if info.isdir():
                continue
            if info.issym() or info.islnk():
                found.append((info.name, info, True))
            elif not info.isreg():
                self.problems.append(f"{info.name}: not a regular file (tar type {info.type!r})")
            else:
                found.append((info.name, info, False))
        self.top, self._members = admit_members(found, self.problems)
        payload = self.archive_size - self.offset
        for name, info in self._members.items():
            if info.issparse():
                self._damaged[name] = "a sparse tar member (envpack never writes one)"
            elif info.offset_data + info.size > payload:
                self._damaged[name] = (
                    f"member claims {info.size} bytes at offset {info.offset_data}, past the "
                    f"end of the {payload}-byte archive (truncated or hostile)"
                )

    def leading_bytes(self, cap: int = MAX_HEADER) -> bytes | None:
        """The self-extracting header (the code the user runs), ``b""`` for a plain tar,
        ``None`` when it is longer than ``cap`` (not an envpack header)."""
        if self.offset > cap:
            return None
        # Its own handle: the listing's Window owned (and closed) the first one.
        with self.source.open("rb") as fh:
            return fh.read(self.offset)

    def names(self) -> list[str]:
        return sorted(self._members)

    def size(self, name: str) -> int:
        return self._members[name].size

    def damaged(self, name: str) -> str | None:
        return self._damaged.get(name)

    def _open(self, name: str, seekable: bool) -> IO[bytes]:
        info = self._members[name]
        fh = self.source.open("rb")
        return io.BufferedReader(Window(fh, self.offset + info.offset_data, info.size))

    def close(self) -> None:
        self._fh.close()
