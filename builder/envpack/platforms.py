"""Target platforms and the virtual packages a solve for them assumes.

rattler adds no virtual package by itself (measured: a win-64 solve without ``__win`` fails), and
micromamba takes ``__archspec``/``__cuda`` from the *host* unless overridden. So the target's
virtual packages are spelled out here and passed to both backends, which is what makes a lock
independent of the machine that built it.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass

from envpack.errors import RecipeError

SUPPORTED_PLATFORMS = (
    "win-64",
    "win-arm64",
    "linux-64",
    "linux-aarch64",
    "osx-64",
    "osx-arm64",
)

# Windows 10 22H2: old enough for the PCs still in service, new enough for conda-forge's __win pins.
DEFAULT_WIN_VERSION = "10.0.19045"
DEFAULT_GLIBC_VERSION = "2.17"
DEFAULT_OSX_VERSION = {"osx-64": "10.13", "osx-arm64": "11.0"}
DEFAULT_ARCHSPEC = {
    "win-64": "x86_64",
    "win-arm64": "arm64",
    "linux-64": "x86_64",
    "linux-aarch64": "aarch64",
    "osx-64": "x86_64",
    "osx-arm64": "arm64",
}


@dataclass(frozen=True, order=True)
class VirtualPackage:
    name: str
    version: str
    build: str = "0"

    def as_spec(self) -> str:
        return f"{self.name}={self.version}={self.build}"


def check_platform(platform: str) -> str:
    if platform in SUPPORTED_PLATFORMS:
        return platform
    close = difflib.get_close_matches(platform, SUPPORTED_PLATFORMS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise RecipeError(
        f"unsupported platform {platform!r}{hint}; choose one of {', '.join(SUPPORTED_PLATFORMS)}"
    )


def default_virtual_packages(platform: str) -> dict[str, str]:
    """Return ``{name: version}``; a version may carry a build as ``version=build``."""
    check_platform(platform)
    vps: dict[str, str] = {"__archspec": f"1={DEFAULT_ARCHSPEC[platform]}"}
    if platform.startswith("win-"):
        vps["__win"] = DEFAULT_WIN_VERSION
    elif platform.startswith("linux-"):
        vps["__linux"] = "5.10"
        vps["__glibc"] = DEFAULT_GLIBC_VERSION
        vps["__unix"] = "0"
    else:
        vps["__osx"] = DEFAULT_OSX_VERSION[platform]
        vps["__unix"] = "0"
    return vps


def virtual_packages(platform: str, overrides: Mapping[str, str | None]) -> list[VirtualPackage]:
    """The target's virtual packages, with the recipe's overrides applied.

    An override of ``None`` (YAML ``null``) or ``""`` removes a package; ``__cuda`` appears only
    when asked for, because a bundle for an offline PC must not assume a GPU.
    """
    merged: dict[str, str | None] = dict(default_virtual_packages(platform))
    merged.update(overrides)
    result = []
    for name, value in sorted(merged.items()):
        if not name.startswith("__"):
            raise RecipeError(f"virtual package {name!r} must start with '__'")
        if value is None or value == "":
            continue
        version, _, build = str(value).partition("=")
        result.append(VirtualPackage(name, version, build or "0"))
    return result
