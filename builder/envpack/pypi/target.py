"""The target a ``pip:`` list is resolved for: conda platform -> uv platform and wheel tags, and
the Python version the conda solve chose."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from packaging.tags import Tag, compatible_tags, cpython_tags, mac_platforms

from ..errors import RecipeError

UV_PLATFORMS = {
    "win-64": "x86_64-pc-windows-msvc",
    "win-arm64": "aarch64-pc-windows-msvc",
    "win-32": "i686-pc-windows-msvc",
    "linux-64": "x86_64-manylinux_2_17",
    "linux-aarch64": "aarch64-manylinux_2_17",
    "osx-64": "x86_64-apple-darwin",
    "osx-arm64": "aarch64-apple-darwin",
}


def _platform_tags(platform: str) -> list[str]:
    if platform.startswith("win-"):
        return [{"win-64": "win_amd64", "win-arm64": "win_arm64", "win-32": "win32"}[platform]]
    if platform.startswith("linux-"):
        arch = "x86_64" if platform == "linux-64" else "aarch64"
        # glibc 2.17 is conda-forge's floor (its sysroot); the legacy aliases name the same.
        many = [f"manylinux_2_{minor}_{arch}" for minor in range(17, 4, -1)]
        return [*many, f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}"]
    arch = "x86_64" if platform == "osx-64" else "arm64"
    return list(mac_platforms((10, 13) if arch == "x86_64" else (11, 0), arch))


@dataclass(frozen=True)
class Target:
    platform: str  # conda subdir: win-64, linux-64, ...
    python_version: str  # "3.9"

    def __post_init__(self) -> None:
        if self.platform not in UV_PLATFORMS:
            raise RecipeError(f"pip: packages cannot be bundled for {self.platform} yet")

    @property
    def uv_platform(self) -> str:
        return UV_PLATFORMS[self.platform]

    @property
    def version_tuple(self) -> tuple[int, int]:
        major, minor = self.python_version.split(".")[:2]
        return int(major), int(minor)

    def tags(self) -> list[Tag]:
        """Compatible wheel tags, best first (as pip ranks them on the target)."""
        platforms = _platform_tags(self.platform)
        v = self.version_tuple
        return [
            *cpython_tags(v, platforms=platforms),
            *compatible_tags(v, interpreter=f"cp{v[0]}{v[1]}", platforms=platforms),
        ]


def python_version_of(records: Iterable[object]) -> str | None:
    """The ``major.minor`` of the ``python`` package in a conda solve (LockedPackage-like)."""
    for r in records:
        if getattr(r, "name", None) == "python":
            parts = str(getattr(r, "version", "")).split(".")
            if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
                return f"{parts[0]}.{parts[1]}"
    return None
