"""Wheels in the bundle: ``wheels/<file>`` members, ``wheels.txt`` for the pip step, SBOM
components (``pkg:pypi/...``) and the verify check of every wheel's hash."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from envpack.lock.wheel import WheelRecord, wheels_txt

WHEELS_DIR = "wheels"
WHEELS_TXT = "wheels.txt"
STEP_BAT = "pip-step.bat"
STEP_SH = "pip-step.sh"
# The pip step's files at the bundle's top (not tools: build --from must not take them as DLLs).
TOP_FILES = frozenset({WHEELS_TXT, STEP_BAT, STEP_SH})


def wheel_members(
    wheels: Sequence[WheelRecord], paths: Mapping[WheelRecord, Path]
) -> list[tuple[str, Path | bytes]]:
    """(arcname, file or bytes) of every wheel member, sorted; nothing when there are no wheels.
    The caller turns them into its archive entries (``Entry.from_file``/``from_bytes``)."""
    if not wheels:
        return []
    members: list[tuple[str, Path | bytes]] = [
        (f"{WHEELS_DIR}/{w.filename}", paths[w]) for w in sorted(wheels)
    ]
    members.append((WHEELS_TXT, wheels_txt(list(wheels)).encode("ascii")))
    return members


def sbom_components(wheels: Sequence[WheelRecord]) -> list[dict[str, Any]]:
    return [
        {
            "type": "library",
            "bom-ref": f"pypi:{w.filename}",
            "name": w.name,
            "version": w.version,
            "purl": w.purl(),
            "hashes": [{"alg": "SHA-256", "content": w.sha256}],
            "properties": [{"name": "pypi:url", "value": w.url}],
        }
        for w in sorted(wheels)
    ]


def wheel_problems(root: Path, wheels: Sequence[WheelRecord]) -> list[str]:
    """For verify of an unpacked folder: every locked wheel present in ``root/wheels`` with its
    size and sha256, no other wheel there, and ``wheels.txt`` exactly as the lock gives it."""
    folder = root / WHEELS_DIR
    names = {f"{WHEELS_DIR}/{p.name}" for p in folder.iterdir()} if folder.is_dir() else set()
    if (root / WHEELS_TXT).is_file():
        names.add(WHEELS_TXT)

    def digest(name: str) -> tuple[int, str] | None:
        data = (root / name).read_bytes()
        return len(data), hashlib.sha256(data).hexdigest()

    return member_wheel_problems(names, digest, lambda name: (root / name).read_bytes(), wheels)


def member_wheel_problems(
    names: set[str],
    digest: Callable[[str], tuple[int, str] | None],
    read: Callable[[str], bytes],
    wheels: Sequence[WheelRecord],
) -> list[str]:
    """The wheel check on any container: ``names`` are the bundle's members (relative to its
    top folder), ``digest(name)`` gives (size, sha256) or None when unreadable (the caller has
    reported why), ``read(name)`` a small member's bytes. Lines name the member."""
    problems: list[str] = []
    expected = {w.filename: w for w in wheels}
    present = {n[len(WHEELS_DIR) + 1 :] for n in names if n.startswith(WHEELS_DIR + "/")}
    for name in sorted(present - set(expected)):
        problems.append(f"{WHEELS_DIR}/{name}: not in the lock")
    for name, w in sorted(expected.items()):
        rel = f"{WHEELS_DIR}/{name}"
        if name not in present:
            problems.append(f"{rel}: missing (wheel {w.name} {w.version} of the lock)")
            continue
        found = digest(rel)
        if found is None:
            continue
        size, sha256 = found
        if w.size and size != w.size:
            problems.append(f"{rel}: {size} bytes, the lock says {w.size}")
        elif sha256 != w.sha256:
            problems.append(f"{rel}: sha256 differs from the lock")
    if wheels:
        if WHEELS_TXT not in names:
            problems.append(f"{WHEELS_TXT}: missing (the pip step installs from it)")
        elif read(WHEELS_TXT) != wheels_txt(list(wheels)).encode("ascii"):
            problems.append(f"{WHEELS_TXT}: not what the lock gives (lines changed or removed)")
    elif WHEELS_TXT in names:
        problems.append(f"{WHEELS_TXT}: present, but the lock has no wheels")
    return problems


def is_wheel_component(component: Mapping[str, Any]) -> bool:
    return str(component.get("purl") or "").startswith("pkg:pypi/")


def sbom_wheel_problems(
    components: Sequence[Mapping[str, Any]], wheels: Sequence[WheelRecord]
) -> list[str]:
    """The SBOM's ``pkg:pypi`` components against the lock's wheels (by file name)."""
    problems: list[str] = []
    listed: dict[str, str | None] = {}
    for c in components:
        if is_wheel_component(c):
            hashes = {h.get("alg"): h.get("content") for h in c.get("hashes") or ()}
            listed[str(c.get("bom-ref", "")).removeprefix("pypi:")] = hashes.get("SHA-256")
    locked = {w.filename: w for w in wheels}
    for fn in sorted(set(locked) - set(listed)):
        problems.append(f"sbom.cdx.json: does not list wheel {fn}")
    for fn in sorted(set(listed) - set(locked)):
        problems.append(f"sbom.cdx.json: lists wheel {fn}, which is not in the lock")
    for fn in sorted(set(listed) & set(locked)):
        if listed[fn] not in (None, locked[fn].sha256):
            problems.append(f"sbom.cdx.json: the sha256 of wheel {fn} differs from the lock")
    return problems
