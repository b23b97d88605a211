"""Read a bundle without trusting it: a zip, a self-extracting .bat, or an unpacked folder.

A bundle being read may be years old, damaged, or made by someone hostile. So nothing here
extracts anything or writes anywhere; member names are checked before they are used (no ``..``,
no absolute paths or drive letters, no backslashes, no names Windows cannot hold, no duplicates,
no symlinks leaving the folder); every member is streamed, and the JSON ones are read only up to a
cap. Members whose sizes cannot be trusted (a stored member whose declared size differs from what
it holds, an implausible compression ratio) stay listed but refuse to open, with the reason.

Formats are classes registered in :data:`READERS`; :func:`open_bundle` is the one place that
chooses among them, so a 7z or split-part reader is one more class and one ``register_reader``.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import zipfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, ClassVar, TypeVar

from envpack.bundle.manifest import MANIFEST_NAME, read_manifest_bytes
from envpack.errors import BundleError, first_line
from envpack.names import member_problem

MAX_JSON = 64 << 20  # a manifest, repodata or SBOM bigger than this is hostile, not a bundle
# Bundles are written stored (ratio 1); re-zipped with deflate, text reaches 10-20:1. Deflate
# itself tops out near 1032:1, so a member past this is a bomb or crafted, not a bundle file.
MAX_RATIO = 200
RATIO_FLOOR = 1 << 20  # small members may compress absurdly well (runs of zeros) and are harmless
CHUNK = 1 << 20
MAX_HEADER = 1 << 20  # envpack's batch headers are ~20 KB; a megabyte is not one of them

_STREAM_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    struct.error,
)


def unsafe_reason(name: str) -> str | None:
    """Why a bundle-relative member name must not be used, or ``None`` when it is safe."""
    return member_problem(name)


M = TypeVar("M")


def admit_members(
    found: Sequence[tuple[str, M, bool]], problems: list[str]
) -> tuple[str, dict[str, M]]:
    """Pick an archive's bundle folder and admit the members under it whose names are safe.

    ``found`` holds (full member name, member, is a symlink) for every file of the archive, in
    archive order. Returns the top folder and ``{bundle-relative name: member}``; every member
    left out (unsafe name, outside the folder, symlink, duplicate up to case) is named in
    ``problems``. One function for every archive format, so the path checks cannot drift apart.
    """
    manifests = sorted(full for full, _, _ in found if full.rpartition("/")[2] == MANIFEST_NAME)
    tops = [m.rpartition("/")[0] for m in manifests if unsafe_reason(m) is None]
    tops = [t for t in tops if "/" not in t]
    top = tops[0] if tops else ""
    if len(tops) > 1:
        problems.append(
            f"several bundle folders in one archive ({', '.join(tops)}); reading {top}/"
        )
    prefix = f"{top}/" if top else ""
    members: dict[str, M] = {}
    seen: dict[str, str] = {}
    for full, member, is_symlink in found:
        if not full.startswith(prefix):
            reason = unsafe_reason(full)
            problems.append(
                f"{full}: unsafe member name ({reason})"
                if reason
                else f"{full}: outside the bundle folder {top or '(none)'}/"
            )
            continue
        name = full[len(prefix) :]
        reason = unsafe_reason(name) or unsafe_reason(full)
        if reason:
            problems.append(f"{full}: unsafe member name ({reason})")
            continue
        if is_symlink:
            problems.append(f"{name}: a symlink, not a file")
            continue
        folded = name.casefold()
        if folded in seen:
            same = "twice" if seen[folded] == name else f"and as {seen[folded]!r}"
            problems.append(f"{name}: in the archive {same} (duplicate member)")
            members.pop(seen[folded], None)
            continue
        seen[folded] = name
        members[name] = member
    return top, members


class BundleReader(ABC):
    """One bundle, read-only. Names are relative to the bundle's top folder, '/'-separated."""

    kind: ClassVar[str] = "?"  # the format's name, for messages and ``inspect``

    def __init__(self, source: Path) -> None:
        self.source = source
        self.form = self.kind  # what this particular bundle is (a zip may be an "sfx")
        self.top = ""  # the bundle's top folder (its name on disk or in the archive)
        self.problems: list[str] = []  # members left out of names(), each with its reason
        self._manifest: dict[str, Any] | None = None

    @classmethod
    @abstractmethod
    def probe(cls, path: Path) -> bool:
        """Whether this class reads ``path`` (cheap: a stat and at most a few bytes)."""

    @abstractmethod
    def names(self) -> list[str]:
        """Every regular file of the bundle that passed the name checks, sorted."""

    @abstractmethod
    def size(self, name: str) -> int:
        """The size the container declares for ``name``."""

    @abstractmethod
    def _open(self, name: str, seekable: bool) -> IO[bytes]: ...

    def damaged(self, name: str) -> str | None:
        """Why ``name`` cannot be read at all (sizes that cannot be trusted), or ``None``."""
        return None

    def _hint(self) -> str:
        return ""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> BundleReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def open(self, name: str, seekable: bool = False) -> IO[bytes]:
        """A binary stream of ``name``; read errors surface as :class:`BundleError`.

        ``seekable=True`` asks for cheap seeks (a .conda is a zip read from its end), which a
        compressed zip member can only emulate by re-reading.
        """
        if name not in self._name_set():
            raise BundleError(f"{self.source}: no file {name!r} in the bundle")
        reason = self.damaged(name)
        if reason is not None:
            raise BundleError(f"{name}: {reason}")
        try:
            raw = self._open(name, seekable)
        except _STREAM_ERRORS as exc:
            raise BundleError(f"{name}: cannot read ({first_line(exc)})") from None
        return io.BufferedReader(_Guarded(raw, name), CHUNK)

    def read_bytes(self, name: str, cap: int = MAX_JSON) -> bytes:
        """The whole of a small member; more than ``cap`` bytes is refused, not read."""
        reason = self.damaged(name) if name in self._name_set() else None
        if reason is not None:
            raise BundleError(f"{name}: {reason}")
        if self.size(name) > cap:
            raise BundleError(f"{name}: {self.size(name)} bytes, implausibly large for this file")
        data = bytearray()
        with self.open(name) as fh:
            # In chunks: read(cap) would allocate the whole cap up front, whatever the size.
            while chunk := fh.read(CHUNK):
                data += chunk
                if len(data) > cap:
                    raise BundleError(f"{name}: more than {cap} bytes, implausibly large")
        return bytes(data)

    @property
    def manifest(self) -> dict[str, Any]:
        """``envpack.json``, its format and version checked before anything else is looked at."""
        if self._manifest is None:
            if MANIFEST_NAME not in self._name_set():
                raise BundleError(
                    f"{self.source}: no {MANIFEST_NAME}; not an envpack bundle{self._hint()}"
                )
            data = self.read_bytes(MANIFEST_NAME)
            self._manifest = read_manifest_bytes(data, str(self.source))
        return self._manifest

    def _name_set(self) -> frozenset[str]:
        cached: frozenset[str] | None = getattr(self, "_names_cache", None)
        if cached is None:
            cached = frozenset(self.names())
            self._names_cache = cached
        return cached


READERS: list[type[BundleReader]] = []


def register_reader(cls: type[BundleReader]) -> type[BundleReader]:
    """Make :func:`open_bundle` consider ``cls`` (first registered, first asked)."""
    if cls not in READERS:
        READERS.append(cls)
    return cls


def is_bundle(path: Path) -> bool:
    """Whether some reader claims ``path`` (cheap; says nothing about the bundle being sound)."""
    from envpack.archive import write  # noqa: F401  (registers the 7z and split-part readers on import)

    return any(cls.probe(Path(path)) for cls in READERS)


def open_bundle(path: Path) -> BundleReader:
    """Open a bundle in whichever form it comes; :class:`BundleError` if it is none of them."""
    from envpack.archive import write  # noqa: F401  (registers the 7z and split-part readers on import)

    path = Path(path)
    if not path.exists():
        raise BundleError(f"{path}: no such bundle")
    for cls in READERS:
        if cls.probe(path):
            return cls(path)
    raise BundleError(
        f"{path}: not a bundle (expected a .zip, .7z or .tar, a self-extracting .bat or .sh, "
        "or an unpacked folder)"
    )


# --------------------------------------------------------------------------- zip / .bat


@register_reader
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
            if info.header_offset + 30 + info.compress_size > bound:
                self._damaged[name] = "overlaps the member after it in the archive (zip bomb?)"

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


class Window(io.RawIOBase):
    """``length`` bytes of ``fh`` from ``start`` (a stored member) as a seekable file that owns
    ``fh``: its own handle, bounded to its range."""

    def __init__(self, fh: IO[bytes], start: int, length: int) -> None:
        self._fh, self._start, self._length, self._pos = fh, start, length, 0

    @classmethod
    def of_stored(cls, archive: Path, info: zipfile.ZipInfo) -> Window:
        fh = archive.open("rb")
        try:
            fh.seek(info.header_offset)
            header = fh.read(30)
            if len(header) != 30 or header[:4] != b"PK\x03\x04":
                raise zipfile.BadZipFile("bad local file header")
            name_len, extra_len = struct.unpack("<HH", header[26:30])
            return cls(fh, info.header_offset + 30 + name_len + extra_len, info.compress_size)
        except BaseException:
            fh.close()
            raise

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._length - self._pos)
        if want <= 0:
            return 0
        self._fh.seek(self._start + self._pos)
        data = self._fh.read(want)
        if not data:
            raise BundleError("the archive ends inside this file: it is truncated")
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        self._fh.close()
        super().close()


# --------------------------------------------------------------------------- folder


@register_reader
class FolderBundleReader(BundleReader):
    """An unpacked bundle: the ``<name>/`` folder itself or the folder that holds it."""

    kind = "folder"

    @classmethod
    def probe(cls, path: Path) -> bool:
        return path.is_dir()

    def __init__(self, source: Path) -> None:
        super().__init__(source)
        self.root = self._find_root(source)
        self.top = self.root.name
        self._files: dict[str, tuple[Path, int]] = {}
        self._scan()

    @staticmethod
    def _find_root(source: Path) -> Path:
        if (source / MANIFEST_NAME).is_file():
            return source.resolve()
        try:
            found = sorted(
                child
                for child in source.iterdir()
                if child.is_dir() and not child.is_symlink() and (child / MANIFEST_NAME).is_file()
            )
        except OSError as exc:
            raise BundleError(f"{source}: cannot list ({exc.strerror})") from None
        if not found:
            raise BundleError(
                f"{source}: no {MANIFEST_NAME} here or in a folder below; not a bundle"
            )
        if len(found) > 1:
            names = ", ".join(f.name for f in found)
            raise BundleError(f"{source}: holds several bundles ({names}); name one of them")
        return found[0].resolve()

    def _scan(self) -> None:
        seen: dict[str, str] = {}
        for rel, path in self._walk():
            reason = unsafe_reason(rel)
            if reason:
                self.problems.append(f"{rel}: unsafe file name ({reason})")
                continue
            try:
                st = path.lstat()
                if stat.S_ISLNK(st.st_mode):
                    target = path.resolve()
                    if not target.is_relative_to(self.root):
                        self.problems.append(f"{rel}: a symlink pointing outside the bundle")
                        continue
                    st = target.stat()
            except (OSError, RuntimeError) as exc:
                self.problems.append(f"{rel}: cannot inspect ({first_line(exc)})")
                continue
            if stat.S_ISDIR(st.st_mode):
                self.problems.append(f"{rel}: a symlinked folder (not followed)")
                continue
            if not stat.S_ISREG(st.st_mode):
                self.problems.append(f"{rel}: not a regular file")
                continue
            folded = rel.casefold()
            if folded in seen:
                self.problems.append(
                    f"{rel}: differs only in case from {seen[folded]!r} (Windows cannot hold both)"
                )
                continue
            seen[folded] = rel
            self._files[rel] = (path, st.st_size)

    def _walk(self) -> Iterator[tuple[str, Path]]:
        # followlinks=False: a symlinked folder shows up as a name, never as a tree to descend.
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            dirnames.sort()
            base = Path(dirpath)
            entries = sorted(filenames) + [d for d in dirnames if (base / d).is_symlink()]
            for entry in entries:
                path = base / entry
                yield path.relative_to(self.root).as_posix(), path

    def names(self) -> list[str]:
        return sorted(self._files)

    def size(self, name: str) -> int:
        return self._files[name][1]

    def close(self) -> None:
        pass  # nothing is held open between reads

    def _open(self, name: str, seekable: bool) -> IO[bytes]:
        path = self._files[name][0]
        # Checked again at open time: the folder may have changed since it was listed.
        if not path.resolve().is_relative_to(self.root):
            raise BundleError(f"{name}: now points outside the bundle")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise BundleError(f"{name}: not a regular file")
        return os.fdopen(fd, "rb")


# --------------------------------------------------------------------------- helpers


class _Guarded(io.RawIOBase):
    """Turn whatever a damaged member raises mid-read (bad CRC, bad deflate data, a truncated
    archive, a vanished file) into one :class:`BundleError` naming the member."""

    def __init__(self, raw: IO[bytes], name: str) -> None:
        self._raw, self._name = raw, name

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._raw.seekable()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return int(self._call(self._raw.seek, offset, whence))

    def tell(self) -> int:
        return int(self._call(self._raw.tell))

    def readinto(self, buffer: Any) -> int:
        data: bytes = self._call(self._raw.read, len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()

    def _call(self, func: Any, *args: Any) -> Any:
        try:
            return func(*args)
        except BundleError:
            raise
        except _STREAM_ERRORS as exc:
            raise BundleError(f"{self._name}: damaged ({first_line(exc)})") from None
