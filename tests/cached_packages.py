"""Package files as the download cache holds them, for tests of how a bundle's bodies are copied:
real files with their sha256 and CRC-32 known (the writer then copies without reading)."""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

from envpack.bundle.manifest import Entry


def cached_packages(folder: Path, sizes: list[int]) -> list[Entry]:
    """One ``.conda`` member per size, each file's bytes different from the others'."""
    folder.mkdir(parents=True)
    entries = []
    for i, size in enumerate(sizes):
        data = bytes((i * 7 + j) % 251 for j in range(251)) * (size // 251) + b"x" * (size % 251)
        path = folder / f"pkg-{i:02d}-1.0-0.conda"
        path.write_bytes(data)
        entries.append(
            Entry(
                f"channel/win-64/{path.name}",
                size,
                hashlib.sha256(data).hexdigest(),
                source=path,
                crc32=zlib.crc32(data),
            )
        )
    return entries
