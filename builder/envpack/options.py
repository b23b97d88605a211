"""The options of lock and build, set once by the CLI and passed down whole, and the
Reporter through which the pipeline tells the user what it does (the CLI decides how)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from envpack.fetch.progress import NullProgress, Progress

LOCK_MODES = ("auto", "locked", "frozen")


class Reporter(Protocol):
    """Where the pipeline sends what the user may want to see (the CLI decides how)."""

    def info(self, message: str) -> None: ...
    def progress(self) -> Progress: ...


class NullReporter:
    def info(self, message: str) -> None:
        pass

    def progress(self) -> Progress:
        return NullProgress()


@dataclass(frozen=True)
class LockOptions:
    recipe: Path | None = None  # None on ``build --from BUNDLE``, which has no recipe
    platform: str | None = None
    solver: str | None = None
    solver_micromamba: Path | None = None  # the host's micromamba that solves (not the bundle's)
    micromamba_exe: Path | None = None  # the target's micromamba that goes into the bundle
    offline: bool = False
    mode: str = "auto"  # auto | locked | frozen
    cache_dir: Path | None = None
    lock_file: Path | None = None


@dataclass(frozen=True)
class BuildOptions:
    lock: LockOptions
    output_dir: Path = Path("dist")
    concurrency: int = 8
    # The self-extracting <stem>-setup.bat (Windows) / -setup.sh (Linux, macOS) beside the bundle:
    # True/False from --sfx/--no-sfx; None (the default) is the recipe's envpack.sfx, else none.
    sfx: bool | None = None
    verify_cache: bool = False
    from_bundle: Path | None = None  # rebuild from an old bundle's lock instead of a recipe
    # an update bundle from this base (a bundle, a lock, or the PC's installed list) instead
    update_from: Path | None = None
    format: str | None = None  # zip | 7z; default the recipe's, else zip
    split: int | None = None  # bytes per part; default the recipe's, else one file
    timeout: float = 60.0  # seconds without progress before a download attempt is abandoned
    # ``build A B ...``: more recipes or locks, one bundle holding every environment
    more_recipes: tuple[Path, ...] = ()
    name: str | None = None  # that bundle's name; default the environments' names joined by "+"
