"""Rendering the POSIX sh templates in ``stubs/`` (setup.sh & co.) for Linux and macOS bundles.

Templates are LF text with ``@@NAME@@`` placeholders, each standing where a shell *word* goes,
so the template itself is valid sh that shellcheck reads; values are filled in already quoted
(:func:`sh_quote`: single quotes, nothing inside them is special). Lists (bundle files with
their sizes, packages, post-install scripts) become one newline-separated quoted string, which
setup.sh walks with IFS set to a newline: no bundle name holds a newline or control character
(envpack/names.py refuses them), so no entry can split or inject a line.

The bundle gets ``setup.sh`` plus the files setup.sh puts into the prefix, kept as bundle files
under ``prefix-files/`` (``activate.sh``, ``uninstall.sh``, ``condarc``) so that the manifest
hashes them and verify checks them like the rest. The micromamba command line comes from
:func:`envpack.bundle.mamba_cli.install_argv`, the same definition setup.bat uses.

The scripts run under dash, bash and busybox ash (tests/test_setup_sh.py, with the real Linux
micromamba 2.8.1). osx-64 and osx-arm64 bundles get the same scripts; there is no macOS here,
so for them only the structure and the scripts' text are checked.
"""

from __future__ import annotations

import math
import re

from envpack.bundle.mamba_cli import (
    CLEARED_VARS,
    DEAD_PROXY,
    NO_PROXY_VAR,
    PKGS_DIRS_VAR,
    PROXY_VARS,
    ROOT_PREFIX_VAR,
    WORK_RELATIVE_VALUES,
    install_argv,
)
from envpack.bundle.manifest import Entry
from envpack.bundle.stubs import StubContext, fill, load_template
from envpack.errors import BundleError
from envpack.pypi.bundle import STEP_SH

POSIX_PLATFORMS = ("linux-64", "linux-aarch64", "osx-64", "osx-arm64")
PREFIX_FILES_DIR = "prefix-files"
SETUP_SCRIPT = "setup.sh"
SFX_SUFFIX = "-setup.sh"
CONDARC = """\
# Written by envpack's setup.sh: this environment was installed offline from a bundle, and
# conda or mamba run inside it stay offline instead of trying to reach a channel.
offline: true
auto_update_conda: false
notify_outdated_conda: false
report_errors: false
"""
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Variables activate.sh sets itself (a recipe or package may not override them).
_RESERVED_VARS = {
    "PATH",
    "PS1",
    "CONDA_PREFIX",
    "CONDA_DEFAULT_ENV",
    "CONDA_SHLVL",
    "CONDA_PROMPT_MODIFIER",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def is_posix_platform(platform: str) -> bool:
    return platform in POSIX_PLATFORMS


def sh_quote(value: str) -> str:
    """``value`` as one sh word: single quotes, a ``'`` inside written as ``'\\''``."""
    return "'" + value.replace("'", "'\\''") + "'"


def _dq_text(value: str) -> str:
    """``value`` safe inside double quotes (the name shown in messages)."""
    return re.sub(r'([\\"$`])', r"\\\1", value)


def _posix(rel: str) -> str:
    # core hands StubContext Windows-style names (setup.bat's); names.py forbids "\" inside a
    # name, so turning every "\" back into "/" is exact.
    rel = rel.replace("\\", "/")
    if _CONTROL.search(rel):
        raise BundleError(f"bundle file {rel!r}: control character in name")
    return rel


def _lines(values: list[str]) -> str:
    return sh_quote("\n".join(values))


def _stem(fn: str) -> str:
    for ext in (".conda", ".tar.bz2"):
        if fn.endswith(ext):
            return fn[: -len(ext)]
    return fn


def need_kb(ctx: StubContext) -> int:
    """KiB the install needs: the package copies in the work folder plus the environment
    (micromamba hard-links from its cache on the same file system)."""
    sizes = {_posix(rel): size for rel, size in ctx.files}
    packages = sum(sizes.get(_posix(p), 0) for p in ctx.packages)
    return max(1, math.ceil((ctx.installed_size + packages) / 1024))


def _variables(ctx: StubContext) -> str:
    lines = []
    for name, value in (*ctx.package_variables, *ctx.variables):
        if not _VAR_NAME.fullmatch(name) or name in _RESERVED_VARS:
            raise BundleError(f"environment variable {name!r} cannot be set by activate.sh")
        lines.append(f"    {name}={sh_quote(value)}")
        lines.append(f"    export {name}")
    return "\n".join(lines) if lines else "    :"


def prefix_entries(ctx: StubContext) -> list[Entry]:
    """``prefix-files/activate.sh``, ``uninstall.sh`` and ``condarc``, rendered."""
    values = {
        "NAME": sh_quote(ctx.name),
        "NAME_TEXT": _dq_text(ctx.name),
        "VARIABLES": _variables(ctx),
    }
    return [
        Entry.from_bytes(
            f"{PREFIX_FILES_DIR}/activate.sh", fill(load_template("activate.sh"), values).encode()
        ),
        Entry.from_bytes(
            f"{PREFIX_FILES_DIR}/uninstall.sh",
            fill(load_template("uninstall.sh"), values).encode(),
        ),
        Entry.from_bytes(f"{PREFIX_FILES_DIR}/condarc", CONDARC.encode()),
    ]


# Only a bundle with wheels gets the pip step: without them setup.sh stays byte for byte as it was.
_PIP_STEP = """\
# The bundle's PyPI wheels (wheels.txt), by the environment's own pip: offline, hash-checked,
# the machine's pip settings shut out (pip-step.sh).
say "installing the Python wheels with the environment's pip"
if ! sh "$EP_BUNDLE/pip-step.sh" "$EP_PREFIX" "$EP_BUNDLE" "${EP_LOG:-/dev/null}"; then
    err "installing the Python wheels failed; pip's messages are in the log."
    finish 14
fi
"""


def pip_step_entries(ctx: StubContext) -> list[Entry]:
    """``pip-step.sh`` when the bundle has wheels (setup.sh runs it after micromamba)."""
    if not ctx.wheels:
        return []
    return [Entry.from_bytes(STEP_SH, load_template(STEP_SH).encode("utf-8"))]


def _pip_values(ctx: StubContext) -> dict[str, str]:
    if not ctx.wheels:
        return {"PIP_EXIT_COMMENT": "", "PIP_EXIT_USAGE": "", "PIP_STEP": ""}
    return {
        "PIP_EXIT_COMMENT": "\n#   14  pip could not install the bundle's Python wheels",
        "PIP_EXIT_USAGE": " 14 installing the Python wheels failed;",
        "PIP_STEP": _PIP_STEP,
    }


def _micromamba_env() -> str:
    """mamba_cli.setup_env's variables as sh lines (HOME and the rest are set by setup.sh)."""
    lines = [
        f"    export {ROOT_PREFIX_VAR}={WORK_RELATIVE_VALUES[ROOT_PREFIX_VAR]}",
        f"    export {PKGS_DIRS_VAR}={WORK_RELATIVE_VALUES[PKGS_DIRS_VAR]}",
    ]
    for var in PROXY_VARS:
        lines.append(f"    export {var}={DEAD_PROXY} {var.lower()}={DEAD_PROXY}")
    lines.append(f"    export {NO_PROXY_VAR}='' {NO_PROXY_VAR.lower()}=''")
    return "\n".join(lines)


def _micromamba_args(ctx: StubContext) -> str:
    exe, prefix, explicit = "\0EXE", "\0PREFIX", "\0EXPLICIT"
    argv = install_argv(exe, prefix, explicit, ctx.platform, ctx.shortcuts)
    words = {
        exe: '"$EP_WORK/bin/micromamba"',
        prefix: '"$EP_PREFIX"',
        explicit: '"$EP_BUNDLE/$EP_EXPLICIT"',
    }
    return " ".join(words.get(a, sh_quote(a)) for a in argv)


def _values(ctx: StubContext) -> dict[str, str]:
    if not is_posix_platform(ctx.platform):
        raise BundleError(f"setup.sh is for Linux and macOS bundles, not {ctx.platform}")
    if not ctx.micromamba_files:
        raise BundleError("a setup.sh bundle needs micromamba")
    extra = [(e.arcname, e.size) for e in [*prefix_entries(ctx), *pip_step_entries(ctx)]]
    files = sorted({_posix(rel): size for rel, size in [*ctx.files, *extra]}.items())
    post = []
    for rel in ctx.post_install:
        rel = _posix(rel)
        if not rel.startswith("post-install/") or not rel.endswith(".sh"):
            raise BundleError(
                f"post-install script {rel!r}: a Linux or macOS bundle runs post-install/*.sh"
            )
        post.append(rel)
    if not re.fullmatch(r"[0-9a-f]{64}", ctx.lock_sha256):
        raise BundleError(f"the lock hash {ctx.lock_sha256!r} is not 64 hex digits")
    return {
        "LOCK_SHA256": ctx.lock_sha256,
        "ENVPACK_VERSION": ctx.envpack_version.replace("\n", " "),
        "NAME": sh_quote(ctx.name),
        "PLATFORM": sh_quote(ctx.platform),
        "PACKAGE_COUNT": str(len(ctx.packages)),
        "DEFAULT_PREFIX": sh_quote(ctx.default_prefix),
        "NEED_KB": str(need_kb(ctx)),
        "MICROMAMBA": sh_quote(_posix(ctx.micromamba_files[0])),
        "EXPLICIT_FILE": sh_quote(_posix(ctx.explicit_file)),
        "FILES": _lines([f"{size} {rel}" for rel, size in files]),
        "PACKAGES": _lines([_posix(p) for p in ctx.packages]),
        "META": _lines([_stem(_posix(p).rsplit("/", 1)[-1]) for p in ctx.packages]),
        "POST_INSTALL": _lines(post),
        "CLEARED_VARS": " ".join(CLEARED_VARS),
        "MICROMAMBA_ENV": _micromamba_env(),
        "MICROMAMBA_ARGS": _micromamba_args(ctx),
        **_pip_values(ctx),
    }


def render_setup_sh(ctx: StubContext) -> bytes:
    return fill(load_template("setup.sh"), _values(ctx)).encode("utf-8")


def script_entries(ctx: StubContext) -> list[Entry]:
    """Every script file of a Linux/macOS bundle: what core adds instead of setup.bat."""
    return [
        *prefix_entries(ctx),
        *pip_step_entries(ctx),
        Entry.from_bytes(SETUP_SCRIPT, render_setup_sh(ctx)),
    ]


def render_sfx_header_sh(ctx: StubContext) -> bytes:
    """The shell header of ``NAME-<platform>-setup.sh``; the tar follows it directly.

    It states its own length (``EP_SKIP``): rendered until the number it holds is its size.
    """
    template = load_template("sfx-header.sh")
    values = {
        "ENVPACK_VERSION": ctx.envpack_version.replace("\n", " "),
        "NAME": sh_quote(ctx.name),
    }
    skip = 0
    for _ in range(10):
        data = fill(template, {**values, "SKIP": str(skip)}).encode("utf-8")
        if len(data) == skip:
            return data
        skip = len(data)
    raise BundleError("internal error: the self-extracting header's length does not settle")


def readme_text(name: str, platform: str, packages: int, size: int, prefix: str) -> str:
    """README.txt of a Linux/macOS bundle (LF line ends)."""
    title = f"envpack bundle: {name} ({platform})"
    return f"""{title}
{"=" * len(title)}

This folder installs the conda environment "{name}" ({packages} packages, about
{size // (1 << 20)} MB once installed) on a machine with no network, without administrator
rights, and without touching HOME, shell rc files or PATH.

1. Copy the whole folder (or the .tar, and unpack it with "tar -xf") to the machine.
2. In a shell with no conda environment active, run:

       sh setup.sh                 installs into {prefix}
       sh setup.sh ~/envs/{name}    installs into the folder you name
       sh setup.sh --help          shows every option and the exit codes

3. Afterwards, activate it in a shell with ". <prefix>/activate.sh";
   "sh <prefix>/uninstall.sh" removes it.

envpack.json lists every file of this folder with its SHA-256; sbom.cdx.json lists the packages
and their licences.
"""
