"""Property: the recipe loader either returns a sound Recipe or raises one EnvpackError.

Inputs are random YAML-ish text, random YAML structures over the recipe's own keys, and valid
recipes with damaged bytes or hostile values. Any other exception is a bug (the CLI would show a
traceback); so is a loaded recipe whose name could not be a file name.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from envpack.errors import EnvpackError
from envpack.resolve.recipe import Recipe, load_recipe
from property_mutations import (
    bounded,
    hostile_text,
    mutated_bytes,
    peak_memory,
    plain_file_name,
    tree,
)

VALID = b"""\
name: demo
channels:
  - conda-forge
  - ./local
platforms: [win-64, linux-64]
dependencies:
  - python=3.12
  - numpy >=1.26
variables:
  GREETING: "hello & goodbye"
  N: 3
envpack:
  micromamba: ">=2.7"
  prefix: "%LOCALAPPDATA%\\\\envs\\\\demo"
  post_install: [scripts/check.bat]
  solver: rattler
  virtual_packages: {__win: "10.0.19045", __cuda: null}
  shortcuts: false
  format: zip
  split: 700M
"""

KEYS = ("name", "channels", "dependencies", "platforms", "envpack", "prefix", "variables")
ENVPACK = (
    "micromamba",
    "prefix",
    "post_install",
    "solver",
    "virtual_packages",
    "shortcuts",
    "format",
    "split",
)
YAML_CHARS = st.sampled_from(
    [
        *list("abc-_.:[]{},#&*!|>'\"%@`?\\/ \n\t-0123456789"),
        "name: ",
        "channels:",
        "dependencies:",
        "envpack:",
        "\n  - ",
        "yes",
        "no",
        "null",
        "~",
        "&a ",
        "*a",
        "!!python/object:os.system",
        "!!binary",
        "!!int ",
        "!!float ",
        "!!bool ",
        "!!timestamp ",
        "!!set ",
        "2020-13-45",
        "9" * 5000,
        "<<: ",
        "---\n",
        "...\n",
        "\x00",
        "\ufeff",
        "é",
    ]
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True),
    hostile_text,
    st.sampled_from(
        [
            "conda-forge",
            "python=3.12",
            "win-64",
            "rattler",
            "zip",
            "7z",
            "700M",
            "scripts/check.bat",
            "no",
            "yes",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(ENVPACK + KEYS), hostile_text), inner, max_size=4
        ),
    ),
    max_leaves=12,
)
structures = st.dictionaries(
    st.one_of(st.sampled_from(KEYS), st.sampled_from(KEYS), hostile_text),
    st.one_of(values, st.dictionaries(st.sampled_from(ENVPACK), values, max_size=5)),
    max_size=8,
)


def check(text: bytes) -> None:
    """Load ``text`` as a recipe in a fresh folder: a Recipe or an EnvpackError, no writes."""
    with tempfile.TemporaryDirectory(prefix="envpack-prop-") as tmp:
        folder = Path(tmp)
        (folder / "local" / "win-64").mkdir(parents=True)
        (folder / "scripts").mkdir()
        (folder / "scripts" / "check.bat").write_bytes(b"@echo ok\r\n")
        path = folder / "recipe.yaml"
        path.write_bytes(text)
        before = tree(folder)
        try:
            with peak_memory(precise=False):
                recipe = load_recipe(path)
        except EnvpackError as exc:
            assert str(exc).strip(), "an error without a message"
        else:
            assert isinstance(recipe, Recipe)
            assert plain_file_name(recipe.name), recipe.name
            assert all(p.is_relative_to(folder.resolve()) for p in recipe.post_install)
            assert isinstance(recipe.shortcuts, bool)
            assert all(isinstance(v, str) for v in recipe.variables.values())
        assert tree(folder) == before


def test_the_valid_recipe_loads() -> None:
    check(VALID)  # the mutations below start from a recipe that does load


@bounded(120)
@given(st.lists(YAML_CHARS, max_size=60).map("".join))
def test_random_yaml_text(text: str) -> None:
    check(text.encode("utf-8", "surrogatepass"))


@bounded(150)
@given(structures)
def test_random_recipe_structures(data: dict[Any, Any]) -> None:
    check(yaml.safe_dump(data, allow_unicode=True).encode("utf-8", "surrogatepass"))


@bounded(120)
@given(mutated_bytes(VALID))
def test_damaged_valid_recipe(text: bytes) -> None:
    check(text)


@bounded(150)
@given(
    st.sampled_from(
        [
            ("name",),
            ("channels",),
            ("dependencies",),
            ("platforms",),
            ("variables",),
            ("variables", "GREETING"),
            ("envpack",),
            ("envpack", "micromamba"),
            ("envpack", "prefix"),
            ("envpack", "post_install"),
            ("envpack", "solver"),
            ("envpack", "virtual_packages"),
            ("envpack", "virtual_packages", "__win"),
            ("envpack", "shortcuts"),
            ("envpack", "format"),
            ("envpack", "split"),
            ("prefix",),
        ]
    ),
    values,
)
def test_valid_recipe_with_one_hostile_value(where: tuple[str, ...], value: Any) -> None:
    data = yaml.safe_load(VALID)
    target = data
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    check(yaml.safe_dump(data, allow_unicode=True).encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize(
    "text",
    [
        b"a: &a [x, x, x, x]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\nname: *c\n",
        b"name: !!python/object/apply:os.system ['touch /tmp/pwned']\n",
        b"[" * 3000 + b"]" * 3000,
        b"{" * 3000 + b"}" * 3000,
        b"\xff\xfe\x00n\x00a",
        b"name: \xc3\x28\n",
        b"name: !!int abc\n",
        b"name: !!float abc\n",
        b"name: !!int 0x\n",
        b"name: !!bool maybe\n",
        b"name: !!timestamp abc\n",
        b"name: 2020-13-45\n",
        b"name: " + b"9" * 5000 + b"\n",
    ],
    ids=[
        "aliases",
        "python-tag",
        "deep-list",
        "deep-map",
        "utf16",
        "bad-utf8",
        "int-tag",
        "float-tag",
        "hex-tag",
        "bool-tag",
        "timestamp-tag",
        "bad-date",
        "huge-int",
    ],
)
def test_known_hostile_recipes(text: bytes) -> None:
    check(text)
