"""Reading an environment file as conda does: lenient specs, default channels, unknown sections.

Pure functions, for :mod:`envpack.resolve.recipe` to call (strictness stays inside ``envpack:``):

- every spelling conda's MatchSpec accepts (``numpy=1.21.5=py39h7a0a035_1`` from ``conda env
  export``, ``jupyterlab 4.5.4``, ``pytorch-lightning=1.9.*``, ``conda-forge::h5py=*=*mpi*``,
  ``numpy >=1.20,<2``) becomes rattler's canonical spelling, which the lock records;
- no ``channels:`` means conda-forge, said in one note;
- an unknown top-level key is a warning (conda ignores it too), ``prefix:`` a note;
- ``pip:`` entries are split off, and ``pip`` is added to the conda specs when absent, as conda
  does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RecipeError

DEFAULT_CHANNELS = ("conda-forge",)
KNOWN_TOP_LEVEL = (
    "name",
    "channels",
    "dependencies",
    "platforms",
    "envpack",
    "prefix",
    "variables",
)
# "numpy >= 1.20, < 2": conda reads the spaces inside a version range as nothing
_RANGE_SPACES = re.compile(r"(?<=[<>=!,])\s+|\s+(?=[,<>!])")
# A bare lower-case package name is its own canonical spelling, leniently and strictly (as
# rattler 0.28 says of every such name tried: tests/test_warm_imports.py holds it to rattler's
# reading): a recipe of bare names is read without importing rattler, about 20 ms of a warm
# build's start-up (issue 18).
_BARE_NAME = re.compile(r"[a-z0-9_.-]+")


def canonical_match_spec(text: str, where: Path | None = None) -> str:
    """``text`` in rattler's canonical MatchSpec spelling, parsed leniently as conda does."""
    spec = " ".join(str(text).split())
    if _BARE_NAME.fullmatch(spec):
        return spec
    import rattler

    head, sep, rest = spec.partition(" ")
    if sep and re.match(r"[<>=!~]", rest):
        spec = head + " " + _RANGE_SPACES.sub("", rest)
    try:
        canonical = str(rattler.MatchSpec(spec, strict=False))
        # The solvers read the lock's specs strictly: what lenient parsing lets through but
        # cannot be written strictly (a build string "*=*=x") is refused here, by its text.
        rattler.MatchSpec(canonical, strict=True)
        return canonical
    except Exception as exc:  # rattler's parse errors share no base class
        prefix = f"{where}: " if where is not None else ""
        raise RecipeError(
            f"{prefix}dependency {text!r} is not a conda match spec ({exc}); "
            "write it as e.g. 'numpy>=1.20,<2' or 'numpy=1.21.5'"
        ) from None


def spec_name(canonical: str) -> str:
    """The package name of a canonical spec (``conda-forge::h5py * *mpi*`` -> ``h5py``)."""
    import rattler

    name = rattler.MatchSpec(canonical, strict=False).name
    return name.normalized if name is not None else canonical.split()[0]


@dataclass
class EnvFile:
    conda_specs: list[str] = field(default_factory=list)
    pip_lines: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # one line each, for the CLI to show


def split_dependencies(deps: Any, where: Path) -> tuple[list[Any], list[Any]]:
    """``dependencies:`` -> (conda entries, pip lines), each as written: the caller checks that
    they are strings (and says which are not). A mapping other than ``pip:`` is an error naming
    it (conda refuses it as well)."""
    if deps is None:
        return [], []
    if not isinstance(deps, list):
        raise RecipeError(f"{where}: 'dependencies' must be a list")
    conda: list[Any] = []
    pip: list[Any] = []
    for item in deps:
        if isinstance(item, Mapping) and set(item) == {"pip"}:
            lines = item["pip"] or []
            if not isinstance(lines, list):
                raise RecipeError(f"{where}: 'pip:' must be a list of requirement strings")
            pip.extend(lines)
        elif isinstance(item, Mapping):
            raise RecipeError(
                f"{where}: dependencies: {sorted(map(str, item))} is not supported; "
                "only a 'pip:' list may appear there"
            )
        else:
            conda.append(item)
    return conda, pip


def _strings(items: list[Any], key: str, where: Path) -> list[str]:
    bad = [repr(x) for x in items if not isinstance(x, str)]
    if bad:
        raise RecipeError(f"{where}: {key!r} entries must be strings; not: {', '.join(bad[:5])}")
    return [x.strip() for x in items if x.strip()]


def with_pip(specs: Sequence[str], pip_lines: Sequence[str]) -> list[str]:
    """conda adds ``pip`` when a ``pip:`` list exists and no spec names pip."""
    out = list(specs)
    if pip_lines and not any(spec_name(s) == "pip" for s in out):
        out.append("pip")
    return out


def read_env_file(data: Mapping[Any, Any], where: Path) -> EnvFile:
    """The conda side of an environment file, leniently: specs canonical, pip lines apart."""
    env = EnvFile()
    for key in data:
        if key not in KNOWN_TOP_LEVEL:
            env.notes.append(f"{where}: unknown section {key!r} ignored (as conda does)")
    if data.get("prefix") is not None:
        env.notes.append(f"{where}: 'prefix: {data['prefix']}' ignored; the bundle asks")
    channels = data.get("channels")
    if channels is None or channels == []:
        env.channels = list(DEFAULT_CHANNELS)
        env.notes.append(f"{where}: no channels: given; using {', '.join(DEFAULT_CHANNELS)}")
    elif isinstance(channels, list) and all(isinstance(c, str) for c in channels):
        env.channels = [c for c in channels if c != "nodefaults"]
    else:
        raise RecipeError(f"{where}: 'channels' must be a list of channel names")
    raw, pip_lines = split_dependencies(data.get("dependencies"), where)
    env.pip_lines = _strings(pip_lines, "pip", where)
    specs = [canonical_match_spec(s, where) for s in _strings(raw, "dependencies", where)]
    env.conda_specs = with_pip(specs, env.pip_lines)
    return env
