"""Rendering the cmd.exe templates in ``stubs/`` into a bundle's batch files.

Templates are CRLF text with ``@@NAME@@`` placeholders. Values are escaped for the place they go
(see :func:`batch_quote`); the bundle writer only hands over a :class:`StubContext`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .errors import BundleError


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
    shortcuts: bool = False
    variables: tuple[tuple[str, str], ...] = field(default=())
    envpack_version: str = ""


def stubs_dir() -> Path:
    """``envpack/stubs`` in a wheel; the repository's ``stubs/`` in an editable install."""
    packaged = resources.files("envpack").joinpath("stubs")
    if packaged.is_dir():
        return Path(str(packaged))
    repo = Path(__file__).resolve().parents[2] / "stubs"
    if repo.is_dir():
        return repo
    raise BundleError("envpack's batch templates (stubs/) are missing from this installation")


def load_template(name: str) -> str:
    path = stubs_dir() / name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BundleError(f"cannot read template {path}: {exc.strerror}") from None
    return data.decode("utf-8")


def to_crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def batch_quote(value: str) -> str:
    """Escape a value for ``set "VAR=value"`` with delayed expansion off: only ``%`` is special."""
    return value.replace("%", "%%")


def render(template: str, values: dict[str, str]) -> bytes:
    text = template
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    if "@@" in text:
        start = text.index("@@")
        raise BundleError(f"template placeholder left unrendered: {text[start : start + 40]!r}")
    return to_crlf(text)


def render_setup(ctx: StubContext) -> bytes:
    checks = "\n".join(
        f'if not exist "%BUNDLE%{rel}" set "MISSING={batch_quote(rel)}"' for rel, _ in ctx.files
    )
    values = {
        "NAME": ctx.name,
        "PLATFORM": ctx.platform,
        "DEFAULT_PREFIX": ctx.default_prefix,
        "EXPLICIT_FILE": ctx.explicit_file,
        "CHECK_FILES": checks,
        "NO_SHORTCUTS": "" if ctx.shortcuts else "--no-shortcuts",
        "ENVPACK_VERSION": ctx.envpack_version,
    }
    return render(load_template("setup.bat"), values)


def render_sfx_header(ctx: StubContext) -> bytes:
    return render(load_template("sfx-header.bat"), {"NAME": ctx.name})
