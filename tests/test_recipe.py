"""Recipes: plain environment.yml files, envpack's keys, and the shipped examples."""

from __future__ import annotations

from pathlib import Path

import pytest

from envpack.channels import redact, resolve_channel, strip_token
from envpack.errors import RecipeError
from envpack.platforms import virtual_packages
from envpack.resolve.recipe import load_recipe

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
    # canonical match specs (what the lock records), whatever the spelling
    assert recipe.specs == ("python 3.11.*", "numpy >=1.26")
    assert recipe.notes == (
        f"{env}: 'prefix:' ignored; the bundle's setup.bat asks for the folder",
    )
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


BASE = "channels: [conda-forge]\ndependencies: [x]\n"


def recipe_error(tmp_path: Path, text: str, name: str = "r.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message[len(f"{path}: ") :]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            BASE + "envpack:\n  shortcuts: 'no'\n",
            "'envpack.shortcuts' must be true or false (unquoted), found a string ('no')",
        ),
        (
            BASE + "envpack:\n  shortcuts: 1\n",
            "'envpack.shortcuts' must be true or false (unquoted), found a number (1)",
        ),
        (
            "name: [1, 2]\n" + BASE,
            "'name' must be a string (a safe file name such as 'python312'), found a list ([1, 2])",
        ),
        (
            BASE + "envpack:\n  shortcuts: no\n",
            "'envpack.shortcuts' must be true or false (unquoted), found a string ('no')",
        ),
        (
            BASE + "envpack:\n  micromamba: 2.10\n",
            "'envpack.micromamba' must be a version spec string such as '>=2.7', "
            "found a number (2.10)",
        ),
        (
            "name: true\n" + BASE,
            "'name' must be a string (a safe file name such as 'python312'), found a boolean (true)",
        ),
        (
            BASE + "variables: {A: [1, 2]}\n",
            "'variables.A' must be a string or a number (quote it: 'A: \"...\"'), "
            "found a list ([1, 2])",
        ),
        (
            BASE + "variables:\n  A:\n",
            "'variables.A' must be a string or a number (quote it: 'A: \"...\"'), "
            "found nothing (null)",
        ),
        (
            BASE + "variables: [A]\n",
            "'variables' must be a mapping of names to strings or numbers, found a list (['A'])",
        ),
        (
            BASE + "variables: {'A B': x}\n",
            "variable name 'A B' must be letters, digits and '_' (not starting with a digit)",
        ),
        (BASE + "variables: {1: x}\n", "'variables' has the key 1; keys must be plain names"),
        (
            BASE + 'variables: {A: "x\\ny"}\n',
            "'variables.A' holds a control character: 'x\\ny'",
        ),
        (
            "channels: conda-forge\ndependencies: [x]\n",
            "'channels' must be a list of strings, found a string ('conda-forge')",
        ),
        (
            "channels: [conda-forge]\ndependencies: [x, 3, true]\n",
            "'dependencies' must be a list of strings without control characters; "
            "2 entries are not: a number (3), a boolean (true)",
        ),
        (
            BASE + "platforms: [[win-64]]\n",
            "'platforms' must be a list of strings without control characters; "
            "1 entry is not: a list (['win-64'])",
        ),
        (BASE + "envpack: [solver]\n", "'envpack' must be a mapping, found a list (['solver'])"),
        (
            BASE + "envpack:\n  solver: true\n",
            "'envpack.solver' must be one of rattler, micromamba, found a boolean (true)",
        ),
        (
            BASE + "envpack:\n  solver: mamba\n",
            "'envpack.solver' is 'mamba'; use one of rattler, micromamba",
        ),
        (
            BASE + "envpack:\n  format: 7\n",
            "'envpack.format' must be one of zip, 7z, found a number (7)",
        ),
        (
            BASE + "envpack:\n  micromamba: 2.7\n",
            "'envpack.micromamba' must be a version spec string such as '>=2.7', found a number (2.7)",
        ),
        (
            BASE + "envpack:\n  prefix: [C:/envs]\n",
            "'envpack.prefix' must be a folder path string, found a list (['C:/envs'])",
        ),
        (
            BASE + "envpack:\n  split: true\n",
            "'envpack.split' must be a size such as 700M, 4000M, 1G or fat32, found a boolean (true)",
        ),
        (
            BASE + "envpack:\n  virtual_packages: {__win: [10]}\n",
            "'envpack.virtual_packages.__win' must be a string or a number "
            "(quote it: '__win: \"...\"'), found a list ([10])",
        ),
        (
            BASE + "envpack:\n  virtual_packages: __win\n",
            "'envpack.virtual_packages' must be a mapping of names to strings, numbers or null, "
            "found a string ('__win')",
        ),
        (
            BASE + "envpack:\n  post_install: check.bat\n",
            "'envpack.post_install' must be a list of strings, found a string ('check.bat')",
        ),
        (
            BASE + "envpack:\n  post_install: [/etc/check.bat]\n",
            "post-install script '/etc/check.bat' must be a path relative to the recipe's folder",
        ),
        (
            BASE + "envpack:\n  post_install: ['C:\\check.bat']\n",
            "post-install script 'C:\\\\check.bat' must be a path relative to the recipe's folder",
        ),
        (BASE + "prefix: 7\n", "'prefix' must be a string, found a number (7)"),
        (
            "- a\n- b\n",
            "a recipe is a YAML mapping (name, channels, dependencies), found a list (['a', 'b'])",
        ),
        ("[" * 5000 + "]" * 5000, "malformed YAML: nested too deeply"),
        (
            "name: !!int abc\n" + BASE,
            "malformed YAML: a value its tag cannot hold "
            "(invalid literal for int() with base 10: 'abc')",
        ),
        ("name: !!bool maybe\n" + BASE, "malformed YAML: a value its tag cannot hold ('maybe')"),
    ],
)
def test_field_types_are_checked(tmp_path: Path, text: str, expected: str) -> None:
    assert recipe_error(tmp_path, text) == expected


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../evil", "it holds / (path separators and cmd.exe/Windows special characters)"),
        ("a\\\\b", "it holds \\ (path separators and cmd.exe/Windows special characters)"),
        ("..", "it starts with a dot"),
        (".hidden", "it starts with a dot"),
        ("C:x", "it holds : (path separators and cmd.exe/Windows special characters)"),
        ("a&b|c", "it holds & | (path separators and cmd.exe/Windows special characters)"),
        ("CON", "it is a reserved Windows device name"),
        ("nul.txt", "it is a reserved Windows device name"),
        ("Com1", "it is a reserved Windows device name"),
        ("env.", "it starts or ends with a space, or ends with a dot (Windows drops them)"),
        ("a\\tb", "it holds a control character"),
        ("''", "it is empty"),
        ("x" * 101, "it is 101 characters long (at most 100)"),
    ],
)
def test_name_must_be_a_safe_file_name(tmp_path: Path, name: str, problem: str) -> None:
    message = recipe_error(
        tmp_path, f'name: "{name}"\n' + BASE if "\\" in name else f"name: {name}\n" + BASE
    )
    assert (
        " (from 'name') is not a valid folder name: " + problem + "; use letters, digits" in message
    )
    assert message.startswith("environment name ")


def test_name_from_an_unsafe_file_name_is_refused(tmp_path: Path) -> None:
    message = recipe_error(tmp_path, BASE, name="con.yaml")
    assert message == (
        "environment name 'con' (from the file name 'con.yaml') is not a valid folder name: "
        "it is a reserved Windows device name; use letters, digits, '-', '_' and '.'"
    )


def test_good_values_of_every_field(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "go.bat").write_bytes(b"@echo ok\r\n")
    path = tmp_path / "r.yaml"
    path.write_text(
        "name: my-env_1.2\nchannels: [conda-forge]\ndependencies: [python=3.12]\n"
        "variables: {A: 'x & y', N: 10, F: 1.5}\n"
        "envpack:\n  shortcuts: true\n  solver: micromamba\n  format: 7z\n  split: 700M\n"
        "  micromamba: '>=2.7'\n  prefix: '%LOCALAPPDATA%\\envs\\x'\n"
        "  virtual_packages: {__win: 10.0, __cuda: '12.4', __archspec: null}\n"
        "  post_install: ['scripts\\go.bat']\n"
    )
    recipe = load_recipe(path)
    assert recipe.name == "my-env_1.2"
    assert recipe.variables == {"A": "x & y", "N": "10", "F": "1.5"}
    assert recipe.shortcuts is True
    assert (recipe.solver, recipe.format, recipe.split) == ("micromamba", "7z", "700M")
    assert recipe.micromamba_spec == ">=2.7"
    assert recipe.prefix == "%LOCALAPPDATA%\\envs\\x"
    assert recipe.virtual_packages == {"__win": "10.0", "__cuda": "12.4", "__archspec": None}
    assert recipe.post_install == ((tmp_path / "scripts" / "go.bat").resolve(),)


def test_shortcuts_false_and_absent(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(BASE + "envpack:\n  shortcuts: false\n")
    assert load_recipe(path).shortcuts is False
    path.write_text(BASE)
    assert load_recipe(path).shortcuts is False


def test_post_install_outside_the_recipe_folder(tmp_path: Path) -> None:
    (tmp_path / "outside.bat").write_bytes(b"@echo hi\r\n")
    (tmp_path / "proj").mkdir()
    message = recipe_error(tmp_path / "proj", BASE + "envpack:\n  post_install: [../outside.bat]\n")
    assert message == (
        f"post-install script '../outside.bat' is outside the recipe's folder "
        f"{(tmp_path / 'proj').resolve()}; keep scripts beside the recipe"
    )


def test_post_install_symlink_leaving_the_folder(tmp_path: Path) -> None:
    (tmp_path / "outside.bat").write_bytes(b"@echo hi\r\n")
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "link.bat").symlink_to(tmp_path / "outside.bat")
    message = recipe_error(tmp_path / "proj", BASE + "envpack:\n  post_install: [link.bat]\n")
    assert message.startswith("post-install script 'link.bat' is outside the recipe's folder ")


def test_twenty_thousand_bad_dependencies_give_one_short_line(tmp_path: Path) -> None:
    deps = ", ".join(str(i) for i in range(20_000))
    message = recipe_error(tmp_path, f"channels: [conda-forge]\ndependencies: [{deps}]\n")
    assert message == (
        "'dependencies' must be a list of strings without control characters; 20,000 entries "
        "are not: a number (0), a number (1), a number (2), a number (3), a number (4), "
        "a number (5), a number (6), a number (7), a number (8), a number (9) … and 19,990 more"
    )


def test_twenty_thousand_good_dependencies_load(tmp_path: Path) -> None:
    deps = "".join(f"  - pkg{i}\n" for i in range(20_000))
    path = tmp_path / "r.yaml"
    path.write_text(f"channels: [conda-forge]\ndependencies:\n{deps}")
    assert len(load_recipe(path).specs) == 20_000


def test_huge_values_are_shown_short(tmp_path: Path) -> None:
    message = recipe_error(tmp_path, "name: [" + "x" * 1_000_000 + "]\n" + BASE)
    assert len(message) < 200
    assert message.startswith("'name' must be a string (a safe file name such as 'python312'), ")
    message = recipe_error(tmp_path, "name: " + "y" * 1_000_000 + "\n" + BASE)
    assert message.endswith(
        "(from 'name') is not a valid folder name: it is 1,000,000 characters long (at most 100); "
        "use letters, digits, '-', '_' and '.'"
    )
    assert len(message) < 300


def test_oversized_recipe_file(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as fh:
        fh.truncate(17 << 20)
    with pytest.raises(RecipeError, match=r"big.yaml: 17,825,792 bytes is too big for a recipe"):
        load_recipe(path)


def test_unknown_top_level_keys_are_notes(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("name: x\nchanels: [conda-forge]\n1: x\ndependencies: [a]\n")
    recipe = load_recipe(path)
    assert recipe.notes == (
        f"{path}: unknown key 'chanels' in the recipe; did you mean 'channels'?; ignored, as "
        "conda does",
        f"{path}: unknown key 1 in the recipe; valid keys: name, channels, dependencies, "
        "platforms, envpack, prefix, variables; ignored, as conda does",
        f"{path}: no channels given; using conda-forge",
    )
    assert [c.given for c in recipe.channels] == ["conda-forge"]


@pytest.mark.parametrize(
    ("written", "name"),
    [
        ("off", "off"),
        ("no", "no"),
        ("Yes", "Yes"),
        ("2024", "2024"),
        ("1.10", "1.10"),
        ("'007'", "007"),
        ("1:20", "1:20"),
    ],
)
def test_names_yaml_11_would_change(tmp_path: Path, written: str, name: str) -> None:
    """YAML 1.2 as conda reads it: ``off`` is a word and 1.10 keeps its zero (not false, 1.1)."""
    path = tmp_path / "r.yaml"
    path.write_text(f"name: {written}\n" + BASE)
    if ":" in name:
        with pytest.raises(RecipeError, match="it holds :"):
            load_recipe(path)
    else:
        assert load_recipe(path).name == name


def test_numbers_keep_their_written_text(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        BASE + "variables: {V: 1.10, M: 0755, H: 0x1F, T: 1:20, ON: on, E: 1e3}\n"
        "envpack:\n  virtual_packages: {__cuda: 12.10}\n  split: 700\n"
    )
    with pytest.raises(RecipeError, match="split size 700 is under the 1 MiB minimum"):
        load_recipe(path)
    path.write_text(path.read_text().replace("split: 700", "split: 1048576"))
    recipe = load_recipe(path)
    assert recipe.variables == {
        "V": "1.10",
        "M": "0755",
        "H": "0x1F",
        "T": "1:20",
        "ON": "on",
        "E": "1e3",
    }
    assert recipe.virtual_packages == {"__cuda": "12.10"}
    assert recipe.split == "1048576"
