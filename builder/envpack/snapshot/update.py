"""What inspect and verify need to know about an update bundle (envpack.update writes them),
from its manifest alone.

The snapshot commands read an update bundle as a full one (its ``lock`` is NEW's, its ``files``
list every file); these helpers add the rest: :func:`carried_lock` is the part of the lock whose
packages the bundle holds (verify checks those files and repodata against it),
:func:`update_problems` checks the ``update`` table against the lock, and :func:`update_info` /
:func:`format_update` are inspect's "base -> target" section.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from envpack.errors import LockError
from envpack.lock.lockfile import PlatformLock
from envpack.lock.record import SHORT_HASH, LockedPackage, environment_sha256, lock_sha256


def update_table(manifest: Mapping[str, Any]) -> Mapping[str, Any] | None:
    table = manifest.get("update")
    return table if isinstance(table, Mapping) else None


def carried_lock(manifest: Mapping[str, Any], pl: PlatformLock) -> PlatformLock:
    """``pl`` cut to the packages an update bundle carries; ``pl`` itself for a full bundle."""
    table = update_table(manifest)
    if table is None:
        return pl
    carried = {str(c) for c in table.get("carried") or ()}
    return replace(
        pl, packages=tuple(r for r in pl.packages if f"channel/{r.subdir}/{r.fn}" in carried)
    )


def _base_records(table: Mapping[str, Any], platform: str) -> list[LockedPackage]:
    out = []
    for p in table.get("base") or ():
        if not isinstance(p, Mapping):
            raise LockError("update.base: a record is not a mapping")
        fn = str(p.get("fn", ""))
        out.append(
            LockedPackage(
                name=str(p.get("name", "")),
                version=str(p.get("version", "")),
                build=str(p.get("build", "")),
                build_number=0,
                subdir=str(p.get("subdir", platform)),
                fn=fn,
                url=f"https://base.invalid/{fn}",
                channel="",
                sha256=str(p.get("sha256") or ""),
                md5=str(p.get("md5", "")),
                size=int(p.get("size") or 0),
            )
        )
    return out


def update_problems(manifest: Mapping[str, Any], pl: PlatformLock) -> list[str]:
    """The update table against the lock: hashes, and added/changed/removed/carried lists."""
    table = update_table(manifest)
    if table is None:
        return []
    where = "envpack.json: update"
    problems: list[str] = []
    if table.get("target_sha256") != lock_sha256(pl):
        problems.append(f"{where}: target_sha256 is not the hash of the bundle's lock")
    try:
        base = _base_records(table, pl.platform)
    except (LockError, ValueError, TypeError) as exc:
        return [*problems, f"{where}: the base list is malformed ({exc})"]
    if table.get("base_sha256") != environment_sha256(pl.platform, base):
        problems.append(f"{where}: base_sha256 is not the hash of its base list")
    old = {r.name: r for r in base}
    new = {r.name: r for r in pl.packages}
    want_added = sorted(new[n].fn for n in set(new) - set(old))
    want_removed = sorted(old[n].fn for n in set(old) - set(new))
    want_changed = sorted(
        n for n in set(old) & set(new) if (old[n].fn, old[n].md5) != (new[n].fn, new[n].md5)
    )
    if sorted(str(x) for x in table.get("added") or ()) != want_added:
        problems.append(f"{where}: 'added' differs from the base and the lock")
    if sorted(str(x) for x in table.get("removed") or ()) != want_removed:
        problems.append(f"{where}: 'removed' differs from the base and the lock")
    changed = sorted(
        str(c.get("name")) for c in table.get("changed") or () if isinstance(c, Mapping)
    )
    if changed != want_changed:
        problems.append(f"{where}: 'changed' differs from the base and the lock")
    carried = sorted(str(c) for c in table.get("carried") or ())
    want_carried = sorted(
        f"channel/{new[n].subdir}/{new[n].fn}" for n in set(new) - set(old) | set(want_changed)
    )
    if carried != want_carried:
        problems.append(f"{where}: 'carried' is not what the base lacks of the lock")
    return problems


def update_info(manifest: Mapping[str, Any]) -> dict[str, Any] | None:
    """inspect's update section (``--json`` carries it as ``update``), or None."""
    table = update_table(manifest)
    if table is None:
        return None
    return {
        "base_sha256": table.get("base_sha256"),
        "target_sha256": table.get("target_sha256"),
        "base_from": table.get("base_from"),
        "added": list(table.get("added") or ()),
        "removed": list(table.get("removed") or ()),
        "changed": [dict(c) for c in table.get("changed") or () if isinstance(c, Mapping)],
        "carried_packages": len(table.get("carried") or ()),
        "carried_bytes": table.get("carried_bytes"),
        "micromamba": table.get("micromamba"),
    }


def format_update(info: Mapping[str, Any]) -> str:
    base = str(info.get("base_sha256") or "?")[:SHORT_HASH]
    target = str(info.get("target_sha256") or "?")[:SHORT_HASH]
    lines = [
        f"update:      lock {base} -> lock {target} (base read from {info.get('base_from')})",
        f"carried:     {info.get('carried_packages')} packages, {info.get('carried_bytes'):,} bytes"
        if isinstance(info.get("carried_bytes"), int)
        else f"carried:     {info.get('carried_packages')} packages",
    ]
    lines += [f"  + {fn}" for fn in info.get("added") or ()]
    lines += [f"  ~ {c.get('name')}: {c.get('from')} -> {c.get('to')}" for c in info["changed"]]
    lines += [f"  - {fn}" for fn in info.get("removed") or ()]
    return "\n".join(lines)
