"""The lock and settings an old bundle was built from: what ``build --from BUNDLE`` and
``diff`` read back out of a manifest."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envpack.archive.readers import open_bundle
from envpack.bundle.manifest import FIXED_FILES, MANIFEST_NAME
from envpack.errors import BundleError, LockError
from envpack.fetch.micromamba_exe import exe_name
from envpack.limits import CHUNK
from envpack.lock.lockfile import Lock, PlatformLock, platform_lock_from_dict
from envpack.lock.wheel import WheelRecord
from envpack.names import printable
from envpack.pypi.bundle import TOP_FILES, WHEELS_DIR


def platform_lock_of(manifest: Mapping[str, Any], where: str = MANIFEST_NAME) -> PlatformLock:
    """The bundle's one platform lock, as the manifest records it."""
    body = manifest.get("lock")
    platform = manifest.get("platform")
    if not isinstance(body, dict) or not isinstance(platform, str):
        raise LockError(f"{where}: no lock or platform recorded")
    return platform_lock_from_dict(platform, body, where, "lock")


def environment_lock_of(
    manifest: Mapping[str, Any], environment: str, where: str = MANIFEST_NAME
) -> PlatformLock:
    """One environment's lock in a bundle of several (the manifest's ``environments``)."""
    envs = manifest.get("environments")
    tables = [e for e in envs if isinstance(e, dict)] if isinstance(envs, list) else []
    for env in tables:
        if str(env.get("name")).casefold() == environment.casefold():
            platform = str(manifest.get("platform"))
            body = env.get("lock") or {}
            return platform_lock_from_dict(platform, body, where, f"environment {environment}")
    have = ", ".join(str(e.get("name")) for e in tables) or "none: it holds one environment"
    raise LockError(f"{where}: no environment {environment!r} (it has: {have})")


def lock_from_manifest(
    manifest: Mapping[str, Any], where: str = MANIFEST_NAME, environment: str | None = None
) -> Lock:
    """The bundle's lock; with ``environment``, that environment's in a bundle of several
    (without, such a bundle gives the lock of all its packages)."""
    if environment is not None:
        pl = environment_lock_of(manifest, environment, where)
    else:
        pl = platform_lock_of(manifest, where)
    recipe = manifest.get("recipe") if isinstance(manifest.get("recipe"), dict) else {}
    assert isinstance(recipe, dict)
    return Lock(
        name=str(manifest.get("name") or (manifest.get("lock") or {}).get("name") or "env"),
        platforms={pl.platform: pl},
        channels=tuple(str(c) for c in recipe.get("channels") or ()),
        specs=tuple(str(s) for s in recipe.get("specs") or ()),
        recipe_path=recipe.get("file"),
        envpack_version=str(manifest.get("envpack_version", "?")),
        extra={"kind": "bundle"},
    )


def lock_from_bundle(path: Path) -> tuple[Lock, dict[str, Any]]:
    """The lock an old bundle was built from, and its manifest (for ``build --from``)."""
    with open_bundle(path) as reader:
        manifest = reader.manifest
        return lock_from_manifest(manifest, f"{path}: {MANIFEST_NAME}"), manifest


@dataclass(frozen=True)
class RebuildInputs:
    """What besides the lock shapes a bundle's bytes, taken from an old bundle."""

    lock: Lock
    manifest: dict[str, Any]
    post_install: tuple[tuple[str, bytes], ...]  # (original file name, content), in run order
    tools: tuple[
        tuple[str, bytes], ...
    ]  # micromamba first, then its DLLs, as the build orders them
    format: str = "zip"  # the old bundle's container, which a rebuild keeps


def rebuild_inputs(path: Path) -> RebuildInputs:
    """Everything ``build --from BUNDLE`` needs to reproduce the bundle byte for byte.

    The tools come from the old bundle itself, so a rebuild works even when the micromamba
    package (or the ``--micromamba-exe`` file) is no longer at hand.
    """
    with open_bundle(path) as reader:
        manifest = reader.manifest
        if "update" in manifest:
            raise BundleError(
                f"{path}: an update bundle; make it again with "
                "'envpack build NEW --update-from OLD' (build --from rebuilds full bundles)"
            )
        lock = lock_from_manifest(manifest, f"{path}: {MANIFEST_NAME}")
        names = reader.names()
        install = manifest.get("install") or {}
        listed = install.get("post_install") if isinstance(install, dict) else None
        scripts = (
            [str(s) for s in listed]
            if isinstance(listed, list)
            else [n for n in names if n.startswith("post-install/")]
        )
        missing = [rel for rel in scripts if rel not in names]
        if missing:
            raise BundleError(
                f"{path}: {MANIFEST_NAME} lists post-install script {printable(missing[0])!r}, "
                "which the bundle does not hold (damaged bundle; envpack verify names the rest)"
            )
        post = tuple(
            (re.sub(r"^\d+-", "", rel.rsplit("/", 1)[-1]), reader.read_bytes(rel, 1 << 30))
            for rel in scripts
        )
        exe = exe_name(str(manifest.get("platform", "win-64")))
        top = [n for n in names if "/" not in n and n not in FIXED_FILES | TOP_FILES]
        dlls = sorted((n for n in top if n != exe), key=str.lower)
        tools = tuple((n, reader.read_bytes(n, 1 << 30)) for n in [exe, *dlls] if n in top)
        fmt = "tar" if reader.kind == "tar" else ("7z" if "7z" in reader.form else "zip")
        return RebuildInputs(
            lock=lock, manifest=manifest, post_install=post, tools=tools, format=fmt
        )


def extract_wheels(
    path: Path, wheels: tuple[WheelRecord, ...], dest: Path
) -> dict[WheelRecord, Path]:
    """The old bundle's ``wheels/`` files, written to ``dest`` and checked against the lock, so
    ``build --from`` needs neither the index nor the cache for them (a wheel the index has since
    withdrawn still rebuilds). Raises BundleError naming a wheel the bundle lacks or that
    differs from its lock."""
    out: dict[WheelRecord, Path] = {}
    if not wheels:
        return out
    dest.mkdir(parents=True, exist_ok=True)
    with open_bundle(path) as reader:
        names = set(reader.names())
        for w in sorted(wheels):
            rel = f"{WHEELS_DIR}/{w.filename}"
            if rel not in names:
                raise BundleError(
                    f"{path}: the lock has wheel {w.filename}, which the bundle does not hold "
                    "(damaged bundle; envpack verify names the rest)"
                )
            target = dest / w.filename  # a safe file name: WheelRecord checks it
            digest = hashlib.sha256()
            with reader.open(rel) as src, target.open("wb") as fh:
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                    fh.write(chunk)
            if digest.hexdigest() != w.sha256:
                raise BundleError(
                    f"{path}: {rel} differs from the lock's sha256 (changed or corrupt; "
                    "envpack verify names the rest)"
                )
            out[w] = target
    return out
