"""Bundle containers (zip, 7z), split parts for size-capped media, and readers for both.

Writing: :func:`write_bundle` streams the bundle through a :class:`PartWriter`, a seekable file
object that rolls over to ``NAME.002``, ``NAME.003``, … as it fills. zipfile and py7zr both seek
back to patch headers (local headers; the 7z signature header at offset 0), so the writer keeps
the parts open for rewriting rather than cutting a finished file afterwards.

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

import bisect
import contextlib
import hashlib
import io
import os
import re
import shutil
import tempfile
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from envpack.archive.base import (
    MAX_RATIO,
    RATIO_FLOOR,
    READERS,
    BundleReader,
    Window,
    ZipBundleReader,
    admit_members,
)
from envpack.archive.tar import TarBundleReader, write_tar_stream
from envpack.bundle.manifest import CHUNK, Entry, check_entries
from envpack.bundle.manifest import write_zip_entries as _write_zip_entries
from envpack.bundle.stubs import batch_quote, load_template, render, to_crlf
from envpack.errors import BundleError, RecipeError, first_line
from envpack.names import file_name_problem

FORMATS = ("zip", "7z", "tar")
MIB = 1 << 20
SPLIT_MIN = MIB
FAT32_MAX_FILE = (1 << 32) - 1
# 4000 MiB: the round number users already type ("--split 4000M"), 96 MiB under FAT32's
# 4 GiB - 1 byte limit, so no part ever meets the limit even if a tool rounds sizes up.
FAT32_PRESET = 4000 * MIB
MAX_PARTS = 999  # NAME.001 … NAME.999: the three-digit names 7-Zip and join.bat use
JOIN_SCRIPT = "join.bat"
SPLIT_README = "README.txt"
README_MARKER = "envpack split bundle:"
SEVENZIP_MAGIC = b"7z\xbc\xaf\x27\x1c"
PACKAGE_SUFFIXES = (".conda", ".tar.bz2")
# FILE_ATTRIBUTE_ARCHIVE, py7zr's "Unix extension" flag, and rw-r--r-- like the zip writer.
SEVENZIP_ATTRIBUTES = 0x20 | 0x8000 | (0o100644 << 16)
FILETIME_UNIX_OFFSET = 11644473600  # seconds from 1601-01-01 to 1970-01-01

_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_PART_RE = re.compile(r"(?P<base>.+)\.(?P<num>\d{3})")
_BAD_NAME_CHARS = set('\\/:*?"<>|')


# --------------------------------------------------------------------------- sizes


def parse_size(text: str) -> int:
    """``700M``, ``4000M``, ``1G``, ``1.5G``, ``fat32`` → bytes (K/M/G are powers of 1024).

    Sizes under 1 MiB (thousands of parts, nothing gained) or over FAT32's largest file
    (4 GiB − 1 byte) are refused.
    """
    raw = text.strip()
    if raw.lower() == "fat32":
        return FAT32_PRESET
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?", raw, re.IGNORECASE)
    if not m:
        raise RecipeError(f"split size {text!r} is not a size; use e.g. 700M, 4000M, 1G or fat32")
    value = int(Fraction(m.group(1)) * _UNITS[m.group(2).upper()])
    check_split_size(value, text)
    return value


def check_split_size(value: int, shown: str | None = None) -> None:
    label = shown if shown is not None else f"{value} bytes"
    if value < SPLIT_MIN:
        raise RecipeError(f"split size {label} is under the 1 MiB minimum; use e.g. 700M")
    if value > FAT32_MAX_FILE:
        raise RecipeError(
            f"split size {label} is over FAT32's 4 GiB - 1 byte file limit; "
            "use fat32 (4000 MiB) or less"
        )


def check_filename(name: str) -> None:
    """A bundle file name must be one safe Windows file name that join.bat can quote."""
    problem = file_name_problem(name)
    if problem is None and any(ch in _BAD_NAME_CHARS for ch in name):
        problem = "a character Windows file names cannot hold"
    if problem:
        raise BundleError(f"{name!r} is not a valid Windows file name for a bundle ({problem})")


# --------------------------------------------------------------------------- part writer


class PartWriter(io.RawIOBase):
    """A seekable, write-only file made of ``NAME`` (no split) or ``NAME.001``, ``NAME.002``, ….

    Part *i* holds bytes ``[i*size, (i+1)*size)`` of the logical file. At most two part files
    are open at once: the tail being appended to, and the one a writer went back to patch.
    """

    def __init__(self, directory: Path, name: str, part_size: int | None) -> None:
        super().__init__()
        self.directory = directory
        self.name = name
        self.part_size = part_size
        self._pos = 0
        self._end = 0
        self._handles: OrderedDict[int, BinaryIO] = OrderedDict()

    def part_path(self, index: int) -> Path:
        if self.part_size is None:
            return self.directory / self.name
        return self.directory / f"{self.name}.{index + 1:03d}"

    @property
    def part_count(self) -> int:
        if self.part_size is None:
            return 1
        return max(1, -(-self._end // self.part_size))

    def part_paths(self) -> list[Path]:
        return [self.part_path(i) for i in range(self.part_count)]

    @property
    def size(self) -> int:
        return self._end

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._end + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    def _handle(self, index: int) -> BinaryIO:
        fh = self._handles.get(index)
        if fh is not None:
            self._handles.move_to_end(index)
            return fh
        if self.part_size is not None and index >= MAX_PARTS:
            raise BundleError(
                f"{self.name} needs more than {MAX_PARTS} parts of {self.part_size} bytes; "
                "choose a larger split size"
            )
        path = self.part_path(index)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        fh = os.fdopen(fd, "r+b")
        self._handles[index] = fh
        while len(self._handles) > 2:
            _, old = self._handles.popitem(last=False)
            old.close()
        return fh

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        total = len(view)
        done = 0
        while done < total:
            if self.part_size is None:
                index, offset, room = 0, self._pos, total - done
            else:
                index, offset = divmod(self._pos, self.part_size)
                room = self.part_size - offset
            chunk = view[done : done + min(room, total - done)]
            fh = self._handle(index)
            fh.seek(offset)
            fh.write(chunk)
            done += len(chunk)
            self._pos += len(chunk)
        self._end = max(self._end, self._pos)
        return total

    def close(self) -> None:
        while self._handles:
            _, fh = self._handles.popitem()
            fh.close()
        super().close()

    def finish(self) -> list[Path]:
        """Close every part and check that each holds exactly its share of the bytes."""
        self.close()
        paths = self.part_paths()
        for i, path in enumerate(paths):
            want = (
                self._end
                if self.part_size is None
                else min(self.part_size, self._end - i * self.part_size)
            )
            if not path.is_file() or path.stat().st_size != want:
                raise BundleError(f"internal error: {path.name} was not written in full")
        return paths


# --------------------------------------------------------------------------- containers


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


def _is_package(entry: Entry) -> bool:
    return entry.arcname.endswith(PACKAGE_SUFFIXES)


def write_7z_stream(
    fp: IO[bytes],
    top: str,
    entries: Sequence[Entry],
    epoch: int,
    advance: Callable[[int], None] | None = None,
) -> None:
    """Write the bundle as a 7z to ``fp`` (seekable, positioned at 0)."""
    import py7zr
    from py7zr.helpers import ArchiveTimestamp

    check_entries(entries)
    if not entries:
        raise BundleError("a bundle needs at least one file")
    mtime = ArchiveTimestamp((epoch + FILETIME_UNIX_OFFSET) * 10_000_000)
    groups = [
        ([{"id": py7zr.FILTER_COPY}], sorted((e for e in entries if _is_package(e)), key=_key)),
        (
            [{"id": py7zr.FILTER_DEFLATE}],
            sorted((e for e in entries if not _is_package(e)), key=_key),
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
            szf.worker.flush_archive(szf.fp, folders[-1])  # type: ignore[no-untyped-call]
            szf.header.filters = filters
            szf.header._initialized = False
        for entry in group:
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
                szf.files.append(info)  # type: ignore[arg-type]
                szf.worker.archive(szf.fp, szf.files, folder, deref=False)
            if reader.count != entry.size:
                raise BundleError(
                    f"{entry.arcname} changed while the bundle was written "
                    f"({reader.count} bytes, expected {entry.size})"
                )
    szf.close()


def write_zip_stream(
    fp: IO[bytes],
    top: str,
    entries: Sequence[Entry],
    epoch: int,
    header: bytes = b"",
    advance: Callable[[int], None] | None = None,
) -> None:
    """The same bytes as :func:`envpack.bundle.manifest.write_zip`, written to a seekable stream.

    The header goes first and the zip's offsets count from the start of the stream (absolute),
    exactly as zipfile's ``"a"`` mode on a non-zip file produces.
    """
    fp.write(header)
    with zipfile.ZipFile(fp, "w", allowZip64=True) as zf:
        _write_zip_entries(zf, top, entries, epoch, advance)


def _key(e: Entry) -> str:
    return e.arcname


# --------------------------------------------------------------------------- write_bundle


@dataclass(frozen=True)
class SplitInfo:
    """What join.bat and the readers need to know about a split bundle."""

    target: str
    parts: int
    part_size: int
    last_size: int
    total_size: int


def bundle_filename(stem: str, fmt: str, header: bytes) -> str:
    if header:
        return f"{stem}.sh" if fmt == "tar" else f"{stem}.bat"
    return f"{stem}.{fmt}"


def write_bundle(
    out_dir: Path,
    stem: str,
    top: str,
    entries: Sequence[Entry],
    epoch: int,
    fmt: str = "zip",
    header: bytes = b"",
    split: int | None = None,
    advance: Callable[[int], None] | None = None,
    filename: str | None = None,
) -> list[Path]:
    """Write the bundle into ``out_dir``; return the files written, the bundle (or parts) first.

    The file is ``filename`` if given, else ``<stem>.zip`` / ``<stem>.7z``, or ``<stem>.bat``
    for the self-extracting form (a ``header`` before a zip; 7z readers do not look past a
    batch header, so that form is zip only).

    With ``split`` (bytes per part, see :func:`parse_size`) the bundle is written as
    ``NAME.001``, ``NAME.002``, … with ``join.bat``, ``NAME.sha256`` and ``README.txt`` beside
    them. ``join.bat`` and ``README.txt`` have fixed names, so two split bundles need two folders;
    writing a second one into a folder that holds another's join.bat is refused.

    Everything is written under temporary names in ``out_dir`` and renamed at the end; on any
    failure nothing new is left behind. Leftovers of an earlier build of the same name in the
    other form (parts beside a new whole file, or the reverse) are removed, so join.bat can never
    rebuild an old bundle over a new one.
    """
    staged = stage_bundle(out_dir, stem, top, entries, epoch, fmt, header, split, advance, filename)
    try:
        return staged.commit()
    finally:
        staged.discard()


@dataclass
class StagedBundle:
    """A bundle written in full under a temporary folder of ``out_dir``, not yet in place.

    A build writes every output (the zip, the self-extracting .bat) staged first and commits
    them together, so a failure half-way (disk full in the second) leaves the folder as it was.
    """

    out_dir: Path
    name: str
    tmp: Path
    files: list[Path]  # inside tmp: the bundle (or its parts) first
    parts: int  # 0 for a whole file

    def commit(self) -> list[Path]:
        results: list[Path] = []
        for path in self.files:
            final = self.out_dir / path.name
            os.chmod(path, 0o644)
            os.replace(path, final)
            results.append(final)
        _remove_stale(self.out_dir, self.name, self.parts)
        return results

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


_STAGING_RE = re.compile(r"^\.envpack-(?P<pid>\d+)-.*\.tmp$")


def _remove_dead_staging(out_dir: Path) -> None:
    """Staging folders of builds that were killed (kill -9, power cut) are removed by the next
    build into the same folder; those of a build still running are left alone."""
    try:
        candidates = [p for p in out_dir.iterdir() if _STAGING_RE.match(p.name)]
    except OSError:
        return
    for path in candidates:
        m = _STAGING_RE.match(path.name)
        assert m is not None
        if not _process_alive(int(m["pid"])):
            shutil.rmtree(path, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, but someone else's
    return True


def stage_bundle(
    out_dir: Path,
    stem: str,
    top: str,
    entries: Sequence[Entry],
    epoch: int,
    fmt: str = "zip",
    header: bytes = b"",
    split: int | None = None,
    advance: Callable[[int], None] | None = None,
    filename: str | None = None,
) -> StagedBundle:
    """Write the bundle as :func:`write_bundle` does, but leave it staged (see StagedBundle)."""
    if fmt not in FORMATS:
        raise RecipeError(f"unknown bundle format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if header and fmt not in ("zip", "tar"):
        raise BundleError("the self-extracting .bat bundle is a zip; it cannot be written as 7z")
    if split is not None and fmt == "tar":
        # The split reader reads zip and 7z inside parts; a tar in parts could not be verified.
        raise RecipeError("a .tar bundle cannot be split; drop --split or use --format zip")
    name = filename or bundle_filename(stem, fmt, header)
    check_filename(name)
    check_filename(top)
    check_entries(entries)
    if split is not None:
        check_split_size(split)
        stored = sum(e.size for e in entries if _is_package(e))
        if stored > split * MAX_PARTS:
            raise BundleError(
                f"{name} would need more than {MAX_PARTS} parts of {split} bytes; "
                "choose a larger split size"
            )
        _check_split_folder(out_dir, name)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        _remove_dead_staging(out_dir)
        tmp = Path(tempfile.mkdtemp(prefix=f".envpack-{os.getpid()}-", suffix=".tmp", dir=out_dir))
    except OSError as exc:
        raise BundleError(f"cannot write to {out_dir}: {exc.strerror}") from None
    try:
        writer = PartWriter(tmp, name, split)
        try:
            if fmt == "7z":
                write_7z_stream(cast(IO[bytes], writer), top, entries, epoch, advance)
            elif fmt == "tar":
                write_tar_stream(cast(IO[bytes], writer), top, entries, epoch, header, advance)
            else:
                write_zip_stream(cast(IO[bytes], writer), top, entries, epoch, header, advance)
        finally:
            writer.close()
        parts = writer.finish()
        extras: list[Path] = []
        if split is not None:
            info = SplitInfo(
                target=name,
                parts=len(parts),
                part_size=split,
                last_size=parts[-1].stat().st_size,
                total_size=writer.size,
            )
            extras = _write_split_files(tmp, info, parts, top, fmt, bool(header))
        return StagedBundle(
            out_dir, name, tmp, [*parts, *extras], len(parts) if split is not None else 0
        )
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno == 28:
            raise BundleError(
                f"disk full while writing {out_dir / name}; free some space"
            ) from None
        raise BundleError(f"cannot write {out_dir / name}: {exc.strerror}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_split_files(
    tmp: Path, info: SplitInfo, parts: list[Path], top: str, fmt: str, sfx: bool
) -> list[Path]:
    whole = hashlib.sha256()
    lines: list[str] = []
    for path in parts:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                h.update(chunk)
                whole.update(chunk)
        lines.append(f"{h.hexdigest()}  {path.name}\n")
    sums = tmp / f"{info.target}.sha256"
    # sha256sum format, the whole file first: "sha256sum -c" checks the parts before joining
    # (with --ignore-missing) and everything after.
    sums.write_text(f"{whole.hexdigest()}  {info.target}\n" + "".join(lines), encoding="utf-8")
    join = tmp / JOIN_SCRIPT
    join.write_bytes(render_join(info, top, fmt, sfx))
    readme = tmp / SPLIT_README
    readme.write_bytes(to_crlf(split_readme_text(info, top, fmt, sfx)))
    return [sums, readme, join]


def render_join(info: SplitInfo, top: str, fmt: str, sfx: bool) -> bytes:
    if sfx:
        nxt = (
            'echo join: starting the installer "%TARGET%" ...\n'
            # No CALL: it would read the line again, doubling a "^" and expanding a "%" of the
            # path. Running the installer as the last command hands over control and its exit
            # code alike.
            '"%OUT%" %*\n'
        )
    elif fmt == "7z":
        nxt = (
            'echo join: next, extract "%TARGET%" here with 7-Zip, or in cmd.exe with:\n'
            'echo     tar -xf "%TARGET%"\n'
            'echo   then run setup.bat in the "%TOP%" folder.'
        )
    else:
        nxt = (
            'echo join: next, extract "%TARGET%" here (Explorer: right-click, Extract All),\n'
            'echo   or in cmd.exe with:  tar -xf "%TARGET%"\n'
            'echo   then run setup.bat in the "%TOP%" folder.'
        )
    values = {
        "TARGET": batch_quote(info.target),
        "TOP": batch_quote(top),
        "PARTS": str(info.parts),
        "PART_SIZE": str(info.part_size if info.parts > 1 else info.last_size),
        "LAST_SIZE": str(info.last_size),
        "TOTAL_SIZE": str(info.total_size),
        "LAST_NUM": f"{info.parts:03d}",
        "NEXT": nxt,
    }
    return render(load_template(JOIN_SCRIPT), values)


def split_readme_text(info: SplitInfo, top: str, fmt: str, sfx: bool) -> str:
    last = f"{info.target}.{info.parts:03d}"
    if sfx:
        then = "join.bat then starts the installer (it passes its arguments on, e.g. a prefix)."
    elif fmt == "7z":
        then = f'Then extract {info.target} (7-Zip, or "tar -xf") and run {top}\\setup.bat.'
    else:
        then = f'Then extract {info.target} (Extract All, or "tar -xf") and run {top}\\setup.bat.'
    return f"""{README_MARKER} {info.target}
{"=" * (len(README_MARKER) + 1 + len(info.target))}

{info.target} ({info.total_size} bytes) is split into {info.parts} parts:
{info.target}.001 to {last}.

1. Copy ALL the files of this folder ({info.parts} parts, join.bat, {info.target}.sha256) into one
   folder on the PC's own disk (NTFS). A FAT32 stick can carry the parts but cannot hold the
   joined file when it is over 4 GiB.
2. Double-click join.bat (or run it in cmd.exe). It checks that every part is there with its
   size, joins them into {info.target}, and checks the result.
3. {then}

With 7-Zip, {info.target}.001 also opens directly, without joining.
{info.target}.sha256 lists the SHA-256 of every part and of {info.target}
(check one with: certutil -hashfile {info.target} SHA256).
"""


def _read_join_vars(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        text = path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return values
    for line in text.splitlines():
        m = re.fullmatch(r'set "([A-Z_]+)=(.*)"', line.strip())
        if m and m.group(1) not in values:
            values[m.group(1)] = m.group(2).replace("%%", "%")
    return values


def _check_split_folder(out_dir: Path, name: str) -> None:
    join = out_dir / JOIN_SCRIPT
    if join.is_file():
        target = _read_join_vars(join).get("TARGET")
        if target != name:
            raise BundleError(
                f"{out_dir} already holds {JOIN_SCRIPT} for {target or 'another file'}; "
                f"write the split parts of {name} to a folder of their own"
            )
    readme = out_dir / SPLIT_README
    if readme.is_file() and not _readme_is_ours(readme, name):
        raise BundleError(
            f"{out_dir} already holds a {SPLIT_README} that is not {name}'s; "
            f"write the split parts of {name} to a folder of their own"
        )


def _readme_is_ours(path: Path, name: str) -> bool:
    try:
        with path.open("rb") as fh:
            first = fh.readline().decode("utf-8", "replace").strip()
    except OSError:
        return False
    return first == f"{README_MARKER} {name}"


def _remove_stale(out_dir: Path, name: str, parts: int) -> None:
    """Remove what an earlier build of ``name`` left that the new one does not replace."""
    for path in out_dir.iterdir():
        m = _PART_RE.fullmatch(path.name)
        if m and m.group("base") == name and int(m.group("num")) > parts and path.is_file():
            path.unlink()
    if parts:
        (out_dir / name).unlink(missing_ok=True)
        return
    (out_dir / f"{name}.sha256").unlink(missing_ok=True)
    join = out_dir / JOIN_SCRIPT
    if join.is_file() and _read_join_vars(join).get("TARGET") == name:
        join.unlink()
    readme = out_dir / SPLIT_README
    if readme.is_file() and _readme_is_ours(readme, name):
        readme.unlink()


# --------------------------------------------------------------------------- readers
#
# Both readers implement reader.BundleReader (names relative to the top folder, member names
# checked with unsafe_reason, damaged members listed but refused). SplitReader must be asked
# before reader.FolderBundleReader, which claims every folder: see register_readers().


class _SpoolIO:
    """Where py7zr's extract() writes a compressed member (the methods of py7zr.io.Py7zIO)."""

    def __init__(self) -> None:
        self.file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=16 * MIB)  # noqa: SIM115

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
        import py7zr

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


class JoinedFile(io.RawIOBase):
    """Read-only, seekable view of parts laid end to end (no joined copy is made)."""

    def __init__(self, parts: Sequence[Path], sizes: Sequence[int]) -> None:
        super().__init__()
        self.parts = list(parts)
        self._starts: list[int] = []
        total = 0
        for size in sizes:
            self._starts.append(total)
            total += size
        self.size = total
        self._pos = 0
        self._index = -1
        self._fh: io.BufferedReader | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._pos >= self.size or not len(view):
            return 0
        index = bisect.bisect_right(self._starts, self._pos) - 1
        if index != self._index:
            if self._fh is not None:
                self._fh.close()
            self._fh = self.parts[index].open("rb")
            self._index = index
        assert self._fh is not None
        end = self._starts[index + 1] if index + 1 < len(self._starts) else self.size
        self._fh.seek(self._pos - self._starts[index])
        data = self._fh.read(min(len(view), end - self._pos))
        if not data:
            raise BundleError(f"{self.parts[index].name} is shorter than when it was checked")
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        super().close()


class _JoinedZipReader(ZipBundleReader):
    """A zip or self-extracting .bat read through its split parts, with ZipBundleReader's checks."""

    def __init__(self, source: Path, opener: Callable[[], JoinedFile]) -> None:
        BundleReader.__init__(self, source)
        self._opener = opener
        self._joined = opener()
        try:
            self._zf = zipfile.ZipFile(cast(IO[bytes], self._joined))
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            self._joined.close()
            raise BundleError(f"{source}: not a readable zip ({first_line(exc)})") from None
        self.archive_size = self._joined.size
        infos = self._zf.infolist()
        self.form = "sfx" if infos and infos[0].header_offset > 0 else "zip"
        self._members: dict[str, zipfile.ZipInfo] = {}
        self._damaged: dict[str, str] = {}
        self._scan()

    def _open(self, name: str, seekable: bool) -> IO[bytes]:
        info = self._members[name]
        if not (seekable and info.compress_type == zipfile.ZIP_STORED):
            return self._zf.open(info)
        fh = self._opener()
        try:
            fh.seek(info.header_offset)
            header = fh.read(30)
            if len(header) != 30 or header[:4] != b"PK\x03\x04":
                raise zipfile.BadZipFile("bad local file header")
            name_len = int.from_bytes(header[26:28], "little")
            extra_len = int.from_bytes(header[28:30], "little")
        except BaseException:
            fh.close()
            raise
        start = info.header_offset + 30 + name_len + extra_len
        return cast(IO[bytes], Window(cast(IO[bytes], fh), start, info.compress_size))

    def close(self) -> None:
        self._zf.close()
        self._joined.close()


def split_base(path: Path) -> tuple[Path, str] | None:
    """(folder, NAME) when ``path`` is a part ``NAME.NNN`` or a folder holding ``NAME.001``."""
    if path.is_dir():
        try:
            firsts = sorted(
                p.name[:-4]
                for p in path.iterdir()
                if p.name.endswith(".001") and len(p.name) > 4 and p.is_file()
            )
        except OSError as exc:
            raise BundleError(f"{path}: cannot list ({exc.strerror})") from None
        if len(firsts) > 1:
            raise BundleError(
                f"{path} holds several split bundles ({', '.join(firsts)}); name a first part"
            )
        return (path, firsts[0]) if firsts else None
    m = _PART_RE.fullmatch(path.name)
    if m is None:
        return None
    return path.parent, m.group("base")


class SplitReader(BundleReader):
    """A bundle split into ``NAME.001``, ``NAME.002``, …: given a part or the folder holding them.

    Before anything is read, every part must be present with the size recorded beside it:
    ``join.bat`` records the count and sizes; without it, ``NAME.sha256`` gives the count, else
    the parts found do. The parts are then read as one file, never joined on disk.
    """

    kind = "split"

    @classmethod
    def probe(cls, path: Path) -> bool:
        try:
            return split_base(path) is not None
        except BundleError:
            return True  # several split bundles in one folder: let __init__ say which

    def __init__(self, source: Path) -> None:
        super().__init__(source)
        base = split_base(source)
        if base is None:
            raise BundleError(f"{source}: not a split bundle (NAME.001, NAME.002, …)")
        self.folder, self.target = base
        self.parts, sizes = self._check_parts()

        def opener() -> JoinedFile:
            return JoinedFile(self.parts, sizes)

        with opener() as probe:
            head = probe.read(len(SEVENZIP_MAGIC))
        where = self.folder / self.target
        self.inner: BundleReader = (
            SevenZipReader(where, lambda: cast(IO[bytes], opener()), sum(sizes))
            if head == SEVENZIP_MAGIC
            else _JoinedZipReader(where, opener)
        )
        count = len(self.parts)
        self.form = f"{self.inner.form} in {count} part{'s' if count != 1 else ''}"
        self.top = self.inner.top
        self.problems = self.inner.problems

    def _part(self, n: int) -> Path:
        return self.folder / f"{self.target}.{n:03d}"

    def _expected(self) -> tuple[int, int | None, int | None]:
        """(parts, size of each part but the last, size of the last), as recorded."""
        join = _read_join_vars(self.folder / JOIN_SCRIPT)
        if join.get("TARGET") == self.target:
            try:
                return int(join["PARTS"]), int(join["PART_SIZE"]), int(join["LAST_SIZE"])
            except (KeyError, ValueError):
                pass
        nums = [
            int(m.group("num"))
            for listed in self._sha256_lines()
            if (m := _PART_RE.fullmatch(listed)) and m.group("base") == self.target
        ]
        if nums:
            return max(nums), None, None
        found = 0
        while self._part(found + 1).is_file():
            found += 1
        return found, None, None

    def _sha256_lines(self) -> dict[str, str]:
        path = self.folder / f"{self.target}.sha256"
        result: dict[str, str] = {}
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return result
        for line in text.splitlines():
            m = re.fullmatch(r"([0-9a-fA-F]{64}) [ *](.+)", line.strip())
            if m:
                result[m.group(2)] = m.group(1).lower()
        return result

    def _check_parts(self) -> tuple[list[Path], list[int]]:
        count, part_size, last_size = self._expected()
        if count < 1:
            raise BundleError(f"{self._part(1)}: the first part is missing")
        parts = [self._part(n) for n in range(1, count + 1)]
        for p in parts:
            if not p.is_file():
                raise BundleError(
                    f"{self.folder}: part {p.name} is missing "
                    f"({count} parts expected, {parts[0].name} to {parts[-1].name})"
                )
        sizes = [p.stat().st_size for p in parts]
        if part_size is None:
            # Nothing recorded: every part but the last has the same size, the largest one.
            part_size = max(sizes[:-1], default=sizes[-1])
        for i, (p, got) in enumerate(zip(parts, sizes, strict=True)):
            want = last_size if i == count - 1 else part_size
            if want is None:
                if got == 0 or got > part_size:
                    raise BundleError(
                        f"{self.folder}: part {p.name} has a wrong size ({got} bytes)"
                    )
            elif got < want:
                raise BundleError(
                    f"{self.folder}: part {p.name} is truncated ({got} bytes, expected {want})"
                )
            elif got > want:
                raise BundleError(
                    f"{self.folder}: part {p.name} has {got} bytes, expected {want}; "
                    "it is not from this bundle"
                )
        return parts, sizes

    def verify_parts(self) -> list[str]:
        """Hash every part (and the whole) against ``NAME.sha256``; one problem per mismatch."""
        listed = self._sha256_lines()
        if not listed:
            return [f"{self.target}.sha256 is missing or unreadable: the parts are not checked"]
        problems: list[str] = []
        whole = hashlib.sha256()
        for p in self.parts:
            h = hashlib.sha256()
            with p.open("rb") as fh:
                while chunk := fh.read(CHUNK):
                    h.update(chunk)
                    whole.update(chunk)
            want = listed.get(p.name)
            if want is None:
                problems.append(f"{p.name} is not listed in {self.target}.sha256")
            elif want != h.hexdigest():
                problems.append(f"{p.name}: SHA-256 does not match {self.target}.sha256")
        want_whole = listed.get(self.target)
        if want_whole is not None and want_whole != whole.hexdigest():
            problems.append(f"the joined parts do not match the SHA-256 of {self.target}")
        return problems

    def names(self) -> list[str]:
        return self.inner.names()

    def size(self, name: str) -> int:
        return self.inner.size(name)

    def damaged(self, name: str) -> str | None:
        return self.inner.damaged(name)

    def _open(self, name: str, seekable: bool) -> IO[bytes]:
        return self.inner._open(name, seekable)

    def close(self) -> None:
        self.inner.close()


def register_readers() -> None:
    """Let reader.open_bundle read 7z and split bundles (idempotent).

    Both go before the readers of reader.py: FolderBundleReader claims every folder (a folder of
    parts is not an unpacked bundle), and ZipBundleReader's zipfile.is_zipfile() also says yes to
    a 7z whose last stored member is a .conda (a zip, end record and all). The 7z probe is exact.
    """
    ours: tuple[type[BundleReader], ...] = (TarBundleReader, SplitReader, SevenZipReader)
    for position, cls in enumerate(ours):
        if cls in READERS:
            READERS.remove(cls)
        READERS.insert(position, cls)


register_readers()
