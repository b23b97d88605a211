"""The lock: envpack's versioned, sorted, diff-friendly record of a solve.

Format (YAML, ``version: 1``)::

    version: 1
    envpack: 0.1.0
    recipe: {name, path, channels, specs}
    platforms:
      win-64:
        input_hash: <sha256 of the solve inputs>
        virtual_packages: [__win=10.0.19045=0, ...]
        packages: [<record>, ...]          # sorted by name
        micromamba: {source, record|file, runtime: [<record>, ...]}

A record is :class:`envpack.lock.record.LockedPackage`. :func:`platform_lock_from_dict` is the
one reader of a platform's entry: the lock file's and the bundle manifest's ``lock`` alike.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from envpack import __version__
from envpack.errors import BundleError, LockError, first_line
from envpack.lock.record import LockedPackage, MicromambaArtifact, as_mapping
from envpack.lock.wheel import WheelRecord

LOCK_VERSION = 1


@dataclass(frozen=True)
class PlatformLock:
    platform: str
    packages: tuple[LockedPackage, ...]
    input_hash: str = ""
    virtual_packages: tuple[str, ...] = ()
    micromamba: MicromambaArtifact | None = None
    pypi: tuple[WheelRecord, ...] = ()  # the pip: list's wheels, installed after micromamba

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "input_hash": self.input_hash,
            "virtual_packages": list(self.virtual_packages),
            "packages": [p.to_dict() for p in sorted(self.packages)],
        }
        if self.micromamba is not None:
            out["micromamba"] = self.micromamba.to_dict()
        if self.pypi:  # absent without pip: so that such locks (and bundles) stay byte-identical
            out["pypi"] = [w.to_dict() for w in sorted(self.pypi)]
        return out

    def all_records(self) -> list[LockedPackage]:
        """Environment packages plus micromamba's own, deduplicated, sorted."""
        extra: list[LockedPackage] = []
        if self.micromamba is not None:
            if self.micromamba.record is not None:
                extra.append(self.micromamba.record)
            extra.extend(self.micromamba.runtime)
        return sorted(set(self.packages) | set(extra))


@dataclass(frozen=True)
class Lock:
    name: str
    platforms: Mapping[str, PlatformLock]
    channels: tuple[str, ...] = ()
    specs: tuple[str, ...] = ()
    recipe_path: str | None = None
    envpack_version: str = __version__
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": LOCK_VERSION,
            "envpack": self.envpack_version,
            "recipe": {
                "name": self.name,
                "path": self.recipe_path,
                "channels": list(self.channels),
                "specs": list(self.specs),
            },
            "platforms": {p: self.platforms[p].to_dict() for p in sorted(self.platforms)},
        }

    def for_platform(self, platform: str) -> PlatformLock:
        try:
            return self.platforms[platform]
        except KeyError:
            have = ", ".join(sorted(self.platforms)) or "none"
            raise LockError(
                f"the lock has no {platform!r} environment (it has: {have}); "
                "lock again with that platform"
            ) from None

    def with_platform(self, pl: PlatformLock) -> Lock:
        return replace(self, platforms={**self.platforms, pl.platform: pl})


def lock_from_dict(data: Any, where: str) -> Lock:
    if not isinstance(data, dict) or "version" not in data:
        raise LockError(f"{where}: not an envpack lock (no 'version' key)")
    version = data["version"]
    if version != LOCK_VERSION:
        raise LockError(
            f"{where}: lock format version {version!r} is not supported by envpack {__version__} "
            f"(it reads version {LOCK_VERSION}); upgrade envpack or lock again"
        )
    recipe = as_mapping(data.get("recipe") or {}, where, "recipe")
    platforms = {}
    for platform, body in as_mapping(data.get("platforms") or {}, where, "platforms").items():
        body = as_mapping(body, where, f"platforms.{platform}")
        platforms[str(platform)] = platform_lock_from_dict(
            str(platform), body, where, f"platforms.{platform}"
        )
    return Lock(
        name=str(recipe.get("name", "env")),
        platforms=platforms,
        channels=tuple(str(c) for c in recipe.get("channels") or ()),
        specs=tuple(str(c) for c in recipe.get("specs") or ()),
        recipe_path=None if recipe.get("path") is None else str(recipe["path"]),
        envpack_version=str(data.get("envpack", "?")),
    )


def platform_lock_from_dict(
    platform: str, body: Mapping[str, Any], where: str, label: str
) -> PlatformLock:
    """One platform's lock from its dict form (``label`` names it in ``where`` for messages)."""
    packages = body.get("packages") or ()
    if not isinstance(packages, (list, tuple)):
        raise LockError(f"{where}: {label}.packages is not a list")
    mm = body.get("micromamba")
    try:
        return PlatformLock(
            platform=platform,
            packages=tuple(
                sorted(
                    LockedPackage.from_dict(as_mapping(p, where, "package"), where)
                    for p in packages
                )
            ),
            input_hash=str(body.get("input_hash", "")),
            virtual_packages=tuple(str(v) for v in body.get("virtual_packages") or ()),
            micromamba=MicromambaArtifact.from_dict(as_mapping(mm, where, "micromamba"), where)
            if mm
            else None,
            pypi=_wheels(body.get("pypi"), where, label),
        )
    except (AttributeError, TypeError, KeyError) as exc:
        raise LockError(f"{where}: malformed lock ({exc})") from None


def _wheels(data: Any, where: str, label: str) -> tuple[WheelRecord, ...]:
    if data is None:
        return ()
    if not isinstance(data, (list, tuple)):
        raise LockError(f"{where}: {label}.pypi is not a list")
    return tuple(sorted(WheelRecord.from_dict(as_mapping(w, where, "wheel")) for w in data))


def dump_lock(lock: Lock) -> str:
    return yaml.safe_dump(lock.to_dict(), sort_keys=False, default_flow_style=False, width=1000)


def read_lock(path: Path) -> Lock:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LockError(f"{path}: no such lock file") from None
    except OSError as exc:
        raise LockError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise LockError(
            f"{path}: not a text lock file (byte {exc.start} is not UTF-8); lock again"
        ) from None
    return lock_from_dict(parse_yaml(text, str(path)), str(path))


# What PyYAML's safe loader raises besides YAMLError on values their tag cannot hold
# (``!!int abc``, ``2020-13-45``, a 5,000-digit number, a deeply nested document).
_YAML_VALUE_ERRORS = (ValueError, KeyError, AttributeError, TypeError, RecursionError)


def parse_yaml(text: str, where: str) -> Any:
    """A lock file's YAML, or one LockError naming the file: never a loader's traceback."""
    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        raise LockError(f"{where}: malformed YAML ({first_line(exc)})") from None
    except _YAML_VALUE_ERRORS as exc:
        raise LockError(
            f"{where}: malformed YAML (a value its type cannot hold: {exc!r:.80})"
        ) from None


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path`` and rename: never a half-written file.

    A failed write is a BundleError, as for every output (see errors.py)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise BundleError(f"cannot write to {path.parent}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise BundleError(f"disk full while writing {path}; free some space") from None
        raise BundleError(f"cannot write {path}: {exc.strerror}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_lock(lock: Lock, path: Path) -> None:
    write_atomic(path, dump_lock(lock).encode("utf-8"))


def lock_path_for(recipe_path: Path) -> Path:
    return recipe_path.with_name(f"{recipe_path.stem}.lock.yaml")
