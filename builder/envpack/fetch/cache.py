"""Where downloads and repodata are cached, keeping that folder private, and what the cache
knows about a package without reading it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from envpack.errors import DownloadError
from envpack.fetch.partfile import read_verified


class CacheChoice(Protocol):
    """What the cache folder is chosen from (``LockOptions`` is one): the option, if given."""

    @property
    def cache_dir(self) -> Path | None: ...


def default_cache_dir() -> Path:
    env = os.environ.get("ENVPACK_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("envpack", appauthor=False))


def private_cache(options: CacheChoice) -> Path:
    """The cache folder, made private to this user (0700) before anything is written to it.

    rattler's repodata cache keeps each channel's full URL, credentials included, in its
    ``*.info.json`` files, and a shared machine's other users must not read them (nor swap a
    cached package before its hash is checked again).
    """
    cache = options.cache_dir or default_cache_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True, mode=0o700)
        if os.name == "posix" and (cache.stat().st_mode & 0o077):
            cache.chmod(0o700)
    except OSError as exc:
        raise DownloadError(f"cannot prepare the cache folder {cache}: {exc.strerror}") from None
    return cache


def read_crc32(path: Path) -> int | None:
    """The CRC-32 of a cached package (a path :class:`~envpack.fetch.download.Fetcher` returned),
    computed while its bytes arrived; None if the cache does not know it (an entry written by an
    envpack from before, or a file that changed size since): the caller computes it then."""
    hashes = read_verified(path)
    return None if hashes is None else hashes.crc32
