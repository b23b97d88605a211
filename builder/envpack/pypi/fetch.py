"""Wheels through envpack's own fetcher (cache, resume, progress, hash and size checks).

The fetcher takes conda :class:`LockedPackage` records; a wheel passes as one whose ``subdir`` is
``pypi`` and ``build`` is ``pypi`` (it never reaches a conda record list: :func:`fetch_wheels`
maps the results back). The index's credentials travel as a :class:`Channel` whose public URL is
the index host, so the fetcher's ``credentialed_url`` adds them to requests only.
"""

from __future__ import annotations

import urllib.parse
import zipfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from packaging.utils import canonicalize_name

from envpack.lock.wheel import WheelRecord, public_url

from ..channels import Channel
from ..errors import ChecksumError
from ..fetch.download import Fetcher, FetchOptions
from ..fetch.progress import Progress
from ..lock.record import LockedPackage

PYPI_SUBDIR = "pypi"


def as_locked_package(wheel: WheelRecord) -> LockedPackage:
    return LockedPackage(
        name=wheel.name,
        version=wheel.version,
        build=PYPI_SUBDIR,
        build_number=0,
        subdir=PYPI_SUBDIR,
        fn=wheel.filename,
        url=wheel.url,
        channel=wheel.url.rsplit("/", 1)[0],
        sha256=wheel.sha256,
        md5="",
        size=wheel.size,
    )


def index_channels(urls: Sequence[str]) -> list[Channel]:
    """One credentialed Channel per index host that carries ``user:password@``."""
    out: list[Channel] = []
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        if parts.username is None:
            continue
        root = urllib.parse.urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        out.append(Channel(given=public_url(root), url=root))
    return out


def requires_python(path: Path) -> str | None:
    """``Requires-Python`` from a wheel's METADATA (the index need not announce it)."""
    with zipfile.ZipFile(path) as zf:
        meta = [n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
        if not meta:
            raise ChecksumError(f"{path.name}: not a wheel (no .dist-info/METADATA)")
        for line in zf.read(meta[0]).decode("utf-8", "replace").splitlines():
            if not line.strip():
                break  # headers end at the first blank line; the description follows
            key, _, value = line.partition(":")
            if key.strip().lower() == "requires-python":
                return value.strip() or None
    return None


def fetch_wheels(
    wheels: Sequence[WheelRecord],
    options: FetchOptions,
    index_urls: Sequence[str] = (),
    progress: Progress | None = None,
) -> dict[WheelRecord, tuple[WheelRecord, Path]]:
    """Each wheel -> (its record completed with size and requires-python, its cached file)."""
    fetcher = Fetcher(options, index_channels(index_urls), progress)
    by_package = {as_locked_package(w): w for w in wheels}
    fetched = fetcher.fetch_all(list(by_package))
    out: dict[WheelRecord, tuple[WheelRecord, Path]] = {}
    for package, path in fetched.items():
        wheel = by_package[package]
        complete = replace(
            wheel,
            name=str(canonicalize_name(wheel.name)),
            size=path.stat().st_size,
            requires_python=requires_python(path),
        )
        out[wheel] = (complete, path)
    return out
