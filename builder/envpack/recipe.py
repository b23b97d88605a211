"""Reading a recipe: a conda ``environment.yml`` plus envpack's own keys.

A plain ``environment.yml`` builds as it is. envpack adds the top-level ``platforms`` list (as
conda-lock reads it) and an ``envpack:`` block. Unknown keys are errors, not warnings: a typo in
an offline installer's recipe is found on the connected machine or never.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .channels import Channel, resolve_channel, strip_token
from .errors import RecipeError
from .platforms import check_platform

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
)
SOLVERS = ("rattler", "micromamba")
FORMATS = ("zip", "7z")
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
    variables: Mapping[str, str] = field(default_factory=dict)

    def solve_inputs(self, platform: str) -> dict[str, Any]:
        """Everything that changes what a solve returns, credential-free: the lock's key."""
        from .platforms import virtual_packages

        return {
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

    def input_hash(self, platform: str) -> str:
        blob = json.dumps(self.solve_inputs(platform), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


def _unknown_key(key: str, valid: tuple[str, ...], where: str, path: Path) -> RecipeError:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(valid)}"
    return RecipeError(f"{path}: unknown key {key!r} in {where}{hint}")


def load_yaml(path: Path) -> Any:
    try:
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
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise RecipeError(f"{path}:{where}: malformed YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: malformed YAML: {exc}") from None


def _str_list(value: Any, key: str, path: Path) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecipeError(f"{path}: {key!r} must be a list")
    out = []
    for item in value:
        if isinstance(item, dict) and "pip" in item and key == "dependencies":
            raise RecipeError(
                f"{path}: 'pip:' dependencies are not supported yet; move them to conda "
                "packages (most are on conda-forge) or install them after setup"
            )
        if not isinstance(item, (str, int, float)) or isinstance(item, bool):
            raise RecipeError(f"{path}: every entry of {key!r} must be a string, got {item!r}")
        out.append(str(item).strip())
    return out


def load_recipe(path: Path, *, platform: str | None = None, solver: str | None = None) -> Recipe:
    """Parse and validate ``path``; ``platform``/``solver`` override the recipe's own."""
    data = load_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a YAML mapping (name, channels, dependencies)")
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise _unknown_key(str(key), TOP_LEVEL_KEYS, "the recipe", path)
    extra = data.get("envpack") or {}
    if not isinstance(extra, dict):
        raise RecipeError(f"{path}: 'envpack' must be a mapping")
    for key in extra:
        if key not in ENVPACK_KEYS:
            raise _unknown_key(str(key), ENVPACK_KEYS, "the 'envpack' block", path)

    name = str(data.get("name") or path.stem)
    if not name or any(ch in name for ch in '\\/:*?"<>|%!^&') or name.startswith("."):
        raise RecipeError(f"{path}: environment name {name!r} is not a valid folder name")
    channel_names = _str_list(data.get("channels"), "channels", path)
    if not channel_names:
        raise RecipeError(f"{path}: no channels; add e.g. 'channels: [conda-forge]'")
    try:
        channels = tuple(resolve_channel(c, path.parent.resolve()) for c in channel_names)
    except RecipeError as exc:
        raise RecipeError(f"{path}: {exc}") from None
    specs = tuple(s for s in _str_list(data.get("dependencies"), "dependencies", path) if s)
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

    chosen_solver = solver or str(extra.get("solver") or "rattler")
    if chosen_solver not in SOLVERS:
        raise RecipeError(f"{path}: unknown solver {chosen_solver!r}; use one of {SOLVERS}")
    fmt = str(extra.get("format") or "zip")
    if fmt not in FORMATS:
        raise RecipeError(f"{path}: unknown bundle format {fmt!r}; use one of {FORMATS}")

    if extra.get("split"):
        from .formats import parse_size

        try:
            parse_size(str(extra["split"]))
        except RecipeError as exc:
            raise RecipeError(f"{path}: envpack.split: {exc}") from None
    vps = extra.get("virtual_packages") or {}
    if not isinstance(vps, dict):
        raise RecipeError(f"{path}: 'envpack.virtual_packages' must be a mapping")
    post = []
    for script in _str_list(extra.get("post_install"), "post_install", path):
        script_path = (path.parent / script).resolve()
        if not script_path.is_file():
            raise RecipeError(f"{path}: post-install script {script!r} not found")
        if script_path.suffix.lower() not in {".bat", ".cmd"}:
            raise RecipeError(f"{path}: post-install script {script!r} must be a .bat or .cmd")
        post.append(script_path)
    variables = data.get("variables") or {}
    if not isinstance(variables, dict):
        raise RecipeError(f"{path}: 'variables' must be a mapping")

    return Recipe(
        path=path,
        name=name,
        channels=channels,
        specs=specs,
        platforms=tuple(platforms),
        micromamba_spec=str(extra.get("micromamba") or DEFAULT_MICROMAMBA_SPEC),
        prefix=str(extra["prefix"]) if extra.get("prefix") else None,
        post_install=tuple(post),
        solver=chosen_solver,
        virtual_packages={str(k): (None if v is None else str(v)) for k, v in vps.items()},
        shortcuts=bool(extra.get("shortcuts", False)),
        format=fmt,
        split=str(extra["split"]) if extra.get("split") else None,
        variables={str(k): str(v) for k, v in variables.items()},
    )
