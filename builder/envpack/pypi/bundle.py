"""Wheels in the bundle: ``wheels/<file>`` members, ``wheels.txt`` for the pip step, SBOM
components (``pkg:pypi/...``) and the verify check of every wheel's hash."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .records import WheelRecord, wheels_txt

WHEELS_DIR = "wheels"
WHEELS_TXT = "wheels.txt"
STEP_BAT = "pip-step.bat"


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
    """For verify: every locked wheel present in ``root/wheels`` with its size and sha256, no
    other wheel there, and ``wheels.txt`` exactly as the lock gives it."""
    problems: list[str] = []
    folder = root / WHEELS_DIR
    expected = {w.filename: w for w in wheels}
    present = {p.name for p in folder.glob("*.whl")} if folder.is_dir() else set()
    for name in sorted(present - set(expected)):
        problems.append(f"{WHEELS_DIR}/{name}: not in the lock")
    for name, w in sorted(expected.items()):
        path = folder / name
        if not path.is_file():
            problems.append(f"{WHEELS_DIR}/{name}: missing")
            continue
        data = path.read_bytes()
        if w.size and len(data) != w.size:
            problems.append(f"{WHEELS_DIR}/{name}: size {len(data)}, the lock says {w.size}")
        elif hashlib.sha256(data).hexdigest() != w.sha256:
            problems.append(f"{WHEELS_DIR}/{name}: sha256 differs from the lock")
    txt = root / WHEELS_TXT
    if wheels and (not txt.is_file() or txt.read_bytes() != wheels_txt(list(wheels)).encode()):
        problems.append(f"{WHEELS_TXT}: missing or not what the lock gives")
    return problems
