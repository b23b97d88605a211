"""What an update changes: the base environment (OLD) against the target lock (NEW).

OLD may be a bundle of any form (its manifest's lock; an update bundle's lock is its target),
any lock file envpack reads, or the text ``micromamba list --explicit --md5`` (2.x prints a
header and no ``@EXPLICIT``) or ``conda list --explicit --md5`` prints on the installed PC.

Both sides are reduced to what every form records: each package's subdir, file name and md5.
Their hash (:func:`environment_sha256`) is what setup.bat records in the prefix and what
update.bat compares, so an update built from a PC's package list finds the same base as one
built from the bundle that installed it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from envpack.errors import LockError, UpdateError
from envpack.lock.lockfile import PlatformLock
from envpack.lock.record import SHORT_HASH, LockedPackage, environment_sha256, lock_sha256

SHORT = SHORT_HASH

# A package URL with its hash, as list --explicit prints it.
_HASHED_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\S+#\S+$")
# Conda package names: what update.bat may pass to "micromamba remove" unquoted.
_PACKAGE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")


@dataclass(frozen=True)
class Base:
    """OLD, as far as an update needs it."""

    platform: str
    packages: tuple[LockedPackage, ...]
    source: str  # what it was read from, for messages
    kind: str  # bundle | lock | installed-list
    micromamba_sha256: str | None = None  # of the micromamba a bundle/lock ships, when known
    default_prefix: str | None = None  # a bundle's recorded default install folder

    @property
    def sha256(self) -> str:
        return environment_sha256(self.platform, self.packages)


@dataclass(frozen=True)
class Change:
    name: str
    old: LockedPackage
    new: LockedPackage


@dataclass(frozen=True)
class UpdatePlan:
    name: str
    platform: str
    base_sha256: str
    target_sha256: str
    base: tuple[LockedPackage, ...]
    target: tuple[LockedPackage, ...]
    added: tuple[LockedPackage, ...]
    removed: tuple[LockedPackage, ...]
    changed: tuple[Change, ...]

    @property
    def carried(self) -> tuple[LockedPackage, ...]:
        """The packages the update bundle holds: what NEW has and OLD lacks."""
        return tuple(sorted((*self.added, *(c.new for c in self.changed))))

    @property
    def unlinked(self) -> tuple[LockedPackage, ...]:
        """The installed packages update.bat removes before installing the carried ones."""
        return tuple(sorted((*self.removed, *(c.old for c in self.changed))))

    @property
    def stem(self) -> str:
        return (
            f"{self.name}-{self.platform}-update-"
            f"{self.base_sha256[:SHORT]}-to-{self.target_sha256[:SHORT]}"
        )


def _same(a: LockedPackage, b: LockedPackage) -> bool:
    if (a.subdir, a.fn) != (b.subdir, b.fn):
        return False
    if a.md5 and b.md5 and a.md5 != b.md5:
        return False
    return not (a.sha256 and b.sha256 and a.sha256 != b.sha256)


def plan_update(name: str, base: Base, target: PlatformLock) -> UpdatePlan:
    """Compare OLD with NEW; refuse when an update makes no sense (UpdateError)."""
    if base.platform != target.platform:
        raise UpdateError(
            f"{base.source}: the base environment is for {base.platform}, the new lock for "
            f"{target.platform}; an update cannot change the platform (build a full bundle)"
        )
    if not target.platform.startswith("win-"):
        # update.bat is the only updater so far; a Linux/macOS update.sh is not written yet
        raise UpdateError(
            f"update bundles are made for Windows targets only; {target.platform} is not one "
            "(build a full bundle)"
        )
    old = _by_name(base.packages, base.source)
    new = _by_name(target.packages, "the new lock")
    for r in target.packages:
        if not r.md5:
            raise UpdateError(
                f"the new lock records no md5 for {r.fn}; update.bat's micromamba checks it "
                "(lock again with envpack)"
            )
        if not _PACKAGE_NAME.match(r.name):
            raise UpdateError(f"package name {r.name!r} cannot be passed to micromamba safely")
    for r in base.packages:
        if not _PACKAGE_NAME.match(r.name):
            raise UpdateError(f"{base.source}: package name {r.name!r} is not a conda name")
    added = tuple(new[n] for n in sorted(set(new) - set(old)))
    removed = tuple(old[n] for n in sorted(set(old) - set(new)))
    changed = tuple(
        Change(n, old[n], new[n]) for n in sorted(set(old) & set(new)) if not _same(old[n], new[n])
    )
    base_sha, target_sha = base.sha256, lock_sha256(target)
    if not (added or removed or changed):
        raise UpdateError(
            f"{base.source} and the new lock hold the same {len(new)} packages "
            f"(lock {target_sha[:SHORT]}): nothing to update, nothing written"
        )
    return UpdatePlan(
        name=name,
        platform=target.platform,
        base_sha256=base_sha,
        target_sha256=target_sha,
        base=tuple(sorted(base.packages)),
        target=tuple(sorted(target.packages)),
        added=added,
        removed=removed,
        changed=changed,
    )


def _by_name(records: Sequence[LockedPackage], where: str) -> dict[str, LockedPackage]:
    out: dict[str, LockedPackage] = {}
    for r in records:
        if r.name in out:
            raise UpdateError(
                f"{where}: package {r.name} is listed twice ({out[r.name].fn}, {r.fn})"
            )
        out[r.name] = r
    return out


# --------------------------------------------------------------------------- reading OLD


def read_base(path: Path, platform: str | None = None) -> Base:
    """OLD from a bundle (any form), a lock file envpack reads, or an installed-package list."""
    from envpack.archive import is_bundle

    if not path.exists():
        raise UpdateError(f"{path}: no such bundle, lock or package list")
    if is_bundle(path):
        return _base_from_bundle(path)
    from envpack.lock.importers import detect_lock_kind, load_lock_file

    if detect_lock_kind(path) is not None:
        lock = load_lock_file(path, platform)
        if platform is None and len(lock.platforms) != 1:
            have = ", ".join(sorted(lock.platforms))
            raise UpdateError(f"{path}: a lock of several platforms ({have}); name one")
        pl = lock.for_platform(platform or next(iter(lock.platforms)))
        mm = pl.micromamba
        return Base(pl.platform, pl.packages, str(path), "lock", _micromamba_id(mm) if mm else None)
    return read_installed_list(path, platform)


def _micromamba_id(mm: object) -> str | None:
    from envpack.lock.record import MicromambaArtifact

    if not isinstance(mm, MicromambaArtifact):
        return None
    if mm.source == "file":
        return mm.file_sha256
    return mm.record.sha256 if mm.record is not None else None


def _base_from_bundle(path: Path) -> Base:
    from envpack.snapshot import lock_from_bundle

    lock, manifest = lock_from_bundle(path)
    (pl,) = lock.platforms.values()
    install = manifest.get("install")
    prefix = install.get("default_prefix") if isinstance(install, dict) else None
    return Base(
        pl.platform,
        pl.packages,
        str(path),
        "bundle",
        _micromamba_id(pl.micromamba),
        str(prefix) if prefix else None,
    )


def read_installed_list(path: Path, platform: str | None = None) -> Base:
    """``micromamba list --explicit --md5`` (2.x: a header line, then ``url#md5`` lines) or
    ``conda list --explicit --md5`` (comments, ``@EXPLICIT``, then the lines) output."""
    from envpack.lock.importers import record_from_url

    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UpdateError(f"{path}: cannot read it as a package list ({exc})") from None
    records: list[LockedPackage] = []
    declared: str | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        found = re.match(r"#\s*platform:\s*(\S+)", line)
        if found:
            declared = found.group(1)
        if not _HASHED_URL.match(line):
            continue
        url, _, digest = line.rpartition("#")
        digest = digest.lower().removeprefix("sha256:")
        where = f"{path}:{number}"
        if re.fullmatch(r"[0-9a-f]{32}", digest):
            records.append(record_from_url(url, md5=digest, where=where))
        elif re.fullmatch(r"[0-9a-f]{64}", digest):
            raise UpdateError(
                f"{where}: a sha256 where the md5 belongs; write the list with "
                "'micromamba list --explicit --md5' (the installed records are compared by md5)"
            )
        else:
            raise UpdateError(f"{where}: {digest!r} is not an md5")
    if not records:
        raise UpdateError(
            f"{path}: not a bundle, a lock, or a package list (no 'url#md5' lines; on the PC "
            "write it with 'micromamba list -p PREFIX --explicit --md5 > installed.txt')"
        )
    subdirs = sorted({r.subdir for r in records} - {"noarch"})
    if len(subdirs) > 1:
        raise UpdateError(f"{path}: packages of several platforms ({', '.join(subdirs)})")
    found_platform = declared or (subdirs[0] if subdirs else None) or platform
    if found_platform is None:
        raise LockError(f"{path}: only noarch packages and no '# platform:' line; name a platform")
    return Base(found_platform, tuple(sorted(records)), str(path), "installed-list")
