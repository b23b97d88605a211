"""The exceptions envpack raises for a user's mistake or a broken environment.

Everything envpack expects to go wrong derives from :class:`EnvpackError`; the CLI maps each class
to its exit code and prints ``str(exc)`` as one line. Anything else is a bug and keeps its
traceback.

A full disk (or any failed write) has one code per place, whichever module hits it: writing an
output the user asked for (a bundle, its parts, a lock file) is :class:`BundleError` (7);
writing the package cache (downloads, their ``.part`` files, the cache folder) is
:class:`DownloadError` (5).
"""

from __future__ import annotations


class EnvpackError(Exception):
    """Root of every expected failure. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class RecipeError(EnvpackError):
    """The recipe (or an imported lock/explicit file) is missing, malformed or invalid."""

    exit_code = 2


class SolveError(EnvpackError):
    """The specs cannot be resolved: unknown package, unsatisfiable, or a solver failure."""

    exit_code = 3


class LockError(EnvpackError):
    """The lock file is unreadable, of an unknown version, or out of date under ``--locked``."""

    exit_code = 4


class DownloadError(EnvpackError):
    """A channel or package could not be fetched (unreachable, 404, truncated, not cached), or
    the package cache could not be written (disk full)."""

    exit_code = 5


class ChecksumError(DownloadError):
    """A downloaded or cached file does not match the hash or size recorded for it."""

    exit_code = 6


class BundleError(EnvpackError):
    """An output (bundle, lock file) cannot be written (disk full), or a bundle being read is
    damaged or of an unknown format."""

    exit_code = 7


class VerificationFailed(BundleError):
    """``envpack verify`` found problems; ``problems`` lists each one."""

    exit_code = 8

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems


MAX_MESSAGE = 1000  # characters: one line a terminal and a log can show


class UpdateError(EnvpackError):
    """No update bundle can be made (``build --update-from``): OLD and NEW are for different
    platforms, or identical, or OLD cannot be read as a base. Nothing is written."""

    exit_code = 9


def first_line(exc: BaseException) -> str:
    """An exception's message cut to its first line (libraries often append a whole report)."""
    lines = str(exc).strip().splitlines()
    return summarise(lines[0]) if lines else type(exc).__name__


def summarise(line: str, limit: int = MAX_MESSAGE) -> str:
    """``line`` cut to ``limit`` characters, saying how much was left out: an error that names
    20,000 packages must stay one readable line, not a third of a megabyte."""
    if len(line) <= limit:
        return line
    return f"{line[: limit - 40].rstrip()} … ({len(line) - limit + 40:,} more characters)"
