"""Split bundles: the writer that rolls over to ``NAME.002``, ``NAME.003``, … as each part fills
(for size-capped media), and the reader that joins the parts back without copying them. The
files written beside the parts are :mod:`.joinbat`'s."""

from __future__ import annotations

import bisect
import hashlib
import io
import os
import re
import sys
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from envpack.archive.base import BundleReader, Window
from envpack.archive.copier import BackgroundCopies
from envpack.archive.joinbat import JOIN_SCRIPT, PART_RE, read_join_vars
from envpack.archive.kcopy import Method, copy_methods, copy_range, reserve
from envpack.archive.sevenzip import SEVENZIP_MAGIC, SevenZipReader
from envpack.archive.zip import ZipBundleReader
from envpack.errors import BundleError, first_line
from envpack.limits import CHUNK

# Background copies (.copier) only where they were measured, and where the kernel copies: on
# Linux. Elsewhere the plain copy's writes land past the writer's headers, which NTFS would first
# fill with zeros (a write beyond a file's valid data length), writing every body twice.
_BACKGROUND = sys.platform.startswith("linux")

MAX_PARTS = 999  # NAME.001 … NAME.999: the three-digit names 7-Zip and join.bat use


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
        self._copies: BackgroundCopies | None = None

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
        # O_BINARY: Windows' C runtime opens a descriptor in text mode otherwise (LF -> CRLF)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
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

    def copy_from(
        self,
        src: int,
        src_off: int,
        count: int,
        advance: Callable[[int], None] | None = None,
        short: Callable[[int], BaseException] | None = None,
    ) -> int:
        """Write ``count`` bytes of the file ``src`` (a descriptor) from ``src_off`` here, by
        kernel copy into each part they fall in. Returns the bytes copied: fewer only when
        ``src`` ends first.

        With ``short`` (what to raise when ``src`` ends first), an unsplit file may copy in the
        background (:mod:`.copier`): this returns ``count`` at once, and a failure is raised by
        a later call or by :meth:`wait`, which the writer calls before :meth:`finish`.
        """
        if short is not None and self.part_size is None and count > 0 and _BACKGROUND:
            fh = self._handle(0)
            fh.flush()
            if self._copies is None:
                self._copies = BackgroundCopies(self.part_path(0))
            self._copies.submit(src, src_off, self._pos, count, short, advance)
            self._pos += count
            self._end = max(self._end, self._pos)
            return count
        methods: list[Method] | None = None
        done = 0
        while done < count:
            if self.part_size is None:
                index, offset, room = 0, self._pos, count - done
            else:
                index, offset = divmod(self._pos, self.part_size)
                room = self.part_size - offset
            step = min(room, count - done)
            fh = self._handle(index)
            fh.flush()  # buffered bytes before the copied ones must reach the file first
            # Its blocks first, in one piece (see kcopy.reserve): only now, when the source is
            # there, so a build still downloading does not hold room the cache needs.
            reserve(fh.fileno(), offset, step)
            if methods is None:  # every part is in the same folder: one filesystem
                methods = copy_methods(fh.fileno())
            n = copy_range(src, src_off + done, fh.fileno(), offset, step, advance, methods)
            done += n
            self._pos += n
            self._end = max(self._end, self._pos)
            if n < step:
                break
        return done

    def wait(self) -> None:
        """Return once the background copies are done (see :meth:`copy_from`); raise the first
        failure among them."""
        if self._copies is not None:
            self._copies.wait()

    def close(self) -> None:
        # Copies still running (the writer failed or was interrupted) stop before the files
        # they write into are closed and removed.
        if self._copies is not None:
            self._copies.close()
        while self._handles:
            _, fh = self._handles.popitem()
            fh.close()
        super().close()

    def finish(self) -> list[Path]:
        """Close every part and check that each holds exactly its share of the bytes."""
        self.wait()
        self.close()
        if self._copies is not None and self._copies.stopped_unfinished:
            raise BundleError(f"internal error: {self.name} was closed while copies still ran")
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
    m = PART_RE.fullmatch(path.name)
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
        join = read_join_vars(self.folder / JOIN_SCRIPT)
        if join.get("TARGET") == self.target:
            try:
                return int(join["PARTS"]), int(join["PART_SIZE"]), int(join["LAST_SIZE"])
            except (KeyError, ValueError):
                pass
        nums = [
            int(m.group("num"))
            for listed in self._sha256_lines()
            if (m := PART_RE.fullmatch(listed)) and m.group("base") == self.target
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
