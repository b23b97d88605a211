"""Every micromamba command line envpack runs or writes, defined once.

The builder's solver backend, the renderer of ``setup.bat`` and the tests that check each flag
against a real micromamba all read from here, so a flag cannot be accepted in one place and
rejected in another. Each flag below exists in micromamba 1.5.x and 2.x (checked against 2.8.1's
parser in ``tests/test_micromamba_real.py``).
"""

from __future__ import annotations

# Isolation from whatever conda/mamba configuration the machine has: no .condarc is read, and no
# channel but the ones named on the command line is used.
ISOLATION_FLAGS: tuple[str, ...] = ("--no-rc", "--override-channels")

# The builder's solve: nothing is installed, the result is read from stdout.
DRY_RUN_FLAGS: tuple[str, ...] = ("--dry-run", "--json", "--yes")

# The offline install setup.bat runs from the bundle's @EXPLICIT list and pre-filled package cache
# (constructor's approach, see notes): hashes are checked against the list's #md5 by micromamba.
# --no-shortcuts: micromamba creates Start-menu entries from Menu\*.json by default.
INSTALL_FLAGS: tuple[str, ...] = ("--yes", "--offline", *ISOLATION_FLAGS)
NO_SHORTCUTS_FLAG = "--no-shortcuts"

# Environment variables that setup.bat sets (values are filled at install time) and that the
# builder sets for its own micromamba runs.
ROOT_PREFIX_VAR = "MAMBA_ROOT_PREFIX"
PKGS_DIRS_VAR = "CONDA_PKGS_DIRS"

# Variables a parent shell may leak into micromamba and that would redirect it or the
# environment's Python; setup.bat clears them inside its setlocal.
CLEARED_VARS: tuple[str, ...] = (
    "CONDA_PREFIX",
    "CONDA_DEFAULT_ENV",
    "CONDA_SHLVL",
    "CONDA_PROMPT_MODIFIER",
    "CONDA_EXE",
    "CONDA_PYTHON_EXE",
    "CONDA_ENVS_PATH",
    "CONDA_ENVS_DIRS",
    "CONDA_CHANNELS",
    "CONDA_SUBDIR",
    "CONDARC",
    "MAMBARC",
    "MAMBA_EXE",
    "PYTHONHOME",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONUSERBASE",
)


def install_argv(
    exe: str, prefix: str, explicit_file: str, platform: str, shortcuts: bool = False
) -> list[str]:
    """The create command setup.bat runs, with concrete paths (used by the tests on Linux)."""
    argv = [exe, "create", "-p", prefix, *INSTALL_FLAGS, "--platform", platform]
    if not shortcuts:
        argv.append(NO_SHORTCUTS_FLAG)
    argv += ["-f", explicit_file]
    return argv


def dry_run_argv(
    exe: str, prefix: str, channels: list[str], specs: list[str], platform: str
) -> list[str]:
    argv = [exe, "create", "-p", prefix, *DRY_RUN_FLAGS, *ISOLATION_FLAGS, "--platform", platform]
    for channel in channels:
        argv += ["-c", channel]
    return argv + list(specs)
