"""The 7z container, writer and reader. EVERY py7zr call of envpack is in this module.

py7zr's public API cannot write what a bundle needs (one timestamp, fixed attributes, two
folders), so the writer uses its internals (``header.initialize()``, ``header._initialized``,
``worker.archive``/``flush_archive``) and the reader reads ``afterheader``, ``packinfo`` and
``folder.coders`` to find stored members in place. Those are not a stable API: :func:`_py7zr`
accepts only the py7zr series this was written against, and any failure inside py7zr surfaces as
envpack's own :class:`~envpack.errors.BundleError`, never as a traceback.

7z layout (py7zr writes one "folder" per coder chain; we start a second one by hand):

* folder 0, Copy: the packages (``.conda``/``.tar.bz2`` are already compressed: measured
  Deflate 0.3 %, LZMA2 0.34 % smaller on real packages, not worth a second compression pass);
* folder 1, Deflate: everything else (repodata, manifest, SBOM, batch files, micromamba.exe).
  Deflate, not LZMA2: libarchive decodes Deflate with zlib, which every Windows ``tar.exe`` has;
  LZMA/LZMA2 need liblzma, which Windows 10's ``tar.exe`` (bsdtar 3.3.2/3.5.2, "zlib" only) lacks.
  On a 10.6 MB micromamba Deflate gives 4.5 MB, LZMA2 2.9 MB: most of the gain, readable everywhere;
* a plain (not LZMA-encoded) header, for the same reason.

Determinism: entries sorted (packages first, then the rest), one timestamp, fixed attributes
(archive bit + Unix 0644), no names of host or user. The Deflate bytes come from the zlib the
Python process links, so two machines with different zlib builds may differ in that folder; the
zip form stores everything and has no such dependency.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from envpack.archive.base import MAX_RATIO, RATIO_FLOOR, BundleReader, Window, admit_members
from envpack.bundle.manifest import Entry, arcname_key, check_entries, is_package
from envpack.errors import BundleError, first_line

SEVENZIP_MAGIC = b"7z\xbc\xaf\x27\x1c"


# FILE_ATTRIBUTE_ARCHIVE, py7zr's "Unix extension" flag, and rw-r--r-- like the zip writer.
SEVENZIP_ATTRIBUTES = 0x20 | 0x8000 | (0o100644 << 16)


FILETIME_UNIX_OFFSET = 11644473600  # seconds from 1601-01-01 to 1970-01-01
# The py7zr series whose internals this module uses (tested with 1.1.4); pyproject pins the same.
PY7ZR_SUPPORTED = ((1, 1), (2, 0))  # from 1.1 up to, not including, 2.0


def _py7zr() -> Any:
    """py7zr, when it is a release this module was written against; else a BundleError."""
    try:
        import py7zr
    except ImportError:
        raise BundleError(
            "7z bundles need py7zr, which is not installed; install py7zr>=1.1,<2 "
            "or use --format zip"
        ) from None
    version = str(getattr(py7zr, "__version__", "unknown"))
    parts = version.split(".")
    try:
        key = (int(parts[0]), int(parts[1]))
    except (IndexError, ValueError):
        key = (0, 0)
    low, high = PY7ZR_SUPPORTED
    if not low <= key < high:
        raise BundleError(
            f"py7zr {version} is not a release envpack's 7z code supports (1.1 to 1.x); "
            "install py7zr>=1.1,<2 or use --format zip"
        )
    return py7zr


def _py7zr_failed(exc: Exception, what: str) -> BundleError:
    version = _py7zr().__version__
    return BundleError(f"py7zr {version} failed {what} ({first_line(exc)}); use --format zip")


class _Counting:
    """Reads a source for py7zr, counting bytes for the progress callback and the size check."""

    def __init__(self, src: IO[bytes], advance: Callable[[int], None] | None) -> None:
        self._src = src
        self._advance = advance
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(n)
        self.count += len(data)
        if data and self._advance is not None:
            self._advance(len(data))
        return data


def write_7z_stream(
    fp: IO[bytes],
    top: str,
    entries: Sequence[Entry],
    epoch: int,
    advance: Callable[[int], None] | None = None,
) -> None:
    """Write the bundle as a 7z to ``fp`` (seekable, positioned at 0).

    An OSError (disk full) goes up as it is, for the caller to name the file; anything else py7zr
    raises becomes a BundleError.
    """
    py7zr = _py7zr()
    check_entries(entries)
    if not entries:
        raise BundleError("a bundle needs at least one file")
    try:
        _write_7z(py7zr, fp, top, entries, epoch, advance)
    except (BundleError, OSError):
        raise
    except Exception as exc:
        raise _py7zr_failed(exc, "writing the 7z") from None


def _write_7z(
    py7zr: Any,
    fp: IO[bytes],
    top: str,
    entries: Sequence[Entry],
    epoch: int,
    advance: Callable[[int], None] | None,
) -> None:
    from py7zr.helpers import ArchiveTimestamp

    mtime = ArchiveTimestamp((epoch + FILETIME_UNIX_OFFSET) * 10_000_000)
    groups = [
        (
            [{"id": py7zr.FILTER_COPY}],
            sorted((e for e in entries if is_package(e)), key=arcname_key),
        ),
        (
            [{"id": py7zr.FILTER_DEFLATE}],
            sorted((e for e in entries if not is_package(e)), key=arcname_key),
        ),
    ]
    groups = [(f, g) for f, g in groups if g]
    # py7zr's public writef() stamps "now" on every file and puts every file in one folder with
    # one coder chain; the few lines below do what writef() does, with our own time and
    # attributes, and start the second folder the way py7zr's append mode does.
    szf = py7zr.SevenZipFile(fp, "w", filters=groups[0][0])
    szf.set_encoded_header_mode(False)
    for n, (filters, group) in enumerate(groups):
        if n > 0:
            folders = szf.header.main_streams.unpackinfo.folders
            szf.worker.flush_archive(szf.fp, folders[-1])
            szf.header.filters = filters
            szf.header._initialized = False
        for pending in group:
            entry = pending.ready()
            with entry.open() as src:
                reader = _Counting(src, advance)
                info: dict[str, Any] = {
                    "origin": None,
                    "data": reader,
                    "filename": f"{top}/{entry.arcname}",
                    "uncompressed": entry.size,
                    "emptystream": False,
                    "attributes": SEVENZIP_ATTRIBUTES,
                    "lastwritetime": mtime,
                }
                folder = szf.header.initialize()
                szf.header.files_info.files.append(info)
                szf.header.files_info.emptyfiles.append(False)
                szf.files.append(info)
                szf.worker.archive(szf.fp, szf.files, folder, deref=False)
            if reader.count != entry.size:
                raise BundleError(
                    f"{entry.arcname} changed while the bundle was written "
                    f"({reader.count} bytes, expected {entry.size})"
                )
    szf.close()


class _SpoolIO:
    """Where py7zr's extract() writes a compressed member (the methods of py7zr.io.Py7zIO)."""

    def __init__(self) -> None:
        self.file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=16 << 20)  # noqa: SIM115

    def write(self, s: bytes | bytearray) -> int:
        return self.file.write(s)

    def read(self, size: int | None = None) -> bytes:
        return self.file.read(-1 if size is None else size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.file.seek(offset, whence)

    def flush(self) -> None:
        self.file.flush()

    def size(self) -> int:
        pos = self.file.tell()
        end = self.file.seek(0, io.SEEK_END)
        self.file.seek(pos)
        return end

    def close(self) -> None:
        pass  # py7zr calls this when the member is done; the reader still needs the data


@dataclass(frozen=True)
class _Member7z:
    full: str
    size: int
    start: int | None  # absolute offset of the bytes when the member's folder is stored (Copy)


def _has_7z_magic(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(len(SEVENZIP_MAGIC)) == SEVENZIP_MAGIC
    except OSError:
        return False


class SevenZipReader(BundleReader):
    """A 7z bundle. Stored (Copy) members are read in place; others are decompressed by py7zr.

    ``opener`` gives a fresh handle on the archive bytes (default: the file ``source``); split
    parts pass one that joins them.
    """

    kind = "7z"

    @classmethod
    def probe(cls, path: Path) -> bool:
        return path.is_file() and (path.suffix.lower() == ".7z" or _has_7z_magic(path))

    def __init__(
        self,
        source: Path,
        opener: Callable[[], IO[bytes]] | None = None,
        archive_size: int | None = None,
    ) -> None:
        py7zr = _py7zr()
        super().__init__(source)
        self._opener: Callable[[], IO[bytes]] = opener or (lambda: source.open("rb"))
        self._szf: Any = None
        try:
            self._fp = self._opener()
            self.archive_size = archive_size if archive_size is not None else source.stat().st_size
        except OSError as exc:
            raise BundleError(f"{source}: cannot read ({exc.strerror})") from None
        try:
            self._szf = py7zr.SevenZipFile(self._fp, "r")
            found = self._index()
        except Exception as exc:  # py7zr raises many types for a damaged or foreign archive
            self.close()
            raise BundleError(f"{source}: not a readable 7z archive ({first_line(exc)})") from None
        self._members: dict[str, _Member7z] = {}
        self._damaged: dict[str, str] = {}
        self._scan(found)

    def _index(self) -> list[tuple[_Member7z, str | None]]:
        """Every file with where its bytes are, and why it cannot be read (or None)."""
        szf = self._szf
        header = szf.header
        folder_start: dict[int, int] = {}
        folder_problem: dict[int, str] = {}
        if header.main_streams is not None:
            packinfo = header.main_streams.packinfo
            pos = szf.afterheader + packinfo.packpos
            stream = 0
            for fold in header.main_streams.unpackinfo.folders:
                count = max(1, len(fold.packed_indices))
                packed = sum(packinfo.packsizes[stream : stream + count])
                unpacked = fold.get_unpack_size()
                folder_start[id(fold)] = pos
                if pos + packed > self.archive_size:
                    folder_problem[id(fold)] = (
                        f"its data ends at byte {pos + packed}, past the end of the "
                        f"{self.archive_size}-byte archive (truncated or hostile)"
                    )
                elif unpacked > RATIO_FLOOR and unpacked > MAX_RATIO * max(packed, 1):
                    folder_problem[id(fold)] = (
                        f"its block expands {packed} bytes to {unpacked}, "
                        "an implausible ratio (archive bomb?)"
                    )
                pos += packed
                stream += count
        found: list[tuple[_Member7z, str | None]] = []
        offsets: dict[int, int] = {}
        for f in szf.files:
            info = f.file_properties()
            if f.is_directory:
                continue
            size = int(info.get("uncompressed") or 0)
            folder: Any = info.get("folder")
            start: int | None = None
            problem: str | None = None
            if f.is_symlink or f.is_junction:
                problem = "a symlink, not a file"
            if folder is not None:
                off = offsets.get(id(folder), 0)
                offsets[id(folder)] = off + size
                problem = problem or folder_problem.get(id(folder))
                if len(folder.coders) == 1 and folder.coders[0]["method"] == b"\x00":
                    start = folder_start[id(folder)] + off
            found.append((_Member7z(f.filename, size, start), problem))
        return found

    def _scan(self, found: list[tuple[_Member7z, str | None]]) -> None:
        symlink = "a symlink, not a file"
        self.top, admitted = admit_members(
            [(m.full, (m, problem), problem == symlink) for m, problem in found], self.problems
        )
        for name, (member, problem) in admitted.items():
            self._members[name] = member
            if problem:
                self._damaged[name] = problem

    def names(self) -> list[str]:
        return sorted(self._members)

    def size(self, name: str) -> int:
        return self._members[name].size

    def damaged(self, name: str) -> str | None:
        return self._damaged.get(name)

    def _open(self, name: str, seekable: bool) -> IO[bytes]:
        member = self._members[name]
        if member.start is not None:
            return cast(IO[bytes], Window(self._opener(), member.start, member.size))
        return self._extract(member)

    def _extract(self, member: _Member7z) -> IO[bytes]:
        from py7zr.io import WriterFactory

        spool = _SpoolIO()

        class Factory(WriterFactory):
            def create(self, filename: str) -> Any:
                return spool

        try:
            self._szf.reset()
            self._szf.extract(targets=[member.full], factory=Factory())
        except BundleError:
            raise
        except Exception as exc:  # py7zr's many error types for damaged data
            spool.file.close()
            raise BundleError(f"{member.full}: damaged ({first_line(exc)})") from None
        if spool.size() != member.size:
            spool.file.close()
            raise BundleError(
                f"{member.full}: decompressed to {spool.size()} bytes, expected {member.size}"
            )
        spool.file.seek(0)
        return spool.file

    def close(self) -> None:
        if self._szf is not None:
            # closing a half-read archive must not hide the error that got us here
            with contextlib.suppress(Exception):
                self._szf.close()
            self._szf = None
        fp = getattr(self, "_fp", None)
        if fp is not None:
            fp.close()
