"""Every micromamba command line envpack runs or writes, defined once.

The builder's solver backend, the renderer of ``setup.bat`` and the tests that check each flag
against a real micromamba all read from here, so a flag cannot be accepted in one place and
rejected in another.

Which micromamba versions accept what, read in mamba-org/mamba's sources (``create`` gets its
options from ``init_install_options`` in ``micromamba/src/common_options.cpp``) at the tags
micromamba-1.5.0, -1.5.2, -1.5.12, micromamba-2.0.0, -2.0.5, 2.0.8 and 2.8.1; every flag and
variable below is present, with the same meaning, in all of them. The real 2.8.1 parser is run on
each in ``tests/test_micromamba_real.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

# `-p PREFIX`, `-c CHANNEL`, `-f FILE`, `--platform SUBDIR`: 1.5.0 .. 2.8.1.
PREFIX_OPTION = "-p"
CHANNEL_OPTION = "-c"
FILE_OPTION = "-f"
PLATFORM_OPTION = "--platform"

# 1.5.0 .. 2.8.1: repodata only from the cache or local channels. It does not stop an explicit
# install from downloading a package whose cached file fails its hash (measured with 2.8.1).
OFFLINE_FLAG = "--offline"

# Isolation from whatever conda/mamba configuration the machine has: no .condarc/.mambarc is read
# (--no-rc, 1.5.0 .. 2.8.1), and no channel but the ones named on the command line is used
# (--override-channels, 1.5.0 .. 2.8.1).
ISOLATION_FLAGS: tuple[str, ...] = ("--no-rc", "--override-channels")

# The builder's solve: nothing is installed, the result is read from stdout as JSON (--dry-run,
# --json, -y/--yes: 1.5.0 .. 2.8.1). Without --json a failed solve explains itself on stderr,
# which the solver backend reruns for (the JSON then says only "unsupported request" in 2.x).
JSON_FLAG = "--json"
DRY_RUN_FLAGS: tuple[str, ...] = ("--dry-run", JSON_FLAG, "--yes")

# The offline install setup.bat runs from the bundle's @EXPLICIT list and pre-filled package cache
# (constructor's approach, see notes): hashes are checked against the list's #md5 by micromamba.
# Measured with 2.8.1: a package whose cached file fails that check is fetched again from the
# list's URL despite --offline (tests/test_micromamba_real.py), so those URLs must not be reachable
# for a damaged bundle to fail.
INSTALL_FLAGS: tuple[str, ...] = ("--yes", OFFLINE_FLAG, *ISOLATION_FLAGS)
# `--shortcuts,!--no-shortcuts` (1.5.0 .. 2.8.1): micromamba creates Start-menu entries from
# Menu\*.json by default.
NO_SHORTCUTS_FLAG = "--no-shortcuts"

# Environment variables that setup.bat sets (values are filled at install time) and that the
# builder sets for its own micromamba runs. Both are read by 1.5.0 .. 2.8.1 (MAMBA_ROOT_PREFIX in
# core/context.cpp resp. api/configuration.cpp; CONDA_PKGS_DIRS as the pkgs_dirs setting). Every
# folder in CONDA_PKGS_DIRS must exist (mamba#3218).
ROOT_PREFIX_VAR = "MAMBA_ROOT_PREFIX"
PKGS_DIRS_VAR = "CONDA_PKGS_DIRS"
# libmamba reads configuration variables as YAML (`YAML::Load("[" + value + "]")`): a "," in a
# path splits it, "[" or "{" is a fatal error, " #" cuts it. setup.bat therefore runs micromamba
# from its work folder and gives these two relative to it; micromamba makes them absolute
# against its current folder (measured with 2.8.1: `info` shows the work folder's root and
# pkgs; tests/test_windows_yaml.py installs from a folder named "Reports, 2024 [v1] {b} #1").
WORK_RELATIVE_VALUES: Mapping[str, str] = {ROOT_PREFIX_VAR: "root", PKGS_DIRS_VAR: "pkgs"}

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

# setup.bat points every proxy variable at a closed local port for micromamba's run: a package
# that fails its hash check is otherwise fetched again from the list's URL despite --offline
# (measured with 2.8.1), and a damaged bundle would install on any PC that can reach that URL.
# NO_PROXY is emptied so that no host escapes the dead proxy. (Windows variables are
# case-insensitive; the lower-case ones matter to libcurl on the Linux test host.)
DEAD_PROXY = "http://127.0.0.1:9"
PROXY_VARS: tuple[str, ...] = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
NO_PROXY_VAR = "NO_PROXY"

# micromamba 1.5.0 .. 2.8.1 appends every prefix it creates to ~/.conda/environments.txt, with no
# option to stop it. For its run setup.bat points the home folder at its work folder, so that
# nothing outside the prefix changes and removing the folder uninstalls the environment.
HOME_VARS: tuple[str, ...] = ("USERPROFILE", "HOME")

# How the builder tells its micromamba the target's virtual packages. 2.0+ reads all of these;
# 1.5.x reads CONDA_OVERRIDE_CUDA/GLIBC/OSX/LINUX but has no __archspec override and always gives
# a foreign win-* target `__win=0` (core/virtual_packages.cpp at micromamba-1.5.2).
OVERRIDE_VARS: Mapping[str, str] = {
    "__win": "CONDA_OVERRIDE_WIN",
    "__glibc": "CONDA_OVERRIDE_GLIBC",
    "__osx": "CONDA_OVERRIDE_OSX",
    "__cuda": "CONDA_OVERRIDE_CUDA",
    "__archspec": "CONDA_OVERRIDE_ARCHSPEC",
    "__linux": "CONDA_OVERRIDE_LINUX",
}

# Any CONDA_*/MAMBA_* variable is a setting for micromamba (channels, priority, pkgs dirs...); the
# builder drops them all except those that only say how to reach the network.
_KEPT_MARKERS = ("SSL", "PROXY", "CA_BUNDLE", "CERT")


def builder_env(base: Mapping[str, str], root: Path, pkgs: Path) -> dict[str, str]:
    """``base`` without micromamba settings, with its own root prefix and package cache.

    Virtual-package overrides are the caller's (they come from the recipe).
    """
    env = {
        key: value
        for key, value in base.items()
        if key not in CLEARED_VARS
        and not (
            key.upper().startswith(("CONDA_", "MAMBA_"))
            and not any(marker in key.upper() for marker in _KEPT_MARKERS)
        )
    }
    env[ROOT_PREFIX_VAR] = str(root)
    env[PKGS_DIRS_VAR] = str(pkgs)
    return env


def install_argv(
    exe: str, prefix: str, explicit_file: str, platform: str, shortcuts: bool = False
) -> list[str]:
    """The create command setup.bat runs, with concrete paths (used by the tests on Linux)."""
    argv = [exe, "create", PREFIX_OPTION, prefix, *INSTALL_FLAGS, PLATFORM_OPTION, platform]
    if not shortcuts:
        argv.append(NO_SHORTCUTS_FLAG)
    argv += [FILE_OPTION, explicit_file]
    return argv


def dry_run_argv(
    exe: str,
    prefix: str,
    channels: list[str],
    specs: list[str],
    platform: str,
    offline: bool = False,
) -> list[str]:
    """The builder's solve: ``create --dry-run --json`` into a prefix that is never written."""
    argv = [exe, "create", PREFIX_OPTION, prefix, *DRY_RUN_FLAGS, *ISOLATION_FLAGS]
    if offline:
        argv.append(OFFLINE_FLAG)
    argv += [PLATFORM_OPTION, platform]
    for channel in channels:
        argv += [CHANNEL_OPTION, channel]
    return argv + list(specs)


def setup_env(base: Mapping[str, str], work: Path) -> dict[str, str]:
    """Exactly the environment setup.bat gives micromamba, which it runs with ``work`` as its
    current folder: :func:`install_env` with the root prefix and package cache relative."""
    env = install_env(base, work)
    env.update(WORK_RELATIVE_VALUES)
    return env


def install_env(base: Mapping[str, str], work: Path) -> dict[str, str]:
    """setup.bat's environment for micromamba with absolute paths, for a work folder (used by the
    tests on Linux; setup.bat itself passes root and pkgs relative, see :func:`setup_env`).

    ``work`` holds ``root``, ``pkgs`` and ``home``, as setup.bat lays them out.
    """
    env = {k: v for k, v in base.items() if k not in CLEARED_VARS}
    env[ROOT_PREFIX_VAR] = str(work / "root")
    env[PKGS_DIRS_VAR] = str(work / "pkgs")
    for var in PROXY_VARS:
        env[var] = env[var.lower()] = DEAD_PROXY
    env[NO_PROXY_VAR] = env[NO_PROXY_VAR.lower()] = ""
    for var in HOME_VARS:
        env[var] = str(work / "home")
    return env
