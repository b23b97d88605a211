"""The bundle: its entries, manifest, and the deterministic zip / self-extracting .bat writers.

Layout, under one top folder ``<name>/``::

    setup.bat  README.txt  envpack.json  sbom.cdx.json  env.txt
    micromamba.exe  vcruntime140*.dll  msvcp140*.dll
    channel/<platform>/repodata.json  channel/<platform>/*.conda|*.tar.bz2
    channel/noarch/repodata.json      channel/noarch/*
    post-install/NN-<script>.bat

Determinism: entries sorted by name, one timestamp for all (SOURCE_DATE_EPOCH, else the newest
package's), fixed attributes, every member *stored*. Storing the small text files too costs a few
kilobytes and keeps the bytes independent of the zlib build a machine happens to have.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from envpack.errors import BundleError, EnvpackError
from envpack.names import member_problem

MANIFEST_NAME = "envpack.json"
MANIFEST_FORMAT = "envpack-bundle"
MANIFEST_VERSION = 1
ZIP_EPOCH_MIN = 315532800  # 1980-01-01, the earliest time a zip entry can hold
CHUNK = 1 << 20


@dataclass(frozen=True)
class Entry:
    """One file of the bundle: bytes in memory or a file on disk whose hash is already known."""

    arcname: str  # relative to the top folder, forward slashes
    size: int
    sha256: str
    data: bytes | None = None
    source: Path | None = None

    @classmethod
    def from_bytes(cls, arcname: str, data: bytes) -> Entry:
        return cls(arcname, len(data), hashlib.sha256(data).hexdigest(), data=data)

    @classmethod
    def from_file(cls, arcname: str, source: Path, size: int, sha256: str) -> Entry:
        return cls(arcname, size, sha256, source=source)

    def open(self) -> IO[bytes]:
        if self.data is not None:
            import io

            return io.BytesIO(self.data)
        assert self.source is not None
        return self.source.open("rb")


def manifest_files(entries: Iterable[Entry]) -> dict[str, dict[str, Any]]:
    return {e.arcname: {"sha256": e.sha256, "size": e.size} for e in sorted(entries, key=_key)}


def _key(e: Entry) -> str:
    return e.arcname


def json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def source_date_epoch(default: int | None) -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if value:
        try:
            return max(int(value), ZIP_EPOCH_MIN)
        except ValueError:
            raise EnvpackError(f"SOURCE_DATE_EPOCH={value!r} is not a number of seconds") from None
    return max(default or ZIP_EPOCH_MIN, ZIP_EPOCH_MIN)


def check_entries(entries: Sequence[Entry]) -> None:
    """Refuse member names that are unsafe or collide on Windows, whoever the caller is: the
    writers check their own input, so no caller can make a bundle that unpacks outside itself."""
    seen: dict[str, str] = {}
    for e in entries:
        problem = member_problem(e.arcname)
        if problem:
            raise BundleError(f"refusing bundle member {e.arcname!r}: {problem}")
        folded = e.arcname.casefold()
        if folded in seen:
            raise BundleError(
                f"two bundle files differ only in case ({seen[folded]!r}, {e.arcname!r}); "
                "Windows cannot hold both"
            )
        seen[folded] = e.arcname


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; rename it over ``path`` only if the block succeeds."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise BundleError(f"cannot write to {path.parent}: {exc.strerror}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, path)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        if exc.errno == 28:
            raise BundleError(f"disk full while writing {path}; free some space") from None
        raise BundleError(f"cannot write {path}: {exc.strerror}") from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def zip_info(arcname: str, size: int, epoch: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(arcname, date_time=time.gmtime(epoch)[:6])
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3  # unix, so the permission bits below mean the same everywhere
    info.external_attr = (0o100644 << 16) if not arcname.endswith("/") else (0o40755 << 16)
    info.file_size = size
    return info


def write_zip_entries(
    zf: zipfile.ZipFile,
    top: str,
    entries: Sequence[Entry],
    epoch: int,
    advance: Callable[[int], None] | None = None,
) -> None:
    check_entries(entries)
    for entry in sorted(entries, key=_key):
        info = zip_info(f"{top}/{entry.arcname}", entry.size, epoch)
        with entry.open() as src, zf.open(info, "w") as dst:
            while chunk := src.read(CHUNK):
                dst.write(chunk)
                if advance is not None:
                    advance(len(chunk))


def write_zip(
    path: Path,
    top: str,
    entries: Sequence[Entry],
    epoch: int,
    header: bytes = b"",
    advance: Callable[[int], None] | None = None,
) -> None:
    """Write the bundle zip; with ``header``, the self-extracting form.

    The header is written first and the zip *appended* in ``"a"`` mode on the same file, so that
    every offset in it is absolute: plain ``cat header zip`` breaks ZIP64 readers (notes).
    """
    with atomic_output(path) as tmp:
        with tmp.open("wb") as fh:
            fh.write(header)
        with zipfile.ZipFile(tmp, "a", allowZip64=True) as zf:
            write_zip_entries(zf, top, entries, epoch, advance)


def read_manifest_bytes(data: bytes, where: str) -> dict[str, Any]:
    """Parse a manifest, checking its format and version before anything else."""
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise BundleError(f"{where}: {MANIFEST_NAME} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise BundleError(f"{where}: {MANIFEST_NAME} is not an envpack bundle manifest")
    version = manifest.get("format_version")
    if version != MANIFEST_VERSION:
        raise BundleError(
            f"{where}: bundle format version {version!r} is not supported by this envpack "
            f"(it reads version {MANIFEST_VERSION}); use a matching envpack release"
        )
    return manifest
