"""What setup.bat runs, run by the real micromamba (a Linux build of 2.8.1, see ../shared/tools).

The install is setup.bat's own step, read from the bundle's rendered setup.bat
(:func:`wine.setup_step`: its work folder, variables, current folder and command line, with the
Windows paths turned into this machine's). The builder's own command lines (the dry-run solve)
come from :mod:`envpack.bundle.mamba_cli` and are put through the real parser.

What these tests record for the stub (measured with 2.8.1):

- An intact bundle installs from the pre-filled pkgs folder alone: the channel URLs in env.txt
  (``http://127.0.0.1:<port>/...`` or ``file:///<builder path>/...``) are never read.
- A package whose copy fails its md5 is fetched again from its env.txt URL, despite
  ``--offline``; when that URL answers with the right file, the install succeeds. Where it does
  not answer, micromamba exits 1 and leaves a prefix holding only ``.mambarc`` (written by
  ``--platform``) and ``conda-meta/history``: setup.bat must treat such a prefix as failed.
- micromamba >= 2.6 extracts each package into ``pkgs/<scheme>/<host or path>/<subdir>/<dist>/``,
  derived from the package's env.txt URL (``:`` and ``\\`` become ``_``), not into ``pkgs/<dist>``:
  the path length the stub checks includes that part.
- micromamba registers every prefix in ``$HOME/.conda/environments.txt`` (``%USERPROFILE%`` on
  Windows), even when the install fails (1.5-2.8 have no option against it); setup.bat points the
  home at its work folder for that run, so the user's home is untouched.
- With setup.bat's dead proxy, a damaged package cannot be fetched again from an http(s) URL.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from envpack.bundle import mamba_cli
from wine import run_step, setup_step

from conftest import run_cli, write_recipe
from http_server import ChannelServer

pytestmark = pytest.mark.micromamba

# A space, "&", "(x86)" and a non-ASCII letter: what Windows paths throw at an installer.
AWKWARD = "Bundles & Co (x86) é"
PLATFORM = "win-64"
NOT_EXPECTED = "The following argument was not expected"
TIMEOUT = 120


# --------------------------------------------------------------------------- helpers


def micromamba_version(mm: Path) -> tuple[int, ...]:
    out = subprocess.run(
        [str(mm), "--version"], capture_output=True, text=True, timeout=TIMEOUT, check=True
    ).stdout
    found = re.search(r"(\d+)\.(\d+)\.(\d+)", out)
    assert found, out
    return tuple(int(g) for g in found.groups())


def build_bundle(recipe: Path, out: Path, cache: Path) -> Path:
    exe = out.parent / "stand-in-micromamba.exe"
    exe.write_bytes(b"MZ stand-in")
    result = run_cli(
        "build", recipe, "-o", out, "--micromamba-exe", exe, "--cache-dir", cache, "--no-sfx", "-q"
    )
    assert result.exit_code == 0, result.output
    (bundle,) = out.glob(f"*-{PLATFORM}.zip")
    return bundle


def extract(bundle_zip: Path, dest: Path) -> Path:
    """Unzip as a user would, into ``dest`` (awkward name); return the bundle's top folder."""
    with zipfile.ZipFile(bundle_zip) as zf:
        zf.extractall(dest)
        (top,) = {name.split("/", 1)[0] for name in zf.namelist()}
    return dest / top


def locked_dists(bundle: Path) -> set[str]:
    manifest = json.loads((bundle / "envpack.json").read_text(encoding="utf-8"))
    return {f"{p['name']}-{p['version']}-{p['build']}" for p in manifest["lock"]["packages"]}


def user_env(home: Path) -> dict[str, str]:
    """A user's environment for whom ``home`` is the home folder."""
    return {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "HOME": str(home)}


def install_like_setup(
    mm: Path,
    bundle: Path,
    prefix: Path,
    home: Path,
    damage: str | None = None,
    shortcuts: bool = False,
    user: dict[str, str] | None = None,
    **env_overrides: str | None,
) -> subprocess.CompletedProcess[str]:
    """setup.bat's micromamba step (fresh work folder, packages copied in, its variables, its
    command line) run natively; ``env_overrides`` then change its environment (None: remove)."""
    step = setup_step(bundle, prefix, mm, user if user is not None else user_env(home))
    if damage is not None:
        flip_one_byte(step.work / "pkgs" / damage)
    for key, value in env_overrides.items():
        step.env = {k: v for k, v in step.env.items() if k.upper() != key.upper()}
        if value is not None:
            step.env[key] = value
    if shortcuts:
        step.argv.remove("--no-shortcuts")
    return run_step(step, timeout=TIMEOUT)


def flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def conda_meta(prefix: Path) -> set[str]:
    return {p.stem for p in (prefix / "conda-meta").glob("*.json")}


def tree(path: Path) -> set[str]:
    return {p.relative_to(path).as_posix() for p in path.rglob("*")}


def assert_accepted(proc: subprocess.CompletedProcess[str]) -> None:
    assert NOT_EXPECTED not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stdout + proc.stderr


def tool_package(bundle: Path) -> str:
    (fn,) = [p.name for p in (bundle / "channel" / PLATFORM).glob("tool-*")]
    return fn


@pytest.fixture(scope="module")
def local_bundle(std_channel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A bundle from a local-folder channel (awkward name), the folder renamed once built.

    env.txt then holds ``file://`` URLs that lead nowhere: an install that reads them fails.
    """
    base = tmp_path_factory.mktemp("local")
    channel = base / f"channel {AWKWARD}"
    shutil.copytree(std_channel, channel)
    recipe = write_recipe(base / "demo.yaml", [str(channel)], ["tool", "docs"])
    bundle_zip = build_bundle(recipe, base / "dist", base / "cache")
    channel.rename(base / "channel-moved-away")
    yield bundle_zip


# --------------------------------------------------------------------------- the install


def test_install_from_local_channel_bundle(
    local_bundle: Path, real_micromamba: Path, tmp_path: Path
) -> None:
    bundle = extract(local_bundle, tmp_path / AWKWARD)
    env_txt = (bundle / "env.txt").read_text(encoding="utf-8")
    assert "file:///" in env_txt and "%20" in env_txt and "%C3%A9" in env_txt
    home = tmp_path / "home"
    home.mkdir()
    prefix = tmp_path / "my env"
    proc = install_like_setup(real_micromamba, bundle, prefix, home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert conda_meta(prefix) == locked_dists(bundle)
    assert (prefix / "Library" / "share" / "tool" / "README.txt").read_text() == "tool 2.0\n"
    assert (prefix / ".mambarc").read_text() == f"platform: {PLATFORM}"
    # micromamba's registration of the environment lands in the work folder, not the home.
    assert tree(home) == set()
    work = Path(f"{prefix}.envpack-work")
    environments = work / "home" / ".conda" / "environments.txt"
    assert environments.read_text().split("\n")[0] == str(prefix)
    assert tree(work / "root") == set()
    extracted = {p.parent.parent.name for p in (work / "pkgs").rglob("info/index.json")}
    assert extracted == locked_dists(bundle)


def test_install_from_http_bundle_with_server_gone(
    channel_copy: Path, real_micromamba: Path, tmp_path: Path
) -> None:
    with ChannelServer(channel_copy) as server:
        recipe = write_recipe(tmp_path / "demo.yaml", [server.url], ["tool", "docs"])
        bundle_zip = build_bundle(recipe, tmp_path / "dist", tmp_path / "cache")
        port = server.server_address[1]
    bundle = extract(bundle_zip, tmp_path / AWKWARD)
    assert f"http://127.0.0.1:{port}/win-64/" in (bundle / "env.txt").read_text(encoding="utf-8")
    home = tmp_path / "home"
    home.mkdir()
    prefix = tmp_path / "my env"
    proc = install_like_setup(real_micromamba, bundle, prefix, home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert conda_meta(prefix) == locked_dists(bundle)
    pkgs = Path(f"{prefix}.envpack-work") / "pkgs"
    tool = next(d for d in locked_dists(bundle) if d.startswith("tool-"))
    if micromamba_version(real_micromamba) >= (2, 6, 0):
        # mamba#4163: the extraction folder is derived from the URL.
        assert (pkgs / "http" / f"127.0.0.1_{port}" / PLATFORM / tool / "info").is_dir()
    else:
        assert (pkgs / tool / "info").is_dir()


@pytest.mark.parametrize("channel_kind", ["local", "http"])
def test_flipped_byte_fails_and_leaves_a_stub_prefix(
    channel_kind: str,
    local_bundle: Path,
    channel_copy: Path,
    real_micromamba: Path,
    tmp_path: Path,
) -> None:
    if channel_kind == "local":
        bundle_zip = local_bundle
    else:
        with ChannelServer(channel_copy) as server:
            recipe = write_recipe(tmp_path / "demo.yaml", [server.url], ["tool", "docs"])
            bundle_zip = build_bundle(recipe, tmp_path / "dist", tmp_path / "cache")
    bundle = extract(bundle_zip, tmp_path / AWKWARD)
    home = tmp_path / "home"
    home.mkdir()
    prefix = tmp_path / "my env"
    damaged = tool_package(bundle)
    proc = install_like_setup(real_micromamba, bundle, prefix, home, damage=damaged)
    # Exit 1, or (seen once in CI) a SIGSEGV of 2.8.1 after its last retry: setup.bat treats
    # every non-zero status alike (exit 10), so both are the failure it needs.
    assert proc.returncode in (1, -11), proc.stdout + proc.stderr
    # micromamba tried the URL (not there any more) and gave up: what setup.bat then finds.
    assert re.search(rf"Download error \(\d+\).*{re.escape(damaged)}", proc.stderr), proc.stderr
    assert tree(prefix) == {".mambarc", "conda-meta", "conda-meta/history"}
    assert conda_meta(prefix) == set()
    assert tree(home) == set()


def test_damaged_package_is_never_fetched_again(
    channel_copy: Path, real_micromamba: Path, tmp_path: Path
) -> None:
    """micromamba fetches a package that fails its md5 from its env.txt URL despite --offline;
    setup.bat's dead proxy makes that fail, even where the URL answers."""
    unguarded = {
        v: None
        for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
        for v in (var, var.lower())
    }
    with ChannelServer(channel_copy) as server:
        recipe = write_recipe(tmp_path / "demo.yaml", [server.url], ["tool", "docs"])
        bundle_zip = build_bundle(recipe, tmp_path / "dist", tmp_path / "cache")
        bundle = extract(bundle_zip, tmp_path / AWKWARD)
        home = tmp_path / "home"
        home.mkdir()
        damaged = tool_package(bundle)
        before = dict(server.hits)
        intact = install_like_setup(real_micromamba, bundle, tmp_path / "intact env", home)
        assert intact.returncode == 0, intact.stderr
        assert dict(server.hits) == before  # an intact bundle reads no URL
        guarded = install_like_setup(
            real_micromamba, bundle, tmp_path / "my env", home, damage=damaged
        )
        assert guarded.returncode in (1, -11), guarded.stdout + guarded.stderr
        assert dict(server.hits) == before
        # Without the guard the damaged bundle "installs", from the network:
        open_door = install_like_setup(
            real_micromamba, bundle, tmp_path / "other env", home, damage=damaged, **unguarded
        )
        assert open_door.returncode == 0, open_door.stdout + open_door.stderr
        assert server.hits[damaged] == before.get(damaged, 0) + 1
    assert conda_meta(tmp_path / "other env") == locked_dists(bundle)


def test_each_install_variable_is_needed(
    local_bundle: Path, real_micromamba: Path, tmp_path: Path
) -> None:
    """Without PKGS_DIRS_VAR the pre-filled folder is not used (so the install fails here);
    without ROOT_PREFIX_VAR micromamba falls back to folders in the user's home."""
    bundle = extract(local_bundle, tmp_path / AWKWARD)
    home = tmp_path / "home"
    home.mkdir()
    no_pkgs = install_like_setup(
        real_micromamba, bundle, tmp_path / "a env", home, **{"CONDA_PKGS_DIRS": None}
    )
    assert no_pkgs.returncode in (1, -11), no_pkgs.stdout
    assert "Download error" in no_pkgs.stderr
    # micromamba's default root prefix (2.x: ~/.mamba; 1.x: ~/micromamba) holds a pkgs folder,
    # in the home setup.bat gives it
    work_home = tmp_path / "a env.envpack-work" / "home"
    assert any(p.name == "pkgs" for p in work_home.glob("*/pkgs")), tree(work_home)
    assert tree(home) == set()
    no_root = install_like_setup(
        real_micromamba, bundle, tmp_path / "b env", home, **{"MAMBA_ROOT_PREFIX": None}
    )
    assert no_root.returncode == 0, no_root.stderr
    assert conda_meta(tmp_path / "b env") == locked_dists(bundle)


# --------------------------------------------------------------------------- every flag


def test_every_flag_accepted_by_the_real_parser(
    local_bundle: Path, std_channel: Path, real_micromamba: Path, tmp_path: Path
) -> None:
    """The builder's solve (mamba_cli) and setup.bat's own create line, each through 2.8.1's own
    parser and a real run: the real binary is the judge of the flags, not envpack's lists."""
    mm = str(real_micromamba)
    home = tmp_path / "home"
    home.mkdir()
    pkgs = tmp_path / "pkgs"
    pkgs.mkdir()
    env = {
        **user_env(home),
        "MAMBA_ROOT_PREFIX": str(tmp_path / "root"),
        "CONDA_PKGS_DIRS": str(pkgs),
        "CONDA_OVERRIDE_WIN": "10.0.19045",
    }

    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )

    prefix = str(tmp_path / "dry prefix")
    channel = [std_channel.as_uri()]
    for offline in (False, True):
        argv = mamba_cli.dry_run_argv(mm, prefix, channel, ["tool", "docs"], PLATFORM, offline)
        assert ("--offline" in argv) == offline
        proc = run(argv)
        assert_accepted(proc)
        assert json.loads(proc.stdout)["success"] is True
        assert not Path(prefix).exists()
    # The same flags in a real create from a channel, then setup.bat's create from env.txt.
    real_argv = [a for a in argv if a not in ("--json", "--dry-run")]
    assert_accepted(run(real_argv))
    assert {"tool", "docs"} <= {d.split("-")[0] for d in conda_meta(Path(prefix))}
    bundle = extract(local_bundle, tmp_path / AWKWARD)
    for shortcuts in (False, True):
        target = tmp_path / f"env {shortcuts}"
        step = setup_step(bundle, target, real_micromamba, user_env(home))
        assert "--offline" in step.argv and "--no-shortcuts" in step.argv
        if shortcuts:
            step.argv.remove("--no-shortcuts")
        assert_accepted(run_step(replace(step, argv=[*step.argv, "--dry-run"]), timeout=TIMEOUT))
        assert not target.exists()
        assert_accepted(run_step(step, timeout=TIMEOUT))
        assert conda_meta(target) == locked_dists(bundle)


def test_an_unknown_flag_is_refused(real_micromamba: Path, tmp_path: Path) -> None:
    """The check above can fail: this is what the parser says to a flag it does not know."""
    argv = [str(real_micromamba), "create", "-p", str(tmp_path / "p"), "--yes", "--offline"]
    proc = subprocess.run(
        [*argv, "--platform", PLATFORM, "-f", "x.txt", "--no-such-flag"],
        env={**user_env(tmp_path), "MAMBA_ROOT_PREFIX": str(tmp_path / "r")},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert proc.returncode != 0
    assert NOT_EXPECTED in proc.stdout + proc.stderr
    assert "--no-such-flag" in proc.stdout + proc.stderr
