"""Recipes: plain environment.yml files, envpack's keys, and the shipped examples."""

from __future__ import annotations

from pathlib import Path

import pytest

from envpack.channels import redact, resolve_channel, strip_token
from envpack.errors import RecipeError
from envpack.platforms import virtual_packages
from envpack.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", sorted((ROOT / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_recipes_load(path: Path) -> None:
    recipe = load_recipe(path)
    assert recipe.platforms == ("win-64",)
    assert recipe.specs


def test_python312_bootstraps_conda_and_mamba() -> None:
    recipe = load_recipe(ROOT / "recipes" / "python312.yaml")
    names = {s.split("=")[0].split()[0] for s in recipe.specs}
    assert {"python", "conda", "mamba"} <= names
    assert recipe.channels[0].url == "https://conda.anaconda.org/conda-forge"
    assert recipe.post_install[0].name == "check-python.bat"
    assert "2.6" in recipe.micromamba_spec


def test_plain_environment_yml(tmp_path: Path) -> None:
    env = tmp_path / "environment.yml"
    env.write_text(
        "name: science\nchannels:\n  - conda-forge\n  - defaults\ndependencies:\n"
        "  - python=3.11\n  - numpy>=1.26\nprefix: /home/me/envs/science\nvariables:\n  FOO: bar\n"
    )
    recipe = load_recipe(env)
    assert recipe.name == "science"
    assert recipe.platforms == ("win-64",)
    assert recipe.specs == ("python=3.11", "numpy>=1.26")
    assert recipe.variables == {"FOO": "bar"}
    assert recipe.solver == "rattler"


def test_platform_and_solver_overrides(tmp_path: Path) -> None:
    env = tmp_path / "r.yaml"
    env.write_text("channels: [conda-forge]\ndependencies: [x]\nplatforms: [win-64, linux-64]\n")
    assert load_recipe(env).platforms == ("win-64", "linux-64")
    assert load_recipe(env, platform="osx-arm64", solver="micromamba").platforms == ("osx-arm64",)
    assert load_recipe(env).name == "r"


def test_input_hash_tracks_what_changes_a_solve(tmp_path: Path) -> None:
    env = tmp_path / "r.yaml"
    env.write_text("channels: [conda-forge]\ndependencies: [x, y]\n")
    first = load_recipe(env).input_hash("win-64")
    env.write_text("# a comment\nchannels: [conda-forge]\ndependencies: [y, x]\n")
    assert load_recipe(env).input_hash("win-64") == first  # order and comments do not matter
    env.write_text(
        "channels: [conda-forge]\ndependencies: [x, y]\nenvpack:\n  micromamba: '>=2.7'\n"
    )
    assert load_recipe(env).input_hash("win-64") != first
    env.write_text(
        "channels: [conda-forge]\ndependencies: [x, y]\nenvpack:\n  virtual_packages: {__win: '6.1'}\n"
    )
    assert load_recipe(env).input_hash("win-64") != first


def test_virtual_packages() -> None:
    vps = {v.name: v for v in virtual_packages("win-64", {})}
    assert set(vps) == {"__win", "__archspec"}
    assert vps["__win"].version == "10.0.19045"
    assert "__cuda" not in vps
    vps = {v.name: v for v in virtual_packages("win-64", {"__cuda": "12.4", "__win": None})}
    assert set(vps) == {"__cuda", "__archspec"}
    with pytest.raises(RecipeError):
        virtual_packages("win-64", {"cuda": "12"})


def test_channels(tmp_path: Path) -> None:
    assert resolve_channel("conda-forge", tmp_path).url == "https://conda.anaconda.org/conda-forge"
    assert resolve_channel("https://x.org/c/", tmp_path).url == "https://x.org/c"
    (tmp_path / "mirror").mkdir()
    local = resolve_channel("./mirror", tmp_path)
    assert local.is_local and local.local_path == tmp_path / "mirror"
    with pytest.raises(RecipeError, match="unsupported URL scheme 'ftp'"):
        resolve_channel("ftp://x/y", tmp_path)


@pytest.mark.parametrize(
    ("url", "public", "stripped"),
    [
        ("https://u:p@h.org/c", "https://h.org/c", "https://h.org/c"),
        (
            "https://h.org/t/abc-123/c/win-64/x.conda",
            "https://h.org/t/<TOKEN>/c/win-64/x.conda",
            "https://h.org/c/win-64/x.conda",
        ),
        ("https://h.org/c/t/abc", "https://h.org/c/t/<TOKEN>", "https://h.org/c"),
        (
            "http://u:p@127.0.0.1:8080/t/tk/c",
            "http://127.0.0.1:8080/t/<TOKEN>/c",
            "http://127.0.0.1:8080/c",
        ),
    ],
)
def test_credentials_are_redacted(url: str, public: str, stripped: str) -> None:
    assert redact(url) == public
    assert strip_token(url) == stripped
