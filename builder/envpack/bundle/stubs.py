"""Rendering the cmd.exe templates in ``stubs/`` into a bundle's batch files.

Templates are CRLF text with ``@@NAME@@`` placeholders; the bundle writer hands over a
:class:`StubContext` and gets bytes back.

``setup.bat`` carries the files it writes into the prefix (``activate.bat``, ``envpack-shell.bat``,
``.condarc``, ``uninstall.bat``) after its last line of script, one ``KEY|line`` per line. At
install time one ``for /f`` writes each line to the file named by its key: FOR variables are
substituted after cmd.exe has parsed the line, so ``&``, ``^``, ``%`` and ``!`` in the text stay
as they are. The self-extracting header is the same script with an extraction step in front of
the install, so both behave alike; it reads those lines from the ``setup.bat`` it unpacked.

Everything here was run under wine's cmd.exe (tests/test_setup_bat.py, tests/test_windows_stubs.py);
where wine and Windows differ, the script uses only what behaves the same in both (see the comments
in stubs/setup.bat). What wine cannot show (AutoRun, cmd.exe's 8191-character limit, tar.exe's
narrow argv, micromamba's YAML reading of variables) is checked in tests/test_stubs_static.py and,
for micromamba, with the real micromamba 2.8.1.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from envpack.bundle.mamba_cli import (
    CLEARED_VARS,
    DEAD_PROXY,
    HOME_VARS,
    NO_PROXY_VAR,
    PKGS_DIRS_VAR,
    PROXY_VARS,
    ROOT_PREFIX_VAR,
    WORK_RELATIVE_VALUES,
    install_argv,
)
from envpack.errors import BundleError


@dataclass(frozen=True)
class StubContext:
    name: str  # environment name, also the bundle's top folder
    platform: str  # e.g. win-64
    default_prefix: str  # may hold %VAR% references expanded on the target, e.g. %LOCALAPPDATA%
    explicit_file: str  # bundle-relative, backslashes: env.txt
    channel_dir: str  # bundle-relative: channel
    micromamba_files: tuple[str, ...]  # bundle-relative: micromamba.exe and its DLLs
    files: tuple[tuple[str, int], ...]  # every bundle file the manifest lists, with its size
    packages: tuple[str, ...]  # bundle-relative package paths, channel\win-64\x.conda
    installed_size: int  # bytes the environment takes once installed
    longest_path: int  # the longest path inside any package, relative to the prefix
    post_install: tuple[str, ...] = ()  # bundle-relative scripts, run in order
    wheels: int = 0  # PyPI wheels in wheels\ (pip-step.bat installs them after micromamba)
    shortcuts: bool = False
    variables: tuple[tuple[str, str], ...] = field(default=())
    envpack_version: str = ""
    # the longest path micromamba extracts to, relative to its package cache (core.extraction_dir)
    longest_extract: int = 0
    # the packages' etc/conda/env_vars.d/*.json, merged as conda merges them (pkginfo.env_vars_d)
    package_variables: tuple[tuple[str, str], ...] = field(default=())
    # environment_sha256 of the lock: setup.bat records it for update.bat to find its base.
    lock_sha256: str = ""
    # In a bundle of several environments, this one's folder (envs\\<env>): its setup.bat and
    # post-install scripts live there, the packages and micromamba at the top. "" otherwise.
    env_dir: str = ""


# Where setup.bat puts things, relative to the prefix; the path-length check depends on them.
WORK_SUFFIX = ".envpack-work"  # the work folder is "<prefix>.envpack-work", beside the prefix
MAX_PATH_CHARS = 259  # MAX_PATH (260) minus the terminating NUL

# Processor architectures (PROCESSOR_ARCHITECTURE, or PROCESSOR_ARCHITEW6432 in a 32-bit cmd.exe)
# that run each platform's binaries; Windows 11 on ARM runs x64 binaries by emulation, Windows 10
# on ARM does not (setup.bat then checks the build number: X64_ON_ARM).
ARCHITECTURES = {
    "win-64": ("AMD64", "ARM64"),
    "win-arm64": ("ARM64",),
    "win-32": ("x86", "AMD64", "ARM64"),
}
X64_ON_ARM = {"win-64"}

# Keys of the files setup.bat writes into the prefix: (key, template, file name in the prefix).
PREFIX_TEMPLATES = (
    ("A", "activate.bat", "activate.bat"),
    ("S", "envpack-shell.bat", "envpack-shell.bat"),
    ("C", "condarc", ".condarc"),
    ("U", "uninstall.bat", "uninstall.bat"),
)

# Characters that cannot be made safe in a batch file: a quote ends the quoting that protects
# "&", "^" and friends, a "%" in a literal would be expanded, control characters end the line.
_UNSAFE = re.compile(r'["%\x00-\x1f]')
# A post-install script is CALLed, and CALL doubles "^" (and reads "%" again).
_UNSAFE_CALLED = re.compile(r'["%^\x00-\x1f]')
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Variables activate.bat sets itself.
_RESERVED_VARS = {
    "PATH",
    "PROMPT",
    "CONDA_PREFIX",
    "CONDA_DEFAULT_ENV",
    "CONDA_SHLVL",
    "CONDA_PROMPT_MODIFIER",
}


@functools.cache
def stubs_dir() -> Path:
    """``envpack/stubs`` in a wheel; the repository's ``stubs/`` in an editable install.

    Looked up once: a bundle loads some 27 templates, twice in a streamed build, and each lookup
    through importlib.resources cost about 0.3 ms (a warm build's start-up, issue 18)."""
    packaged = resources.files("envpack").joinpath("stubs")
    if packaged.is_dir():
        return Path(str(packaged))
    repo = Path(__file__).resolve().parents[3] / "stubs"
    if repo.is_dir():
        return repo
    raise BundleError("envpack's batch templates (stubs/) are missing from this installation")


@functools.cache
def load_template(name: str) -> str:
    # Read once per process: a bundle renders ~27 templates, twice in a build that writes the
    # sfx header, and the files are part of the installed package (they do not change).
    path = stubs_dir() / name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BundleError(f"cannot read template {path}: {exc.strerror}") from None
    return data.decode("utf-8").replace("\r\n", "\n")


def to_crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def batch_quote(value: str) -> str:
    """Escape a value for ``set "VAR=value"`` with delayed expansion off: only ``%`` is special."""
    return value.replace("%", "%%")


def fill(template: str, values: dict[str, str]) -> str:
    text = template
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    if "@@" in text:
        start = text.index("@@")
        raise BundleError(f"template placeholder left unrendered: {text[start : start + 40]!r}")
    return text


def render(template: str, values: dict[str, str]) -> bytes:
    return to_crlf(fill(template, values))


def _check(value: str, what: str, pattern: re.Pattern[str] = _UNSAFE) -> str:
    bad = pattern.search(value)
    if bad:
        raise BundleError(
            f"{what} {value!r} contains {bad.group()!r}, which a Windows batch file cannot "
            "handle safely; rename it"
        )
    return value


def _file_name(rel: str) -> str:
    return rel.replace("/", "\\").rsplit("\\", 1)[-1]


def _stem(fn: str) -> str:
    for ext in (".conda", ".tar.bz2"):
        if fn.endswith(ext):
            return fn[: -len(ext)]
    return fn


def need_mb(ctx: StubContext) -> int:
    """Disk space the install needs, in MB of 10^6 bytes: the packages' copies in the work folder
    plus the installed environment (micromamba hard-links from its cache on the same drive)."""
    sizes = dict(ctx.files)
    packages = sum(sizes.get(p.replace("/", "\\"), 0) for p in ctx.packages)
    return max(1, math.ceil((ctx.installed_size + packages) / 1_000_000))


def path_limit(ctx: StubContext) -> tuple[int, int, int]:
    """(the longest prefix that keeps every path within MAX_PATH, room needed in the prefix,
    room needed in the work folder): micromamba extracts each package under
    ``<prefix>.envpack-work\\pkgs\\`` before linking it into the prefix."""
    longest_stem = max((len(_stem(_file_name(p))) for p in ctx.packages), default=0)
    in_prefix = 1 + ctx.longest_path
    # micromamba < 2.6 extracts to pkgs\<dist>\, later ones to a folder derived from the URL.
    in_cache = max(longest_stem + 1 + ctx.longest_path, ctx.longest_extract)
    in_work = len(WORK_SUFFIX) + len("\\pkgs\\") + in_cache
    return max(0, MAX_PATH_CHARS - max(in_prefix, in_work)), in_prefix, in_work


def _micromamba_command(ctx: StubContext) -> str:
    exe = ctx.micromamba_files[0] if ctx.micromamba_files else "micromamba.exe"
    argv = install_argv(
        f"%EP_WORK%\\bin\\{_file_name(exe)}",
        "%EP_PREFIX%",
        "%EP_BUNDLE%" + ctx.explicit_file.replace("/", "\\"),
        ctx.platform,
        ctx.shortcuts,
    )
    return " ".join(f'"{a}"' if "%" in a or " " in a else a for a in argv)


def micromamba_env_lines() -> str:
    """The variables of micromamba's run, as mamba_cli.setup_env gives them on Linux: the root
    prefix and package cache relative to the work folder, micromamba's current folder (it reads
    both variables as YAML, which a full path cannot pass through unharmed)."""
    lines = [
        f'set "{ROOT_PREFIX_VAR}={WORK_RELATIVE_VALUES[ROOT_PREFIX_VAR]}"',
        f'set "{PKGS_DIRS_VAR}={WORK_RELATIVE_VALUES[PKGS_DIRS_VAR]}"',
    ]
    lines += [f'set "{var}={DEAD_PROXY}"' for var in PROXY_VARS]
    lines.append(f'set "{NO_PROXY_VAR}="')
    lines += [f'set "{var}=%EP_WORK%\\home"' for var in HOME_VARS]
    return "\n".join(lines)


def heartbeat() -> str:
    """The subroutines that print progress while micromamba runs (stubs/heartbeat.bat), shared
    by setup.bat and update.bat: both start a background copy of themselves around each
    micromamba step (``call :hb_start`` ... ``call :hb_wait``)."""
    return load_template("heartbeat.bat")


def _arch_check(platform: str) -> str:
    archs = ARCHITECTURES.get(platform)
    if archs is None:
        # a bundle for another OS: setup.bat explains and stops at the architecture check
        return "rem not a Windows bundle: no processor can run it here"
    lines = [f'if /i "%EP_ARCH%"=="{a}" set "EP_ARCH_OK=1"' for a in archs]
    lines.append('set "EP_X64_ON_ARM="')
    if platform in X64_ON_ARM:
        lines.append('if /i "%EP_ARCH%"=="ARM64" set "EP_X64_ON_ARM=1"')
    return "\n".join(lines)


def _check_files(ctx: StubContext) -> str:
    # Two lines per file: wine's cmd.exe fails a CALL inside a parenthesized block in a FOR body,
    # and the name goes through a variable, not a CALL argument (CALL doubles "^").
    lines = []
    for rel, size in ctx.files:
        rel = _check(rel.replace("/", "\\"), "bundle file")
        lines.append(f'set "EP_FILE={rel}"')
        lines.append(
            f'for %%F in ("%EP_BUNDLE%%EP_FILE%") do if not "%%~zF"=="{size}" call :badfile'
        )
    return "\n".join(lines)


def _copy_files(ctx: StubContext) -> str:
    sizes = {rel.replace("/", "\\"): size for rel, size in ctx.files}
    lines = []
    for rel in ctx.micromamba_files:
        rel = _check(rel.replace("/", "\\"), "micromamba file")
        fn = _file_name(rel)
        lines.append(f'copy /b /y "%EP_BUNDLE%{rel}" "%EP_WORK%\\bin\\" >nul 2>&1')
        lines.append(f'if not exist "%EP_WORK%\\bin\\{fn}" set "EP_COPYFAIL={rel}"')
    for rel in ctx.packages:
        rel = _check(rel.replace("/", "\\"), "package")
        fn = _file_name(rel)
        lines.append(f'copy /b /y "%EP_BUNDLE%{rel}" "%EP_WORK%\\pkgs\\" >nul 2>&1')
        lines.append(
            f'for %%F in ("%EP_WORK%\\pkgs\\{fn}") do if not "%%~zF"=="{sizes.get(rel, "")}" '
            f'set "EP_COPYFAIL={rel}"'
        )
    return "\n".join(lines)


def _check_meta(ctx: StubContext) -> str:
    lines = []
    for rel in ctx.packages:
        stem = _stem(_file_name(rel))
        lines.append(
            f'if not exist "%EP_PREFIX%\\conda-meta\\{stem}.json" set "EP_NOTINSTALLED={stem}"'
        )
    return "\n".join(lines)


def _install_tools(ctx: StubContext) -> str:
    lines = []
    for rel in ctx.micromamba_files:
        fn = _file_name(rel)
        lines.append(f'copy /b /y "%EP_WORK%\\bin\\{fn}" "%EP_PREFIX%\\Scripts\\" >nul 2>&1')
        lines.append(f'if not exist "%EP_PREFIX%\\Scripts\\{fn}" set "EP_WRITEFAIL=Scripts\\{fn}"')
    return "\n".join(lines)


def _post_install(ctx: StubContext) -> str:
    lines = []
    for rel in ctx.post_install:
        rel = rel.replace("/", "\\")
        if ctx.env_dir and rel.lower().startswith(ctx.env_dir.lower() + "\\"):
            rel = rel[len(ctx.env_dir) + 1 :]
        if not rel.lower().startswith("post-install\\"):
            raise BundleError(f"post-install script {rel!r} must be in the bundle's post-install\\")
        name = _check(rel.split("\\", 1)[1], "post-install script name", _UNSAFE_CALLED)
        lines += [
            f'set "EP_SCRIPT={name}"',
            "call :postinstall",
            'if not "%EP_PIRC%"=="0" goto :post_failed',
        ]
    return "\n".join(lines)


def _pip_step(ctx: StubContext) -> str:
    """After micromamba and before post-install scripts (which may import the wheels). Empty
    without wheels, so that such bundles stay byte-identical. A called batch file's exit code
    does not survive CALL everywhere (wine gives 1): "if errorlevel 1", then setup's own 14."""
    if not ctx.wheels:
        return ""
    lines = [
        "rem The bundle's PyPI wheels, by the environment's own pip (exit code 14 on failure).",
        'call "%EP_BUNDLE%pip-step.bat" "%EP_PREFIX%" "%EP_BUNDLE%" "%EP_LOG%"',
        "if not errorlevel 1 goto :pip_ok",
        'echo setup: installing the Python wheels failed; pip\'s messages are in "%EP_LOG%".',
        '>>"%EP_LOG%" echo result: pip-step.bat failed',
        'set "EP_RC=14"',
        "goto :finish",
        ":pip_ok",
    ]
    return "\n".join(lines) + "\n"


def _variables(ctx: StubContext) -> str:
    """``set`` lines for the packages' env_vars.d variables, then the recipe's (which win), as
    conda applies env_vars.d and then conda-meta\\state. (micromamba writes no conda-meta\\state;
    the recipe's ``variables`` are envpack's way to set what conda's ``env config vars`` would.)"""
    merged: dict[str, str] = dict(ctx.package_variables)
    for key, value in ctx.variables:
        merged.pop(key, None)
        merged[key] = value
    lines = []
    for key, value in merged.items():
        if not _VAR_NAME.fullmatch(key) or key.upper() in _RESERVED_VARS:
            raise BundleError(f"variable name {key!r} cannot be set by activate.bat")
        _check(value.replace("%", ""), f"the value of variable {key}")
        lines.append(f'set "{key}={batch_quote(value)}"')
    return "\n".join(lines) if lines else "rem (no variables to set)"


def _default_prefix(prefix: str) -> str:
    # "%" stays: the default may name variables expanded on the target (%LOCALAPPDATA%).
    _check(prefix.replace("%", ""), "default prefix")
    return prefix


def _common_values(ctx: StubContext) -> dict[str, str]:
    name = _check(ctx.name, "environment name")
    if re.search(r"[&^!|<>]", name):
        raise BundleError(
            f"environment name {name!r} contains a character cmd.exe treats specially"
        )
    if ctx.shortcuts:
        # micromamba's Start-menu entries (menuinst v1) start <root prefix>\python.exe cwp.py,
        # and setup.bat's root prefix is its work folder, deleted after the install; nor would
        # uninstall.bat remove them.
        raise BundleError(
            "the recipe's 'envpack: shortcuts: true' is not supported (the Start-menu entries "
            "would point into setup.bat's deleted work folder); remove that setting"
        )
    limit, in_prefix, in_work = path_limit(ctx)
    if not re.fullmatch(r"[0-9a-f]{64}", ctx.lock_sha256):
        raise BundleError(f"the lock hash {ctx.lock_sha256!r} is not 64 hex digits")
    return {
        "LOCK_SHA256": ctx.lock_sha256,
        "ENVPACK_VERSION": ctx.envpack_version,
        "NAME": name,
        "PLATFORM": ctx.platform,
        "PACKAGE_COUNT": str(len(ctx.packages)),
        "DEFAULT_PREFIX": _default_prefix(ctx.default_prefix),
        "ARCH_CHECK": _arch_check(ctx.platform),
        "EXPLICIT_FILE": _check(ctx.explicit_file.replace("/", "\\"), "explicit file"),
        "CHECK_FILES": _check_files(ctx),
        "NEED_MB": str(need_mb(ctx)),
        "PATH_LIMIT": str(limit),
        "PATH_PAD": "?" * (limit + 1),
        "PREFIX_ROOM": str(in_prefix),
        "WORK_ROOM": str(in_work),
        "COPY_FILES": _copy_files(ctx),
        "CLEAR_VARS": "\n".join(f'set "{v}="' for v in CLEARED_VARS),
        "ROOT_PREFIX_VAR": ROOT_PREFIX_VAR,
        "PKGS_DIRS_VAR": PKGS_DIRS_VAR,
        "MICROMAMBA_COMMAND": _micromamba_command(ctx),
        "MICROMAMBA_ENV": micromamba_env_lines(),
        "CHECK_META": _check_meta(ctx),
        "INSTALL_TOOLS": _install_tools(ctx),
        "POST_INSTALL": _post_install(ctx),
        "PIP_STEP": _pip_step(ctx),
        "WRITE_PREFIX_FILES": _write_prefix_files(ctx),
        "HEARTBEAT": heartbeat(),
        **_multi_values(ctx),
    }


def _multi_values(ctx: StubContext) -> dict[str, str]:
    """The placeholders that differ in one environment's setup.bat inside a bundle of several
    (stubs/setup-multi.bat CALLs it); for a one-environment bundle they render setup.bat's
    bytes unchanged."""
    need = str(need_mb(ctx))
    if not ctx.env_dir:
        return {
            "ARG_INIT": "",
            "NEED_SET": "",
            "NEED_CHECK": need,
            "CHECK_ONLY": "",
            "SELF": "setup.bat",
            "POST_DIR": "post-install",
            "RC_OUT": "",
        }
    env_dir = _check(ctx.env_dir.replace("/", "\\"), "environment folder")
    return {
        "ARG_INIT": 'set "EP_CHECKONLY="\n',
        # The top-level script's check pass sets EP_MULTI_OTHERS_MB to what the other chosen
        # environments need, so that the free space covers all of them.
        "NEED_SET": 'set "EP_NEED_TOTAL="\n'
        f'set /a "EP_NEED_TOTAL={need}+EP_MULTI_OTHERS_MB" >nul 2>&1\n'
        f'if not defined EP_NEED_TOTAL set "EP_NEED_TOTAL={need}"\n',
        "NEED_CHECK": "%EP_NEED_TOTAL%",
        # /CHECK: every check that changes nothing, the summary, then exit 0 (the check pass).
        "CHECK_ONLY": 'if defined EP_CHECKONLY set "EP_RC=0"\n'
        "if defined EP_CHECKONLY goto :finish\n",
        "SELF": f"{env_dir}\\setup.bat",
        "POST_DIR": f"{env_dir}\\post-install",
        # A CALLed script's exit code does not survive CALL under wine: the caller reads EP_RC.
        "RC_OUT": 'endlocal & set "EP_RC=%EP_RC%"\n',
    }


def prefix_files(ctx: StubContext) -> list[tuple[str, str]]:
    """(file name in the prefix, text) of each file setup.bat writes there, rendered."""
    values = {"NAME": ctx.name, "VARIABLES": _variables(ctx)}
    return [(target, fill(load_template(tpl), values)) for _, tpl, target in PREFIX_TEMPLATES]


def _embedded_templates(ctx: StubContext) -> str:
    lines = []
    for (key, _, _), (_, text) in zip(PREFIX_TEMPLATES, prefix_files(ctx), strict=True):
        for line in text.rstrip("\n").split("\n"):
            lines.append(f"{key}|{line}")
    return "\n".join(lines) + "\n"


def _write_prefix_files(ctx: StubContext) -> str:
    # The size check proves that FOR /F copied every line (it skips empty ones, and the keys
    # keep none empty) and that the console's code page round-tripped the text.
    lines = []
    for (key, _, target), (_, text) in zip(PREFIX_TEMPLATES, prefix_files(ctx), strict=True):
        size = len(to_crlf(text))
        lines.append(
            f'copy /b /y "%EP_WORK%\\prefix-files\\{key}.txt" "%EP_PREFIX%\\{target}" >nul 2>&1'
        )
        lines.append(
            f'for %%F in ("%EP_PREFIX%\\{target}") do if not "%%~zF"=="{size}" '
            f'set "EP_WRITEFAIL={target}"'
        )
    return "\n".join(lines)


def _values(ctx: StubContext, sfx: bool) -> dict[str, str]:
    values = _common_values(ctx)
    if sfx:
        values["BUNDLE_SOURCE"] = fill(load_template("sfx-header.bat"), {"NAME": values["NAME"]})
        values["SFX_ARGS"] = 'if /i "%EP_ARG%"=="/EXTRACT" (set "EP_EXPECT=/EXTRACT" & goto :eof)'
        values["SFX_USAGE"] = " [/EXTRACT FOLDER]"
        values["SFX_USAGE_LINES"] = (
            f"echo   /EXTRACT  unpack into FOLDER\\{values['NAME']} instead of beside this file\n"
        )
    else:
        values["BUNDLE_SOURCE"] = (
            # envs\<env>\setup.bat: the bundle is two folders up (packages, micromamba).
            'for %%B in ("%~dp0..\\..") do set "EP_BUNDLE=%%~fB\\"'
            if ctx.env_dir
            else 'set "EP_BUNDLE=%~dp0"'
        )
        values["SFX_ARGS"] = (
            'if /i "%EP_ARG%"=="/CHECK" (set "EP_CHECKONLY=1" & goto :eof)'
            if ctx.env_dir
            else "rem (/EXTRACT belongs to the self-extracting file)"
        )
        values["SFX_USAGE"] = ""
        values["SFX_USAGE_LINES"] = ""
    return values


def _script(ctx: StubContext, sfx: bool) -> str:
    template = load_template("setup.bat")
    # The embedded files are read from the tail of setup.bat, skipping its script lines; the
    # self-extracting file reads them from the setup.bat it unpacked, so both skip setup.bat's
    # count.
    plain = fill(template, {**_values(ctx, sfx=False), "TEMPLATE_SKIP": "0"})
    skip = plain.count("\n")
    return fill(template, {**_values(ctx, sfx), "TEMPLATE_SKIP": str(skip)})


def render_setup(ctx: StubContext) -> bytes:
    return to_crlf(_script(ctx, sfx=False) + _embedded_templates(ctx))


# The zip inside the self-extracting .bat starts at a multiple of this, so that the 4 KiB
# alignment archive.zipwriter gives the packages' data (counted from the zip's start, its ALIGN)
# holds in the .bat too and a reflink copy of the zip shares its blocks. A constant here, not an
# import: archive.joinbat imports this module.
SFX_ALIGN = 4096
# The padding's lines: spaces and CRLF, no text that cmd.exe could take for a label or command.
_PAD_LINE = 64


def sfx_padding(length: int) -> bytes:
    """Bytes that bring a header of ``length`` bytes (ending in CRLF) to a multiple of
    SFX_ALIGN: lines of spaces, each ending in CRLF. They go after the script's last command
    (the last subroutine's ``goto :eof``; every way through the script ends in ``exit /b`` or
    ``goto :eof``), so cmd.exe never runs them, and a label search (``goto``/``call :x``, which
    may read on to the end of the file) finds only blank lines there, never a label. One byte
    cannot be a CRLF line: it then takes a further SFX_ALIGN bytes."""
    pad = -length % SFX_ALIGN
    if pad == 1:
        pad += SFX_ALIGN
    lines = [_PAD_LINE] * (pad // _PAD_LINE)
    rest = pad % _PAD_LINE
    if rest == 1:  # 63 + 2 instead of 64 + 1
        lines[-1] -= 1
        rest = 2
    if rest:
        lines.append(rest)
    return b"".join(b" " * (n - 2) + b"\r\n" for n in lines)


def render_sfx_header(ctx: StubContext) -> bytes:
    """The self-extracting .bat's header, padded to a multiple of SFX_ALIGN (sfx_padding) before
    its last line: the manifest's ``sfx_header`` record is of these bytes, padding included."""
    script = to_crlf(_script(ctx, sfx=True))
    # before the last line ("rem Nothing after this line is run."), which stays just before the zip
    last = script.rindex(b"\r\n", 0, len(script) - 2) + 2
    return script[:last] + sfx_padding(len(script)) + script[last:]


def render_multi_setup(name: str, envs: list[StubContext]) -> bytes:
    """The top-level setup.bat of a bundle of several environments (stubs/setup-multi.bat): it
    CALLs each chosen environment's own ``envs\\<env>\\setup.bat``, first with /CHECK, then to
    install. Environment N is chosen when ``EM_E<N>`` is set."""
    first = envs[0]
    names = [_common_values(ctx)["NAME"] for ctx in envs]  # checked as setup.bat checks them
    need = [need_mb(ctx) for ctx in envs]
    init, every, args, present, total, checks, installs, usage = ([] for _ in range(8))
    for n, (ctx, env, mb) in enumerate(zip(envs, names, need, strict=True), 1):
        script = _check(f"{ctx.env_dir}\\setup.bat".replace("/", "\\"), "environment script")
        init.append(f'set "EM_E{n}="')
        every.append(f'if defined EM_ALL set "EM_E{n}=1"')
        args.append(f'if /i "%EM_ARG%"=="{env}" set "EM_E{n}=1"')
        args.append(f'if /i "%EM_ARG%"=="{env}" goto :eof')
        present.append(f'set "EM_MISSING={script}"')
        present.append(f'if defined EM_E{n} if not exist "%~dp0{script}" goto :missing')
        total.append(f'if defined EM_E{n} set /a "EM_TOTAL+={mb}" >nul')
        checks += [
            f"if not defined EM_E{n} goto :checked_{n}",
            f'set "EM_NAME={env}"',
            f'set /a "EP_MULTI_OTHERS_MB=EM_TOTAL-{mb}" >nul',
            'set "EP_RC="',
            f'call "%~dp0{script}" /CHECK /S %EM_FORCE%',
            'if not "%EP_RC%"=="0" goto :failed',
            f":checked_{n}",
        ]
        installs += [
            f"if not defined EM_E{n} goto :installed_{n}",
            f'set "EM_NAME={env}"',
            'set "EP_RC="',
            f'call "%~dp0{script}" /S %EM_FORCE%',
            'if not "%EP_RC%"=="0" goto :failed',
            f":installed_{n}",
        ]
        usage.append(f"echo             {env:<12} into {_default_prefix(ctx.default_prefix)}")
    values = {
        "ENVPACK_VERSION": first.envpack_version,
        "NAME": _check(name, "bundle name"),
        "NAMES": ", ".join(f'"{n}"' for n in names),
        "NAMES_DONE": "the chosen environments.",
        "NAME_LIST": ", ".join(names),
        "PLATFORM": first.platform,
        "ENV_INIT": "\n".join(init),
        "ENV_ALL": "\n".join(every),
        "ENV_ARGS": "\n".join(args),
        "ENV_PRESENT": "\n".join(present),
        "ENV_TOTAL": "\n".join(total),
        "CHECK_CALLS": "\n".join(checks),
        "INSTALL_CALLS": "\n".join(installs),
        "USAGE_ENVS": "\n".join(usage),
    }
    return render(load_template("setup-multi.bat"), values)
