"""Rendering ``stubs/update.bat`` for one update plan.

It reuses setup.bat's renderer pieces (template loading, CRLF, the refusal of characters a batch
file cannot hold) and mamba_cli's flags, variables and dead proxy, so update.bat isolates
micromamba exactly as setup.bat does. Everything per package is written out at build time as
plain ``if exist`` lines: cmd.exe then needs no parsing of conda-meta's JSON.
"""

from __future__ import annotations

from dataclasses import dataclass

from envpack.bundle.mamba_cli import (
    CLEARED_VARS,
    FILE_OPTION,
    INSTALL_FLAGS,
    ISOLATION_FLAGS,
    NO_SHORTCUTS_FLAG,
    OFFLINE_FLAG,
    PLATFORM_OPTION,
    PREFIX_OPTION,
)
from envpack.bundle.stubs import fill, heartbeat, load_template, micromamba_env_lines, to_crlf
from envpack.errors import BundleError
from envpack.lock.record import LockedPackage

from .plan import SHORT, UpdatePlan

ADD_FILE = "update\\add.txt"  # bundle-relative: the @EXPLICIT list of the carried packages
MARKER = ".envpack-update"  # in the prefix, while an update runs
HASH_FILE = "etc\\envpack\\lock-sha256.txt"  # in the prefix: the lock it is at
# "remove --force" unlinks exactly the named packages, without a solve (measured with 2.8.1;
# "remove" does not take --override-channels).
REMOVE_FLAGS: tuple[str, ...] = ("--yes", OFFLINE_FLAG, ISOLATION_FLAGS[0], "--force")


@dataclass(frozen=True)
class UpdateContext:
    plan: UpdatePlan
    default_prefix: str
    files: tuple[tuple[str, int], ...]  # every bundle file the manifest lists (backslashes)
    tools: tuple[str, ...] = ()  # micromamba.exe and its DLLs, when the bundle carries them
    post_install: tuple[str, ...] = ()  # post-install\NN-name.bat, in run order
    shortcuts: bool = False
    envpack_version: str = ""


def _safe(value: str, what: str) -> str:
    for ch in value:
        if ch in '"%' or ord(ch) < 0x20:
            raise BundleError(f"{what} {value!r} contains {ch!r}, which update.bat cannot hold")
    return value


def _dist(r: LockedPackage) -> str:
    return _safe(r.dist, "package")


def _win(rel: str) -> str:
    return rel.replace("/", "\\")


def install_argv(exe: str, prefix: str, add_file: str, platform: str, shortcuts: bool) -> list[str]:
    """update.bat's install: the carried packages, from the pre-filled package cache."""
    argv = [exe, "install", PREFIX_OPTION, prefix, *INSTALL_FLAGS, PLATFORM_OPTION, platform]
    if not shortcuts:
        argv.append(NO_SHORTCUTS_FLAG)
    return [*argv, FILE_OPTION, add_file]


def remove_argv(exe: str, prefix: str, names: list[str]) -> list[str]:
    return [exe, "remove", PREFIX_OPTION, prefix, *REMOVE_FLAGS, *names]


def _command(argv: list[str]) -> str:
    return " ".join(f'"{a}"' if "%" in a or " " in a else a for a in argv)


def _check_files(ctx: UpdateContext) -> str:
    lines = []
    for rel, size in ctx.files:
        rel = _safe(_win(rel), "bundle file")
        lines.append(f'set "EP_FILE={rel}"')
        lines.append(
            f'for %%F in ("%EP_BUNDLE%%EP_FILE%") do if not "%%~zF"=="{size}" call :badfile'
        )
    return "\n".join(lines)


def _copy(sources: list[str], folder: str, sizes: dict[str, int]) -> list[str]:
    lines = []
    for rel in sources:
        rel = _safe(_win(rel), "bundle file")
        fn = rel.rsplit("\\", 1)[-1]
        lines.append(f'copy /b /y "%EP_BUNDLE%{rel}" "%EP_WORK%\\{folder}\\" >nul 2>&1')
        lines.append(
            f'for %%F in ("%EP_WORK%\\{folder}\\{fn}") do if not "%%~zF"=="{sizes[rel]}" '
            f'set "EP_COPYFAIL={rel}"'
        )
    return lines


def _install_step(ctx: UpdateContext) -> str:
    plan = ctx.plan
    if not plan.carried:
        return "rem (lock @@NEW8@@ adds no package: nothing to install)".replace(
            "@@NEW8@@", plan.target_sha256[:SHORT]
        )
    argv = install_argv(
        "%EP_WORK%\\bin\\micromamba.exe",
        "%EP_PREFIX%",
        f"%EP_BUNDLE%{ADD_FILE}",
        plan.platform,
        ctx.shortcuts,
    )
    return "\n".join(
        [
            f"echo update: installing {len(plan.carried)} packages",
            f'>>"%EP_LOG%" echo command: {_command(argv)}',
            # progress lines while micromamba runs (stubs/heartbeat.bat)
            'set "EP_HB_SAY=update"',
            'set "EP_HB_MODE=install"',
            f'set "EP_HB_TOTAL={len(plan.carried)}"',
            "call :hb_base",
            "call :hb_start",
            "setlocal",
            micromamba_env_lines(),
            'if defined EP_MMTMP set "TMP=%EP_MMTMP%"',
            'if defined EP_MMTMP set "TEMP=%EP_MMTMP%"',
            'pushd "%EP_WORK%"',
            f'{_command(argv)} >"%EP_WORK%\\step.log" 2>&1',
            'set "EP_MMRC=%ERRORLEVEL%"',
            "popd",
            'endlocal & set "EP_MMRC=%EP_MMRC%"',
            "call :hb_wait",
            'type "%EP_WORK%\\step.log" >>"%EP_LOG%"',
            '>>"%EP_LOG%" echo micromamba install exit code: %EP_MMRC%',
            # cmd.exe's 9009, or the file gone: an antivirus (update.bat's :micromamba_not_started)
            'if "%EP_MMRC%"=="0" goto :installed',
            'if "%EP_MMRC%"=="9009" goto :micromamba_not_started',
            'if not exist "%EP_WORK%\\bin\\micromamba.exe" goto :micromamba_not_started',
            'type "%EP_WORK%\\step.log"',
            "echo update: micromamba failed (exit code %EP_MMRC%); its messages are above.",
            "echo update: run update.bat again to finish the update.",
            'set "EP_RC=10"',
            "goto :finish",
            ":installed",
        ]
    )


def _post_install(ctx: UpdateContext) -> str:
    lines = []
    for rel in ctx.post_install:
        rel = _win(rel)
        if not rel.lower().startswith("post-install\\"):
            raise BundleError(f"post-install script {rel!r} must be in the bundle's post-install\\")
        name = rel.split("\\", 1)[1]
        if "^" in name:
            raise BundleError(f"post-install script name {name!r} contains '^'")
        lines += [
            f'set "EP_SCRIPT={_safe(name, "post-install script")}"',
            "call :postinstall",
            'if not "%EP_PIRC%"=="0" goto :post_failed',
        ]
    return "\n".join(lines) or "rem (no post-install scripts)"


def summary(plan: UpdatePlan) -> str:
    carried = sum(r.size for r in plan.carried)
    return (
        f"{len(plan.added)} added, {len(plan.changed)} changed, {len(plan.removed)} removed "
        f"({len(plan.carried)} packages carried, {carried:,} bytes)"
    )


def values(ctx: UpdateContext) -> dict[str, str]:
    plan = ctx.plan
    name = _safe(plan.name, "environment name")
    if any(ch in name for ch in "&^!|<>"):
        raise BundleError(
            f"environment name {name!r} contains a character cmd.exe treats specially"
        )
    sizes = {_win(rel): size for rel, size in ctx.files}
    pkgs = [f"channel/{r.subdir}/{r.fn}" for r in plan.carried]
    expect = [f'set "EP_K_{_dist(r)}=1"' for r in plan.base]
    check_base = [
        f'if not exist "%EP_PREFIX%\\conda-meta\\{_dist(r)}.json" >>"%EP_OUT%" echo   '
        f"missing from lock {plan.base_sha256[:SHORT]}: {_dist(r)}"
        for r in plan.base
    ]
    remove = [
        f'if exist "%EP_PREFIX%\\conda-meta\\{_dist(r)}.json" set "EP_RM=%EP_RM% {r.name}"'
        for r in plan.unlinked
    ]
    target = [
        f'if not exist "%EP_PREFIX%\\conda-meta\\{_dist(r)}.json" set "EP_NOTINSTALLED={_dist(r)}"'
        for r in plan.target
    ]
    target += [
        f'if exist "%EP_PREFIX%\\conda-meta\\{_dist(r)}.json" set "EP_LEFTOVER={_dist(r)}"'
        for r in plan.unlinked
    ]
    tools = [
        f'copy /b /y "%EP_WORK%\\bin\\{t}" "%EP_PREFIX%\\Scripts\\" >nul 2>&1' for t in ctx.tools
    ]
    tools += [
        f'if not exist "%EP_PREFIX%\\Scripts\\{t}" set "EP_WRITEFAIL=Scripts\\{t}"'
        for t in ctx.tools
    ]
    return {
        "ENVPACK_VERSION": ctx.envpack_version,
        "NAME": name,
        "PLATFORM": plan.platform,
        "OLD_SHA": plan.base_sha256,
        "NEW_SHA": plan.target_sha256,
        "OLD8": plan.base_sha256[:SHORT],
        "NEW8": plan.target_sha256[:SHORT],
        # "%" stays: the default may name variables expanded on the PC (%LOCALAPPDATA%).
        "DEFAULT_PREFIX": _safe(ctx.default_prefix.replace("%", ""), "default prefix")
        and ctx.default_prefix,
        "CHECK_FILES": _check_files(ctx),
        "EXPECT_BASE": "\n".join(expect) or "rem (lock has no packages)",
        "CHECK_BASE": "\n".join(check_base) or "rem (lock has no packages)",
        "SUMMARY": summary(plan),
        "COPY_TOOLS": "\n".join(_copy(list(ctx.tools), "bin", sizes)) or "rem (none carried)",
        "COPY_FILES": "\n".join(_copy(pkgs, "pkgs", sizes)) or "rem (no packages carried)",
        "REMOVE_NAMES": "\n".join(remove) or "rem (nothing to remove)",
        "CLEAR_VARS": "\n".join(f'set "{v}="' for v in CLEARED_VARS),
        "MICROMAMBA_ENV": micromamba_env_lines(),
        # the names unquoted: one argument each (conda names need no quoting)
        "REMOVE_COMMAND": _command(remove_argv("%EP_WORK%\\bin\\micromamba.exe", "%EP_PREFIX%", []))
        + " %EP_RM%",
        "INSTALL_STEP": _install_step(ctx),
        "CHECK_TARGET": "\n".join(target),
        "INSTALL_TOOLS": "\n".join(tools) or "rem (the environment keeps its micromamba)",
        "POST_INSTALL": _post_install(ctx),
        "HEARTBEAT": heartbeat(),
    }


def render_update(ctx: UpdateContext) -> bytes:
    return to_crlf(fill(load_template("update.bat"), values(ctx)))
