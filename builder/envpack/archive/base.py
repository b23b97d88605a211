"""What every bundle reader shares: read a bundle without trusting it.

A bundle being read may be years old, damaged, or made by someone hostile. So nothing here
extracts anything or writes anywhere; member names are checked before they are used (no ``..``,
no absolute paths or drive letters, no backslashes, no names Windows cannot hold, no duplicates,
no symlinks leaving the folder); every member is streamed, and the JSON ones are read only up to a
cap. Members whose sizes cannot be trusted (a stored member whose declared size differs from what
it holds, an implausible compression ratio) stay listed but refuse to open, with the reason.

Each container is one :class:`BundleReader` subclass in its own module; :mod:`.readers` holds
the one ordered list that :func:`~envpack.archive.readers.open_bundle` asks.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, ClassVar, TypeVar

from envpack.bundle.manifest import MANIFEST_NAME, read_manifest_bytes
from envpack.errors import BundleError, first_line
from envpack.limits import CHUNK, MAX_JSON
from envpack.names import member_problem

# Bundles are written stored (ratio 1); re-zipped with deflate, text reaches 10-20:1. Deflate
# itself tops out near 1032:1, so a member past this is a bomb or crafted, not a bundle file.
MAX_RATIO = 200
RATIO_FLOOR = 1 << 20  # small members may compress absurdly well (runs of zeros) and are harmless
MAX_HEADER = 1 << 20  # envpack's batch headers are ~20 KB; a megabyte is not one of them

STREAM_ERRORS = (
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
        except STREAM_ERRORS as exc:
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


# --------------------------------------------------------------------------- zip / .bat


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
        except STREAM_ERRORS as exc:
            raise BundleError(f"{self._name}: damaged ({first_line(exc)})") from None
