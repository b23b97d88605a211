"""Large ``.conda`` packages written as a stream, for the 10 GB scale channel.

``channel_factory.build_package`` holds the payload in memory and passes it through
conda-package-handling (payload on disk, then tar, then zstd): fine for tens of MB, not for a
package over 4 GiB. This writes the same layout (``metadata.json``, ``pkg-*.tar.zst``,
``info-*.tar.zst``: conda-package-handling's order, and zip64 for the big member as it does)
straight from a deterministic PRNG in 1 MiB chunks, through zstd level 1 (random bytes do not
compress; zstd stores them raw at several hundred MB/s), so memory stays a few MB at any size and
the package's size on disk is its payload's plus a few KB.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile
import zipfile
from pathlib import Path

from backports import zstd  # conda-package-handling's own zstd binding (envpack's dependency)

CHUNK = 1 << 20
FIXED_MTIME = 1700000000


class RandomPayload(io.RawIOBase):
    """``size`` pseudo-random bytes, read in order, hashed (sha256) as they are produced."""

    def __init__(self, seed: str, size: int) -> None:
        self._rng = random.Random(seed)
        self._left = size
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self._left if n < 0 else min(n, self._left)
        data = self._rng.randbytes(n)
        self._left -= n
        self.sha256.update(data)
        return data


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, FIXED_MTIME, 0o644
    return info


def _component(
    zf: zipfile.ZipFile, name: str, members: list[tuple[str, int, io.RawIOBase]]
) -> None:
    with (
        zf.open(name, "w", force_zip64=True) as raw,
        zstd.ZstdFile(raw, "w", level=1) as compressed,
        # as conda-package-handling does; 1 MiB copies (tarfile's default is 16 KiB)
        tarfile.TarFile(fileobj=compressed, mode="w", copybufsize=CHUNK) as tar,
    ):
        for arcname, size, fileobj in members:
            tar.addfile(_tarinfo(arcname, size), fileobj)


def write_streamed_conda(
    out: Path,
    *,
    name: str,
    version: str,
    build: str,
    subdir: str,
    depends: list[str],
    payload_size: int,
) -> Path:
    """Write ``out`` (``<name>-<version>-<build>.conda``) with one payload file of
    ``payload_size`` random bytes; its sha256 goes into ``info/paths.json`` (as conda-build's)."""
    stem = out.name[: -len(".conda")]
    rel = f"Library/share/{name}/payload.bin"
    payload = RandomPayload(f"{name}-{version}", payload_size)
    tmp = out.with_name(out.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("metadata.json", json.dumps({"conda_pkg_format_version": 2}))
        # The package's body first, so that its hash is known for paths.json.
        _component(zf, f"pkg-{stem}.tar.zst", [(rel, payload_size, payload)])
        index: dict[str, object] = {
            "name": name,
            "version": version,
            "build": build,
            "build_number": 0,
            "depends": depends,
            "license": "MIT",
            "subdir": subdir,
            "timestamp": FIXED_MTIME * 1000,
        }
        if subdir == "noarch":
            index["noarch"] = "generic"
        elif subdir.startswith("win"):
            index.update(platform="win", arch="x86_64")
        paths = {
            "paths": [
                {
                    "_path": rel,
                    "path_type": "hardlink",
                    "sha256": payload.sha256.hexdigest(),
                    "size_in_bytes": payload_size,
                }
            ],
            "paths_version": 1,
        }
        info = {
            "info/files": f"{rel}\n".encode(),
            "info/index.json": json.dumps(index, indent=2).encode(),
            "info/paths.json": json.dumps(paths).encode(),
        }
        members = [(k, len(v), io.BytesIO(v)) for k, v in sorted(info.items())]
        _component(zf, f"info-{stem}.tar.zst", members)  # type: ignore[arg-type]
    tmp.replace(out)
    return out


def repodata_record(package: Path) -> dict[str, object]:
    """The package's repodata entry, as rattler's indexer writes it: ``info/index.json`` plus the
    file's size, md5 and sha256 (one read of the file, both hashes at once).

    Used instead of rattler's indexer for the scale channel: that one held the 4.5 GiB package in
    memory (8 GB peak RSS, about 3 minutes for 10 GB, measured here)."""
    stem = package.name[: -len(".conda")]
    record: dict[str, object] = {}
    with (
        zipfile.ZipFile(package) as zf,
        zf.open(f"info-{stem}.tar.zst") as raw,
        zstd.ZstdFile(raw) as plain,
        tarfile.open(fileobj=plain, mode="r|") as tar,
    ):
        for member in tar:
            if member.name == "info/index.json":
                extracted = tar.extractfile(member)
                assert extracted is not None
                record = json.loads(extracted.read())
                break
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    with package.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            md5.update(chunk)
            sha256.update(chunk)
    record.update(md5=md5.hexdigest(), sha256=sha256.hexdigest(), size=package.stat().st_size)
    return record


def write_repodata(channel: Path, records: dict[str, dict[str, object]]) -> None:
    """``<subdir>/repodata.json`` for every subdir (noarch and win-64 at least) from the
    records, keyed by file name."""
    subdirs = {"noarch", "win-64"} | {str(r["subdir"]) for r in records.values()}
    for subdir in sorted(subdirs):
        packages = {fn: r for fn, r in sorted(records.items()) if r["subdir"] == subdir}
        repodata = {
            "info": {"subdir": subdir},
            "packages": {},
            "packages.conda": packages,
            "repodata_version": 1,
            "v3": {},
        }
        (channel / subdir).mkdir(parents=True, exist_ok=True)
        (channel / subdir / "repodata.json").write_text(json.dumps(repodata, indent=1) + "\n")
