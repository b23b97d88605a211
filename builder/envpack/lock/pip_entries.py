"""Wheel records from other lock formats: conda-lock's ``manager: pip`` entries, pixi.lock's
``pypi:`` packages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import LockError
from .wheel import WheelRecord, public_url


def conda_lock_wheels(data: Mapping[str, Any], platform: str, where: Path) -> list[WheelRecord]:
    """The ``manager: pip`` packages of a conda-lock (v1 or v2) for ``platform``."""
    # Here, not at the top: reading a lock without wheels skips packaging (issue 18, start-up).
    from packaging.utils import canonicalize_name

    packages = data.get("package")
    if not isinstance(packages, Sequence):
        raise LockError(f"{where}: no 'package' list; is this a conda-lock file?")
    out: list[WheelRecord] = []
    for entry in packages:
        if not isinstance(entry, Mapping) or entry.get("manager") != "pip":
            continue
        if entry.get("platform") != platform:
            continue
        url = str(entry.get("url") or "")
        sha = str((entry.get("hash") or {}).get("sha256") or "")
        filename = url.rsplit("/", 1)[-1].split("#", 1)[0]
        if not filename.endswith(".whl"):
            raise LockError(
                f"{where}: pip package {entry.get('name')!r} is not a wheel ({filename}); "
                "an offline bundle installs wheels only"
            )
        if not sha:
            raise LockError(f"{where}: pip package {entry.get('name')!r} has no sha256")
        out.append(
            WheelRecord(
                name=str(canonicalize_name(str(entry["name"]))),
                version=str(entry["version"]),
                filename=filename,
                url=public_url(url),
                sha256=sha,
            )
        )
    return sorted(out)


def pixi_wheels(
    data: Mapping[str, Any], platform: str, where: Path, environment: str = "default"
) -> list[WheelRecord]:
    """The ``pypi:`` packages of a pixi.lock (v5/v6) environment for ``platform``: the
    environment lists their URLs, the top-level ``packages`` list their name, version and
    sha256."""
    from packaging.utils import canonicalize_name  # deferred: see conda_lock_wheels

    envs = data.get("environments")
    if not isinstance(envs, Mapping) or environment not in envs:
        raise LockError(f"{where}: no environment {environment!r} in this pixi.lock")
    listed = ((envs[environment] or {}).get("packages") or {}).get(platform) or []
    urls = [str(e["pypi"]) for e in listed if isinstance(e, Mapping) and "pypi" in e]
    known = {
        str(p["pypi"]): p
        for p in data.get("packages") or []
        if isinstance(p, Mapping) and "pypi" in p
    }
    out: list[WheelRecord] = []
    for url in urls:
        entry = known.get(url)
        if entry is None:
            raise LockError(f"{where}: pypi package {url} is listed but not described")
        filename = url.rsplit("/", 1)[-1].split("#", 1)[0]
        if not filename.endswith(".whl"):
            raise LockError(
                f"{where}: pypi package {entry.get('name')!r} is not a wheel ({filename}); "
                "an offline bundle installs wheels only"
            )
        if not entry.get("sha256"):
            raise LockError(f"{where}: pypi package {entry.get('name')!r} has no sha256")
        out.append(
            WheelRecord(
                name=str(canonicalize_name(str(entry["name"]))),
                version=str(entry["version"]),
                filename=filename,
                url=public_url(url),
                sha256=str(entry["sha256"]),
                requires_python=(
                    str(entry["requires_python"]) if entry.get("requires_python") else None
                ),
            )
        )
    return sorted(out)
