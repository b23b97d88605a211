"""One call from the pipeline: the ``pip:`` lines of an environment file -> locked, fetched wheels.

Order: direct references (``-e .``, paths, VCS) are built first (pure Python only) and offered to
the resolve as pinned requirements from a local folder, so their own dependencies are resolved
too; then uv resolves everything for the target; sdists it chose are fetched (hash-checked) and
built; finally every wheel goes through envpack's fetcher, which completes size and
Requires-Python. Wheels built here live in ``work`` and reach the cache through the fetcher (a
``file://`` URL, like a local channel's package): ``build --from`` finds them there by hash.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import parse_wheel_filename

from envpack.lock.wheel import WheelRecord

from ..errors import LockError, RecipeError
from ..fetch.download import Fetcher, FetchOptions
from ..fetch.progress import Progress
from ..lock.record import LockedPackage
from .fetch import fetch_wheels, index_channels
from .requirements import PipInput, parse_pip_list
from .resolve import resolve
from .sdist import build_pure_wheel
from .target import Target, python_version_of


@dataclass(frozen=True)
class PipLock:
    """What the lock holds for one platform's ``pip:`` list (the lock's ``pypi:`` key)."""

    wheels: tuple[WheelRecord, ...]
    notes: tuple[str, ...] = ()

    def to_list(self) -> list[dict[str, Any]]:
        return [w.to_dict() for w in sorted(self.wheels)]

    @classmethod
    def from_list(cls, data: Any, where: str) -> PipLock:
        if data is None:
            return cls(())
        if not isinstance(data, list):
            raise LockError(f"{where}: 'pypi' must be a list of wheel records")
        return cls(tuple(sorted(WheelRecord.from_dict(d) for d in data)))


def index_urls(pip: PipInput) -> list[str]:
    return [u for u in (pip.index_url, *pip.extra_index_urls) if u]


def _build_direct(pip: PipInput, base: Path, built: Path, platform: str) -> list[Requirement]:
    pins = []
    for source in pip.direct:
        wheel = build_pure_wheel(source, base, built, platform)
        name, version, _, _ = parse_wheel_filename(wheel.name)
        pins.append(Requirement(f"{name}=={version}"))
    return pins


def _build_sdists(
    sdists: Sequence[tuple[str, str, str, str]],
    pip: PipInput,
    options: FetchOptions,
    base: Path,
    built: Path,
    platform: str,
) -> None:
    if not sdists:
        return
    records = [
        LockedPackage(
            name=name,
            version=version,
            build="sdist",
            build_number=0,
            subdir="pypi",
            fn=url.rsplit("/", 1)[-1],
            url=url,
            channel=url.rsplit("/", 1)[0],
            sha256=sha,
            md5="",
            size=0,
        )
        for name, version, url, sha in sdists
    ]
    paths = Fetcher(options, index_channels(index_urls(pip))).fetch_all(records)
    for record in records:
        build_pure_wheel(str(paths[record]), base, built, platform)


def lock_pip(
    pip_lines: Sequence[str],
    env_path: Path,
    platform: str,
    conda_records: Iterable[LockedPackage],
    options: FetchOptions,
    work: Path,
    progress: Progress | None = None,
) -> tuple[PipLock, dict[WheelRecord, Path]]:
    """Lock and fetch the wheels of ``pip_lines`` for ``platform``; ``conda_records`` is the
    platform's conda solve (its python sets the target version, its packages come first)."""
    records = list(conda_records)
    python = python_version_of(records)
    if python is None:
        raise RecipeError(
            f"{env_path}: pip: entries need python in the environment; add 'python' to dependencies"
        )
    target = Target(platform, python)
    built = work / "built"
    conda: Mapping[str, str] = {r.name: r.version for r in records}
    first = parse_pip_list(list(pip_lines), env_path)
    pins = _build_direct(first, env_path.parent, built, platform)

    def request() -> PipInput:
        pip = parse_pip_list(list(pip_lines), env_path)
        pip.requirements.extend(pins)
        pip.direct = []
        if built.is_dir():
            pip.find_links.append(str(built))
        return pip

    pip = request()
    result = resolve(pip, target, conda, work / "resolve", cache_dir=work / "uv-cache")
    if result.sdists:
        _build_sdists(result.sdists, pip, options, env_path.parent, built, platform)
        # again, now that the built wheels are there: uv takes them rather than the sdists
        pip = request()
        result = resolve(pip, target, conda, work / "resolve2", cache_dir=work / "uv-cache")
        if result.sdists:
            names = ", ".join(n for n, _, _, _ in result.sdists)
            raise RecipeError(f"{env_path}: pip: no wheel for {platform} after building {names}")
    fetched = fetch_wheels(result.wheels, options, index_urls(pip), progress)
    complete = {rec: path for rec, path in fetched.values()}
    return PipLock(tuple(sorted(complete)), tuple(result.notes)), complete
