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

A record carries name, version, build, build_number, subdir, fn, url, channel, sha256, md5, size,
depends, constrains, license, timestamp. URLs and channels never carry credentials.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from envpack import __version__
from envpack.channels import strip_token
from envpack.errors import LockError, first_line
from envpack.names import file_name_problem

_HEX = frozenset("0123456789abcdef")


def _is_hex(value: str, length: int) -> bool:
    return len(value) == length and set(value) <= _HEX


LOCK_VERSION = 1


@dataclass(frozen=True, order=True)
class LockedPackage:
    name: str
    version: str
    build: str
    build_number: int
    subdir: str
    fn: str
    url: str
    channel: str
    sha256: str
    md5: str
    size: int
    depends: tuple[str, ...] = ()
    constrains: tuple[str, ...] = ()
    license: str | None = None
    timestamp: int | None = None  # milliseconds since the epoch, as repodata.json has it

    def __post_init__(self) -> None:
        # Every record, however it was made (lock file, importer, solver result, an old
        # bundle's lock), passes here: its fn and subdir become cache and bundle paths.
        for label, value in (("file name", self.fn), ("subdir", self.subdir)):
            problem = file_name_problem(value)
            if problem:
                raise LockError(
                    f"package {self.name!r}: unsafe {label} {value!r} ({problem}); "
                    "the lock or channel is damaged or hostile, refusing it"
                )
        for label, value, length in (("sha256", self.sha256, 64), ("md5", self.md5, 32)):
            if value and not _is_hex(value, length):
                raise LockError(
                    f"package {self.name!r}: {label} {value!r} is not {length} hex digits"
                )
        if self.size < 0:
            raise LockError(f"package {self.name!r}: negative size {self.size}")

    @property
    def dist(self) -> str:
        return f"{self.name}-{self.version}-{self.build}"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["depends"] = list(self.depends)
        out["constrains"] = list(self.constrains)
        return out

    def repodata_entry(self) -> dict[str, Any]:
        """The record as a channel's repodata.json lists it."""
        entry: dict[str, Any] = {
            "build": self.build,
            "build_number": self.build_number,
            "constrains": list(self.constrains),
            "depends": list(self.depends),
            "md5": self.md5,
            "name": self.name,
            "sha256": self.sha256,
            "size": self.size,
            "subdir": self.subdir,
            "version": self.version,
        }
        if self.license is not None:
            entry["license"] = self.license
        if self.timestamp is not None:
            entry["timestamp"] = self.timestamp
        return entry

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "lock") -> LockedPackage:
        try:
            return cls(
                name=str(data["name"]),
                version=str(data["version"]),
                build=str(data["build"]),
                build_number=int(data.get("build_number", 0)),
                subdir=str(data["subdir"]),
                fn=str(data["fn"]),
                url=strip_token(str(data["url"])),
                channel=strip_token(str(data.get("channel", ""))),
                sha256=str(data["sha256"]).lower(),
                md5=str(data["md5"]).lower(),
                size=int(data["size"]),
                depends=tuple(str(d) for d in data.get("depends") or ()),
                constrains=tuple(str(d) for d in data.get("constrains") or ()),
                license=None if data.get("license") is None else str(data["license"]),
                timestamp=None if data.get("timestamp") is None else int(data["timestamp"]),
            )
        except LockError as exc:
            raise LockError(f"{where}: {exc}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            name = data.get("name", "?") if isinstance(data, Mapping) else "?"
            raise LockError(f"{where}: package {name!r} record is incomplete ({exc})") from None


@dataclass(frozen=True)
class MicromambaArtifact:
    """Where the bundle's micromamba.exe comes from: a package of the target, or a local file."""

    source: str  # "package" or "file"
    record: LockedPackage | None = None
    file_name: str | None = None
    file_sha256: str | None = None
    runtime: tuple[LockedPackage, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source}
        if self.record is not None:
            out["record"] = self.record.to_dict()
        if self.file_name is not None:
            out["file"] = {"name": self.file_name, "sha256": self.file_sha256}
        out["runtime"] = [r.to_dict() for r in sorted(self.runtime)]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> MicromambaArtifact:
        file = _mapping(data.get("file") or {}, where, "micromamba.file")
        return cls(
            source=str(data.get("source", "package")),
            record=LockedPackage.from_dict(_mapping(data["record"], where, "record"), where)
            if data.get("record")
            else None,
            file_name=file.get("name"),
            file_sha256=file.get("sha256"),
            runtime=tuple(
                LockedPackage.from_dict(_mapping(r, where, "runtime"), where)
                for r in data.get("runtime") or ()
            ),
        )


@dataclass(frozen=True)
class PlatformLock:
    platform: str
    packages: tuple[LockedPackage, ...]
    input_hash: str = ""
    virtual_packages: tuple[str, ...] = ()
    micromamba: MicromambaArtifact | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "input_hash": self.input_hash,
            "virtual_packages": list(self.virtual_packages),
            "packages": [p.to_dict() for p in sorted(self.packages)],
        }
        if self.micromamba is not None:
            out["micromamba"] = self.micromamba.to_dict()
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
    recipe = _mapping(data.get("recipe") or {}, where, "recipe")
    platforms = {}
    for platform, body in _mapping(data.get("platforms") or {}, where, "platforms").items():
        body = _mapping(body, where, f"platforms.{platform}")
        packages = body.get("packages") or ()
        if not isinstance(packages, (list, tuple)):
            raise LockError(f"{where}: platforms.{platform}.packages is not a list")
        mm = body.get("micromamba")
        platforms[str(platform)] = PlatformLock(
            platform=str(platform),
            packages=tuple(
                sorted(
                    LockedPackage.from_dict(_mapping(p, where, "package"), where) for p in packages
                )
            ),
            input_hash=str(body.get("input_hash", "")),
            virtual_packages=tuple(str(v) for v in body.get("virtual_packages") or ()),
            micromamba=MicromambaArtifact.from_dict(_mapping(mm, where, "micromamba"), where)
            if mm
            else None,
        )
    return Lock(
        name=str(recipe.get("name", "env")),
        platforms=platforms,
        channels=tuple(str(c) for c in recipe.get("channels") or ()),
        specs=tuple(str(c) for c in recipe.get("specs") or ()),
        recipe_path=None if recipe.get("path") is None else str(recipe["path"]),
        envpack_version=str(data.get("envpack", "?")),
    )


def _mapping(value: Any, where: str, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise LockError(f"{where}: {what} is not a mapping; the lock is damaged, lock again")
    return value


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
    """Write ``data`` to a temp file beside ``path`` and rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_lock(lock: Lock, path: Path) -> None:
    write_atomic(path, dump_lock(lock).encode("utf-8"))


def lock_path_for(recipe_path: Path) -> Path:
    return recipe_path.with_name(f"{recipe_path.stem}.lock.yaml")
