"""Reading a recipe: a conda ``environment.yml`` plus envpack's own keys.

A plain ``environment.yml`` builds as it is, read as conda reads it: every match-spec spelling
conda accepts (``conda env export``'s ``name=version=build`` included) is written canonically,
no ``channels:`` means conda-forge, unknown top-level sections and ``prefix:`` are ignored with a
note, and the ``pip:`` list is kept for :mod:`envpack.pypi`. envpack adds the top-level
``platforms`` list (as conda-lock reads it) and an ``envpack:`` block, where unknown keys are
errors: a typo in an offline installer's own settings is found on the connected machine or never.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from envpack.channels import Channel, resolve_channel, strip_token
from envpack.errors import RecipeError, first_line
from envpack.limits import parse_size
from envpack.platforms import check_platform, virtual_packages
from envpack.pypi.envfile import (
    DEFAULT_CHANNELS,
    canonical_match_spec,
    split_dependencies,
    with_pip,
)

TOP_LEVEL_KEYS = ("name", "channels", "dependencies", "platforms", "envpack", "prefix", "variables")
ENVPACK_KEYS = (
    "micromamba",
    "prefix",
    "post_install",
    "solver",
    "virtual_packages",
    "shortcuts",
    "format",
    "split",
    "sfx",
)
SOLVERS = ("rattler", "micromamba")
# The containers a recipe may choose (archive.write.FORMATS less tar, which follows from a
# Linux/macOS target, never from a recipe).
RECIPE_FORMATS = ("zip", "7z")
# 2.6.x ignores the flat package cache on offline explicit installs (mamba#4250, fixed by #4290 in
# 2.7.0); 1.5.2+ is where the Windows build became usable for explicit files at all.
DEFAULT_MICROMAMBA_SPEC = ">=1.5.2,!=2.6.*"


@dataclass(frozen=True)
class Recipe:
    path: Path
    name: str
    channels: tuple[Channel, ...]
    specs: tuple[str, ...]
    platforms: tuple[str, ...]
    micromamba_spec: str = DEFAULT_MICROMAMBA_SPEC
    prefix: str | None = None
    post_install: tuple[Path, ...] = ()
    solver: str = "rattler"
    virtual_packages: Mapping[str, str | None] = field(default_factory=dict)
    shortcuts: bool = False
    format: str = "zip"
    split: str | None = None
    sfx: bool = False  # also write the self-extracting -setup.bat / -setup.sh (as --sfx does)
    variables: Mapping[str, str] = field(default_factory=dict)
    pip: tuple[str, ...] = ()  # the pip: list's lines, as written
    notes: tuple[str, ...] = ()  # one line each: what was ignored or defaulted

    def solve_inputs(self, platform: str) -> dict[str, Any]:
        """Everything that changes what a solve returns, credential-free: the lock's key."""
        inputs: dict[str, Any] = {
            # A local channel as written: moving the project with its channel folder keeps
            # the lock valid (the fetch finds the files in the channel's new place).
            "channels": [c.given if c.is_local else strip_token(c.url) for c in self.channels],
            "specs": sorted(self.specs),
            "platform": platform,
            "virtual_packages": [
                vp.as_spec() for vp in virtual_packages(platform, self.virtual_packages)
            ],
            "micromamba": self.micromamba_spec,
        }
        if self.pip:  # only then: recipes without pip: keep their lock's input hash
            inputs["pip"] = list(self.pip)
        return inputs

    def input_hash(self, platform: str) -> str:
        blob = json.dumps(self.solve_inputs(platform), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


# A recipe is a few KB; past this it is a mistake or hostile, and YAML would hold it all in memory.
MAX_RECIPE_BYTES = 16 << 20
MAX_SHOWN = 10  # list items an error names before "... and N more"
MAX_NAME = 100  # the name ends up in folder and file names under Windows' 260-character limit
_SHOW = reprlib.Repr()
_SHOW.maxstring = 60
_SHOW.maxother = 60
_SHOW.maxlist = _SHOW.maxtuple = _SHOW.maxdict = _SHOW.maxset = 4
_SHOW.maxlevel = 2
# Names Windows reserves for devices, with or without an extension (CON.txt is still CON).
_RESERVED = re.compile(r"(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)(\..*)?", re.I)
# cmd.exe metacharacters and what Windows forbids in a file name: the name becomes both.
_NAME_FORBIDDEN = set('\\/:*?"<>|%!^&')
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DRIVE = re.compile(r"[A-Za-z]:")


class _Int(int):
    """A YAML integer that remembers how it was written (``0755``, ``0x1F``)."""

    text: str


class _Float(float):
    """A YAML float that remembers how it was written (``1.10`` is not ``1.1`` as a version)."""

    text: str


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    out = _Int(int(text, 0) if text[:2].lower() in ("0o", "0x") else int(text))
    out.text = text
    return out


def _construct_float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> float:
    text = str(loader.construct_scalar(node))
    out = _Float(text.lower().replace(".inf", "inf").replace(".nan", "nan"))
    out.text = text
    return out


class _Loader(yaml.SafeLoader):
    """YAML 1.2's core schema, as conda reads environment.yml: ``no``, ``off``, ``yes`` and ``on``
    stay words and ``1:20`` stays text (YAML 1.1 made them false, true and 80), so ``name: off``
    is the environment "off"; only true/false are booleans. Numbers keep their written text."""


_BOOL, _INTEGER, _FLOAT, _TIME = (
    f"tag:yaml.org,2002:{t}" for t in ("bool", "int", "float", "timestamp")
)
# YAML 1.2 has no implicit timestamps either: ``name: 2024-01-31`` is a name, not a date.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _INTEGER, _FLOAT, _TIME)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), None)
_Loader.add_implicit_resolver(
    _INTEGER, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)
_Loader.add_constructor(_INTEGER, _construct_int)
_Loader.add_constructor(_FLOAT, _construct_float)


def _number_text(value: int | float) -> str:
    """A number as the recipe wrote it (``str()`` would turn ``1.10`` into ``1.1``)."""
    return getattr(value, "text", None) or str(value)


def show(value: Any) -> str:
    """A short, one-line ``repr`` of anything a recipe holds (a value may be megabytes long)."""
    return " ".join(_SHOW.repr(value).split())


def summarise_items(items: list[str], limit: int = MAX_SHOWN) -> str:
    """``a, b, c`` or ``a, b, c … and 19,990 more``: an error line stays one short line."""
    shown = ", ".join(items[:limit])
    rest = len(items) - limit
    return f"{shown} … and {rest:,} more" if rest > 0 else shown


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({show(_number_text(value))[1:-1]})"
    kinds = ((str, "a string"), ((int, float), "a number"), (list, "a list"), (dict, "a mapping"))
    kind = next((k for t, k in kinds if isinstance(value, t)), f"a YAML {type(value).__name__}")
    return f"{kind} ({show(value)})"


def _wrong(path: Path, key: str, value: Any, expected: str) -> RecipeError:
    return RecipeError(f"{path}: {key!r} must be {expected}, found {_type_name(value)}")


def _unknown_key(key: Any, valid: tuple[str, ...], where: str, path: Path) -> RecipeError:
    text = key if isinstance(key, str) else str(key)
    close = difflib.get_close_matches(text[:100], valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(valid)}"
    return RecipeError(f"{path}: unknown key {show(key)} in {where}{hint}")


def load_yaml(path: Path) -> Any:
    try:
        size = path.stat().st_size
        if size > MAX_RECIPE_BYTES:
            raise RecipeError(
                f"{path}: {size:,} bytes is too big for a recipe (at most {MAX_RECIPE_BYTES:,})"
            )
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise RecipeError(f"{path}: is a folder, not a recipe file") from None
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader: no Python tags
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise RecipeError(f"{path}:{where}: malformed YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: malformed YAML: {first_line(exc)}") from None
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        # PyYAML's constructors let these through for values their tag cannot hold
        # (``!!int abc``, ``!!bool maybe``, ``!!timestamp x``, a 5,000-digit number).
        reason = first_line(exc)[:120]
        raise RecipeError(
            f"{path}: malformed YAML: a value its tag cannot hold ({reason})"
        ) from None
    except RecursionError:
        # PyYAML composes recursively: thousands of nested [[[...]]] exhaust the stack.
        raise RecipeError(f"{path}: malformed YAML: nested too deeply") from None


def _control(text: str) -> bool:
    return any(ord(c) < 32 or c == "\x7f" for c in text)


def _string(value: Any, key: str, path: Path, expected: str = "a string") -> str:
    if not isinstance(value, str):
        raise _wrong(path, key, value, expected)
    if _control(value):
        raise RecipeError(f"{path}: {key!r} holds a control character: {show(value)}")
    return value


def _str_list(value: Any, key: str, path: Path) -> list[str]:
    """A list of strings; every entry that is not one is named (a few, then a count)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise _wrong(path, key, value, "a list of strings")
    out = []
    bad: list[str] = []
    for item in value:
        if not isinstance(item, str) or _control(item):
            bad.append(_type_name(item) if not isinstance(item, str) else show(item))
            continue
        out.append(item.strip())
    if bad:
        raise RecipeError(
            f"{path}: {key!r} must be a list of strings without control characters; "
            f"{len(bad):,} {'entry is' if len(bad) == 1 else 'entries are'} not: "
            f"{summarise_items(bad)}"
        )
    return out


def _mapping(value: Any, key: str, path: Path, *, none_ok: bool) -> dict[str, str | None]:
    """A mapping of string keys to strings or numbers (and null when ``none_ok``)."""
    if value is None:
        return {}
    values = "strings, numbers or null" if none_ok else "strings or numbers"
    if not isinstance(value, dict):
        raise _wrong(path, key, value, f"a mapping of names to {values}")
    out: dict[str, str | None] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not k or _control(k):
            raise RecipeError(f"{path}: {key!r} has the key {show(k)}; keys must be plain names")
        where = f"{key}.{k}"
        if v is None and none_ok:
            out[k] = None
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = _number_text(v)
        elif isinstance(v, str):
            out[k] = _string(v, where, path)
        else:
            raise _wrong(path, where, v, f"a string or a number (quote it: '{k}: \"...\"')")
    return out


def _bool(value: Any, key: str, path: Path) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _wrong(path, key, value, "true or false (unquoted)")
    return value


def _choice(value: Any, key: str, path: Path, choices: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    text = _string(value, key, path, f"one of {', '.join(choices)}")
    if text not in choices:
        raise RecipeError(f"{path}: {key!r} is {show(text)}; use one of {', '.join(choices)}")
    return text


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be an environment's file and folder name, or ``None``."""
    if not name:
        return "it is empty"
    if len(name) > MAX_NAME:
        return f"it is {len(name):,} characters long (at most {MAX_NAME})"
    if _control(name):
        return "it holds a control character"
    bad = sorted(set(name) & _NAME_FORBIDDEN)
    if bad:
        return f"it holds {' '.join(bad)} (path separators and cmd.exe/Windows special characters)"
    if name.startswith("."):
        return "it starts with a dot"
    if name != name.rstrip(" .") or name != name.lstrip(" "):
        return "it starts or ends with a space, or ends with a dot (Windows drops them)"
    if _RESERVED.fullmatch(name):
        return "it is a reserved Windows device name"
    return None


def _name(data: dict[Any, Any], path: Path) -> str:
    given = data.get("name")
    if given is None:
        name, origin = path.stem, f"the file name {path.name!r}"
    elif isinstance(given, str):
        name, origin = given, "'name'"
    elif isinstance(given, (int, float)) and not isinstance(given, bool):
        name, origin = _number_text(given), "'name'"
    else:
        raise _wrong(path, "name", given, "a string (a safe file name such as 'python312')")
    problem = name_problem(name)
    if problem:
        raise RecipeError(
            f"{path}: environment name {show(name)} (from {origin}) is not a valid folder name: "
            f"{problem}; use letters, digits, '-', '_' and '.'"
        )
    return name


# A Windows bundle runs the .bat/.cmd scripts, a Linux or macOS bundle the .sh ones: a recipe
# for both kinds of platform lists both (pipeline.bundle_settings picks per platform).
POST_INSTALL_SUFFIXES = {".bat": "win", ".cmd": "win", ".sh": "posix"}


def _post_install(value: Any, path: Path) -> list[Path]:
    folder = path.parent.resolve()
    out = []
    for script in _str_list(value, "envpack.post_install", path):
        rel = script.replace("\\", "/")
        if not rel or rel.startswith("/") or _DRIVE.match(rel):
            raise RecipeError(
                f"{path}: post-install script {show(script)} must be a path relative to the "
                "recipe's folder"
            )
        script_path = (folder / rel).resolve()
        if not script_path.is_relative_to(folder):
            raise RecipeError(
                f"{path}: post-install script {show(script)} is outside the recipe's folder "
                f"{folder}; keep scripts beside the recipe"
            )
        if not script_path.is_file():
            raise RecipeError(f"{path}: post-install script {show(script)} not found")
        if script_path.suffix.lower() not in POST_INSTALL_SUFFIXES:
            raise RecipeError(
                f"{path}: post-install script {show(script)} must be a .bat or .cmd "
                "(Windows bundles) or a .sh (Linux and macOS bundles)"
            )
        out.append(script_path)
    return out


def _split(value: Any, path: Path) -> str | None:
    if value is None or value is False:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _wrong(path, "envpack.split", value, "a size such as 700M, 4000M, 1G or fat32")
    text = value if isinstance(value, str) else _number_text(value)
    try:
        parse_size(text[:100])
    except RecipeError as exc:
        raise RecipeError(f"{path}: envpack.split: {exc}") from None
    return text


def _variables(value: Any, path: Path) -> dict[str, str]:
    out = {}
    for key, v in _mapping(value, "variables", path, none_ok=False).items():
        if not _VAR_NAME.fullmatch(key):
            raise RecipeError(
                f"{path}: variable name {show(key)} must be letters, digits and '_' "
                "(not starting with a digit)"
            )
        out[key] = v or ""
    return out


def load_recipe(path: Path, *, platform: str | None = None, solver: str | None = None) -> Recipe:
    """Parse and validate ``path``; ``platform``/``solver`` override the recipe's own.

    Every field's type is checked (YAML turns ``no`` into false and ``1.10`` into 1.1, so a
    silent ``str()`` would build something else than what was meant); each error is one line
    naming the field, what was found and what was expected.
    """
    data = load_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError(
            f"{path}: a recipe is a YAML mapping (name, channels, dependencies), "
            f"found {_type_name(data)}"
        )
    # conda warns about and ignores unknown sections (a conda-lock file has "platform:"); the
    # note keeps the "did you mean" of the former error.
    notes = [
        f"{_unknown_key(key, TOP_LEVEL_KEYS, 'the recipe', path)}; ignored, as conda does"
        for key in data
        if key not in TOP_LEVEL_KEYS
    ]
    extra = data.get("envpack")
    if extra is None:
        extra = {}
    if not isinstance(extra, dict):
        raise _wrong(path, "envpack", extra, "a mapping")
    for key in extra:
        if key not in ENVPACK_KEYS:
            raise _unknown_key(key, ENVPACK_KEYS, "the 'envpack' block", path)

    name = _name(data, path)
    if data.get("prefix") is not None:
        # conda's own install path; envpack ignores it but it must still be a path
        _string(data["prefix"], "prefix", path)
        notes.append(f"{path}: 'prefix:' ignored; the bundle's setup.bat asks for the folder")
    channel_names = _str_list(data.get("channels"), "channels", path)
    channel_names = [c for c in channel_names if c != "nodefaults"]
    if not channel_names:
        channel_names = list(DEFAULT_CHANNELS)
        notes.append(f"{path}: no channels given; using {', '.join(DEFAULT_CHANNELS)}")
    try:
        channels = tuple(resolve_channel(c, path.parent.resolve()) for c in channel_names)
    except RecipeError as exc:
        raise RecipeError(f"{path}: {exc}") from None
    conda_deps, pip_lines = split_dependencies(data.get("dependencies"), path)
    written = [s for s in _str_list(conda_deps, "dependencies", path) if s]
    pip_lines = _str_list(pip_lines, "dependencies.pip", path)
    specs = tuple(with_pip([canonical_match_spec(s, path) for s in written], pip_lines))
    if not specs:
        raise RecipeError(f"{path}: no dependencies to install")

    platforms = _str_list(data.get("platforms"), "platforms", path) or ["win-64"]
    if platform is not None:
        platforms = [platform]
    for p in platforms:
        try:
            check_platform(p)
        except RecipeError as exc:
            raise RecipeError(f"{path}: {exc}") from None

    chosen_solver = (
        solver or _choice(extra.get("solver"), "envpack.solver", path, SOLVERS) or "rattler"
    )
    if chosen_solver not in SOLVERS:
        raise RecipeError(f"{path}: unknown solver {show(chosen_solver)}; use one of {SOLVERS}")
    fmt = _choice(extra.get("format"), "envpack.format", path, RECIPE_FORMATS) or "zip"
    micromamba = extra.get("micromamba")
    if micromamba is not None:
        _string(micromamba, "envpack.micromamba", path, "a version spec string such as '>=2.7'")
    prefix = extra.get("prefix")
    if prefix is not None:
        _string(prefix, "envpack.prefix", path, "a folder path string")

    return Recipe(
        path=path,
        name=name,
        channels=channels,
        specs=specs,
        platforms=tuple(platforms),
        micromamba_spec=micromamba.strip() if micromamba else DEFAULT_MICROMAMBA_SPEC,
        prefix=prefix or None,
        post_install=tuple(_post_install(extra.get("post_install"), path)),
        solver=chosen_solver,
        virtual_packages=_mapping(
            extra.get("virtual_packages"), "envpack.virtual_packages", path, none_ok=True
        ),
        shortcuts=_bool(extra.get("shortcuts"), "envpack.shortcuts", path),
        format=fmt,
        split=_split(extra.get("split"), path),
        sfx=_bool(extra.get("sfx"), "envpack.sfx", path),
        variables=_variables(data.get("variables"), path),
        pip=tuple(pip_lines),
        notes=tuple(notes),
    )
