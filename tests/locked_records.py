"""A lock record for a package file served at a URL (shared by the download and TLS tests)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from envpack.lock.record import LockedPackage


def record_for(path: Path, url: str, **changes: object) -> LockedPackage:
    data = path.read_bytes()
    fields: dict[str, object] = dict(
        name="big",
        version="1.0",
        build="0",
        build_number=0,
        subdir="win-64",
        fn=path.name,
        url=url,
        channel=url.rsplit("/", 2)[0],
        sha256=hashlib.sha256(data).hexdigest(),
        md5=hashlib.md5(data).hexdigest(),
        size=len(data),
    )
    fields.update(changes)
    return LockedPackage(**fields)  # type: ignore[arg-type]
