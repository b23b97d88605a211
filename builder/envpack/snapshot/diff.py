"""What changed between two bundles or locks (of any kind envpack reads)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envpack.archive.readers import is_bundle, open_bundle
from envpack.bundle.manifest import MANIFEST_NAME
from envpack.errors import EnvpackError, LockError
from envpack.lock.lockfile import Lock, PlatformLock
from envpack.lock.record import LockedPackage
from envpack.lock.wheel import WheelRecord
from envpack.snapshot.rebuild import lock_from_manifest
from envpack.snapshot.verify import reading_problems


@dataclass(frozen=True)
class DiffResult:
    a: str
    b: str
    platform: str
    added: tuple[LockedPackage, ...] = ()
    removed: tuple[LockedPackage, ...] = ()
    changed: tuple[tuple[LockedPackage, LockedPackage], ...] = ()
    unchanged: int = 0
    micromamba: tuple[str, str] | None = None  # (old, new) when they differ
    problems: tuple[str, ...] = ()  # what reading either side showed to be wrong
    # The pip: list's wheels, compared by project name.
    wheels_added: tuple[WheelRecord, ...] = ()
    wheels_removed: tuple[WheelRecord, ...] = ()
    wheels_changed: tuple[tuple[WheelRecord, WheelRecord], ...] = ()

    @property
    def has_wheel_changes(self) -> bool:
        return bool(self.wheels_added or self.wheels_removed or self.wheels_changed)

    @property
    def empty(self) -> bool:
        return (
            not (self.added or self.removed or self.changed or self.micromamba)
            and not self.has_wheel_changes
        )

    def to_dict(self) -> dict[str, Any]:
        def pkg(r: LockedPackage) -> dict[str, Any]:
            return {"name": r.name, "version": r.version, "build": r.build, "subdir": r.subdir}

        return {
            "a": self.a,
            "b": self.b,
            "platform": self.platform,
            "added": [pkg(r) for r in self.added],
            "removed": [pkg(r) for r in self.removed],
            "changed": [
                {
                    "name": old.name,
                    "old": f"{old.version}-{old.build}",
                    "new": f"{new.version}-{new.build}",
                    "old_subdir": old.subdir,
                    "new_subdir": new.subdir,
                }
                for old, new in self.changed
            ],
            "unchanged": self.unchanged,
            "micromamba": list(self.micromamba) if self.micromamba else None,
            "problems": list(self.problems),
            "wheels": {
                "added": [_wheel(w) for w in self.wheels_added],
                "removed": [_wheel(w) for w in self.wheels_removed],
                "changed": [
                    {
                        "name": old.name,
                        "old": old.version,
                        "new": new.version,
                        "old_filename": old.filename,
                        "new_filename": new.filename,
                    }
                    for old, new in self.wheels_changed
                ],
            },
        }


def _wheel(w: WheelRecord) -> dict[str, Any]:
    return {"name": w.name, "version": w.version, "filename": w.filename}


def load_any(
    path: Path, platform: str | None = None, environment: str | None = None
) -> tuple[Lock, list[str]]:
    """A bundle's lock, or a lock file of any kind :mod:`envpack.lock.importers` reads, with what
    reading a bundle showed to be wrong with it (see :func:`reading_problems`)."""
    from envpack.lock.importers import detect_lock_kind, load_lock_file

    path = Path(path)
    if not path.exists():
        raise EnvpackError(f"{path}: no such bundle or lock file")
    # Bundles first: their probes read a few bytes, while a lock is recognised by reading text.
    if is_bundle(path):
        with open_bundle(path) as reader:
            manifest = reader.manifest
            # --env picks one environment of a bundle of several; a bundle of one is that one
            env = environment if "environments" in manifest else None
            lock = lock_from_manifest(manifest, f"{path}: {MANIFEST_NAME}", env)
            return lock, [f"{path}: {p}" for p in reading_problems(reader)]
    if detect_lock_kind(path) is not None:
        return load_lock_file(path, platform), []
    raise EnvpackError(f"{path}: neither a bundle nor a lock file envpack reads")


def diff(
    a: Path, b: Path, platform: str | None = None, environment: str | None = None
) -> DiffResult:
    """Packages added, removed and changed from ``a`` to ``b`` (bundles or lock files); with
    ``environment``, that environment of a bundle of several (else all its packages)."""
    lock_a, problems_a = load_any(a, None, environment)
    lock_b, problems_b = load_any(b, None, environment)
    pa, pb = _pick_platforms(lock_a, lock_b, platform, a, b)
    old = {r.name: r for r in lock_a.platforms[pa].packages}
    new = {r.name: r for r in lock_b.platforms[pb].packages}
    changed = tuple(
        (old[n], new[n]) for n in sorted(set(old) & set(new)) if not _same(old[n], new[n])
    )
    mm = (_mm_label(lock_a.platforms[pa]), _mm_label(lock_b.platforms[pb]))
    old_w = {w.name: w for w in lock_a.platforms[pa].pypi}
    new_w = {w.name: w for w in lock_b.platforms[pb].pypi}
    return DiffResult(
        a=str(a),
        b=str(b),
        platform=pa if pa == pb else f"{pa} -> {pb}",
        added=tuple(new[n] for n in sorted(set(new) - set(old))),
        removed=tuple(old[n] for n in sorted(set(old) - set(new))),
        changed=changed,
        unchanged=len(set(old) & set(new)) - len(changed),
        micromamba=mm if mm[0] != mm[1] and mm[0] and mm[1] else None,
        problems=(*problems_a, *problems_b),
        wheels_added=tuple(new_w[n] for n in sorted(set(new_w) - set(old_w))),
        wheels_removed=tuple(old_w[n] for n in sorted(set(old_w) - set(new_w))),
        wheels_changed=tuple(
            (old_w[n], new_w[n])
            for n in sorted(set(old_w) & set(new_w))
            if (old_w[n].filename, old_w[n].sha256) != (new_w[n].filename, new_w[n].sha256)
        ),
    )


def _pick_platforms(
    a: Lock, b: Lock, platform: str | None, path_a: Path, path_b: Path
) -> tuple[str, str]:
    if platform is not None:
        for lock, path in ((a, path_a), (b, path_b)):
            if platform not in lock.platforms:
                have = ", ".join(sorted(lock.platforms)) or "none"
                raise LockError(f"{path}: has no {platform} environment (it has: {have})")
        return platform, platform
    common = sorted(set(a.platforms) & set(b.platforms))
    if len(a.platforms) == 1 and len(b.platforms) == 1:
        return next(iter(a.platforms)), next(iter(b.platforms))
    for only in (a, b):  # a bundle (one platform) decides for a multi-platform lock
        if len(only.platforms) == 1 and next(iter(only.platforms)) in common:
            return common[0], common[0]
    if len(common) == 1:
        return common[0], common[0]
    if "win-64" in common:
        return "win-64", "win-64"
    raise LockError(
        f"{path_a} and {path_b} share no single platform to compare "
        f"({', '.join(common) or 'none in common'}); name one"
    )


def _same(a: LockedPackage, b: LockedPackage) -> bool:
    if (a.version, a.build, a.subdir) != (b.version, b.build, b.subdir):
        return False
    if a.sha256 and b.sha256:
        return a.sha256 == b.sha256
    if a.md5 and b.md5:
        return a.md5 == b.md5
    return True


def _mm_label(pl: PlatformLock) -> str:
    mm = pl.micromamba
    if mm is None:
        return ""
    if mm.record is not None:
        return f"{mm.record.version}-{mm.record.build}"
    return f"{mm.file_name} ({(mm.file_sha256 or '')[:12]})"
