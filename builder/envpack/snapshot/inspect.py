"""What a bundle holds, from its manifest alone: nothing is hashed (that is :mod:`.verify`)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from envpack.archive.base import BundleReader
from envpack.archive.readers import open_bundle
from envpack.bundle.manifest import MANIFEST_NAME, SBOM_NAME
from envpack.errors import BundleError, LockError
from envpack.lock.record import MicromambaArtifact
from envpack.snapshot.rebuild import environment_lock_of, platform_lock_of
from envpack.snapshot.update import update_info
from envpack.snapshot.verify import read_json, reading_problems


def inspect_bundle(path: Path, sbom: bool = False) -> dict[str, Any]:
    """What a bundle holds, from its manifest alone (nothing is hashed; see verify_bundle)."""
    with open_bundle(path) as reader:
        manifest = reader.manifest
        try:
            pl = platform_lock_of(manifest, f"{path}: {MANIFEST_NAME}")
        except LockError as exc:
            raise BundleError(str(exc)) from None
        names = reader.names()
        info: dict[str, Any] = {
            "path": str(path),
            "form": reader.form,
            "bundle_size": _bundle_size(reader),
            "name": manifest.get("name"),
            "platform": manifest.get("platform"),
            "envpack_version": manifest.get("envpack_version"),
            "format_version": manifest.get("format_version"),
            "created": manifest.get("created"),
            "created_utc": _utc(manifest.get("created")),
            "recipe": manifest.get("recipe"),
            "micromamba": _micromamba_info(pl.micromamba),
            "virtual_packages": list(pl.virtual_packages),
            "input_hash": pl.input_hash,
            "install": manifest.get("install"),
            "packages": [
                {
                    "name": r.name,
                    "version": r.version,
                    "build": r.build,
                    "subdir": r.subdir,
                    "size": r.size,
                    "license": r.license,
                    "sha256": r.sha256,
                    "fn": r.fn,
                }
                for r in pl.packages
            ],
            "wheels": [
                {"name": w.name, "version": w.version, "filename": w.filename, "size": w.size}
                for w in sorted(pl.pypi)
            ],
            "package_count": len(pl.packages),
            "total_size": sum(r.size for r in pl.packages),
            "file_count": len(names),
            "sbom_present": SBOM_NAME in names,
            "problems": reading_problems(reader),
            "update": update_info(manifest),
        }
        if "environments" in manifest:  # a bundle of several: views of one stay unchanged
            info["environments"], info["shared_packages"] = _environments(manifest, path)
        if sbom:
            info["sbom"] = read_json(reader, SBOM_NAME) if SBOM_NAME in names else None
        return info


def _micromamba_info(mm: MicromambaArtifact | None) -> dict[str, Any]:
    if mm is None:
        return {}
    out: dict[str, Any] = {"source": mm.source}
    if mm.record is not None:
        out.update(version=mm.record.version, build=mm.record.build, fn=mm.record.fn)
    if mm.file_name is not None:
        out.update(file=mm.file_name, sha256=mm.file_sha256)
    out["runtime"] = [f"{r.name}-{r.version}-{r.build}" for r in mm.runtime]
    return out


def _bundle_size(reader: BundleReader) -> int:
    parts = getattr(reader, "parts", None)
    if isinstance(parts, list):  # a split bundle: all its parts, not the one named
        return sum(p.stat().st_size for p in parts)
    if reader.source.is_file():
        return reader.source.stat().st_size
    return sum(reader.size(n) for n in reader.names())


def _utc(epoch: Any) -> str | None:
    if not isinstance(epoch, int):
        return None
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _environments(manifest: dict[str, Any], path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Each environment of a bundle of several (name, prefix, its packages' file names), and
    the file names of the packages two or more of them share (stored once all the same)."""
    out: list[dict[str, Any]] = []
    users: dict[str, int] = {}
    for env in manifest.get("environments") or []:
        name = str(env.get("name"))
        try:
            pl = environment_lock_of(manifest, name, f"{path}: {MANIFEST_NAME}")
        except LockError as exc:
            raise BundleError(str(exc)) from None
        install = env.get("install") or {}
        fns = sorted(r.fn for r in pl.packages)
        for fn in fns:
            users[fn] = users.get(fn, 0) + 1
        out.append(
            {
                "name": name,
                "default_prefix": install.get("default_prefix"),
                "post_install": list(install.get("post_install") or ()),
                "package_count": len(fns),
                "packages": fns,
                "size": sum(r.size for r in pl.packages),
            }
        )
    return out, sorted(fn for fn, n in users.items() if n > 1)
