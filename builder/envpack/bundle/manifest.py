"""The bundle: its entries, manifest, and the deterministic zip / self-extracting .bat writers.

Layout, under one top folder ``<name>/``::

    setup.bat  README.txt  envpack.json  sbom.cdx.json  env.txt
    micromamba.exe  vcruntime140*.dll  msvcp140*.dll
    channel/<platform>/repodata.json  channel/<platform>/*.conda|*.tar.bz2
    channel/noarch/repodata.json      channel/noarch/*
    post-install/NN-<script>.bat

Determinism: entries in one order (:func:`arcname_key`: the packages by name, then every other
file by name), one timestamp for all (SOURCE_DATE_EPOCH, else the newest package's), fixed
attributes, every member *stored*. Storing the small text files too costs a few kilobytes and keeps
the bytes independent of the zlib build a machine happens to have.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from envpack.errors import BundleError, EnvpackError
from envpack.names import member_problem

MANIFEST_NAME = "envpack.json"
MANIFEST_FORMAT = "envpack-bundle"
MANIFEST_VERSION = 1
SBOM_NAME = "sbom.cdx.json"
EXPLICIT_NAME = "env.txt"
# Top-level files a bundle always has; any other top-level file is micromamba or a runtime DLL.
FIXED_FILES = frozenset(
    {"setup.bat", "setup.sh", "README.txt", MANIFEST_NAME, SBOM_NAME, EXPLICIT_NAME}
)
ZIP_EPOCH_MIN = 315532800  # 1980-01-01, the earliest time a zip entry can hold
# The package files of a bundle (conda's two formats); they are written first, see arcname_key.
PACKAGE_SUFFIXES = (".conda", ".tar.bz2")


@dataclass(frozen=True)
class Entry:
    """One file of the bundle: bytes in memory or a file on disk whose hash is already known.

    ``size`` and ``sha256`` are always known up front (from the lock for a package). A package
    still downloading has no ``source`` yet but a ``pending`` callable that blocks until the file
    is there and returns (path, CRC-32 or ``None``); writers call :meth:`ready` just before they
    write the member, so the members before it are written while later packages still arrive.
    ``crc32`` is the CRC-32 of the bytes when something already computed it (the download): the
    zip writer then need not read the file to write its header. It is trusted, not checked
    (readers check every member's sha256 against the manifest).
    """

    arcname: str  # relative to the top folder, forward slashes
    size: int
    sha256: str
    data: bytes | None = None
    source: Path | None = None
    crc32: int | None = None
    pending: Callable[[], tuple[Path, int | None]] | None = None

    @classmethod
    def from_bytes(cls, arcname: str, data: bytes) -> Entry:
        return cls(arcname, len(data), hashlib.sha256(data).hexdigest(), data=data)

    @classmethod
    def from_file(cls, arcname: str, source: Path, size: int, sha256: str) -> Entry:
        return cls(arcname, size, sha256, source=source)

    def ready(self) -> Entry:
        """This entry with its file there: waits for a pending download (see the class)."""
        if self.pending is None:
            return self
        source, crc = self.pending()
        return replace(self, source=source, crc32=self.crc32 if crc is None else crc, pending=None)

    def open(self) -> IO[bytes]:
        if self.data is not None:
            import io

            return io.BytesIO(self.data)
        if self.source is None and self.pending is not None:
            return self.ready().open()
        assert self.source is not None
        return self.source.open("rb")


def manifest_files(entries: Iterable[Entry]) -> dict[str, dict[str, Any]]:
    return {
        # A JSON object written with sort_keys: by name, whatever the containers' member order.
        e.arcname: {"sha256": e.sha256, "size": e.size}
        for e in sorted(entries, key=lambda e: e.arcname)
    }


def is_package(entry: Entry) -> bool:
    return entry.arcname.endswith(PACKAGE_SUFFIXES)


def arcname_key(e: Entry) -> tuple[bool, str]:
    """The one order of members in every container: the packages by name, then every other file
    by name. The files that depend on what the packages hold (setup.bat, envpack.json, the SBOM)
    come last, so a build can write the packages while they still download and add those files
    once every package is in. Readers never depend on this order (they sort names themselves)."""
    return (not is_package(e), e.arcname)


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
