"""Three versions of one small environment, and the helpers the update tests share.

v1: app 1.0, lib 1.0, gone 1.0, keep 1.0
v2: app 1.1 (changed), lib 1.0, keep 1.0, newp 1.0 (added); gone removed
v3: app 1.1, lib 2.0 (changed), keep 1.0, newp 1.0

Bundles are built with a stand-in micromamba.exe file (the same in every version, so updates do
not carry it); the real micromamba runs natively in the tests that need it.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from channel_factory import Pkg, make_channel
from conftest import run_cli, write_recipe

PLATFORM = "win-64"

VERSIONS = {
    "v1": ["app 1.0.*", "lib 1.0.*", "gone", "keep"],
    "v2": ["app 1.1.*", "lib 1.0.*", "keep", "newp"],
    "v3": ["app 1.1.*", "lib 2.0.*", "keep", "newp"],
}


def packages() -> list[Pkg]:
    return [
        Pkg("app", "1.0", depends=["lib"]),
        Pkg("app", "1.1", depends=["lib", "newp"]),
        Pkg("lib", "1.0"),
        Pkg("lib", "2.0"),
        Pkg("gone", "1.0"),
        Pkg("keep", "1.0", random_bytes=3000),
        Pkg("newp", "1.0", subdir="noarch"),
        Pkg("extra", "1.0"),  # installed by hand to make a prefix drift
    ]


@dataclass
class Versions:
    base: Path
    channel: Path
    exe: Path
    cache: Path
    recipes: dict[str, Path] = field(default_factory=dict)
    bundles: dict[str, Path] = field(default_factory=dict)


def make_versions(base: Path) -> Versions:
    channel = make_channel(base / "channel", packages())
    exe = base / "stand-in-micromamba.exe"
    exe.write_bytes(b"MZ stand-in micromamba")
    v = Versions(base, channel, exe, base / "cache")
    for name, deps in VERSIONS.items():
        folder = base / name
        folder.mkdir()
        # the same environment name in every version: an update keeps the environment
        v.recipes[name] = write_recipe(folder / "demo.yaml", [str(channel)], deps)
    return v


def build_full(v: Versions, version: str) -> Path:
    out = v.base / f"dist-{version}"
    result = run_cli(
        "build",
        v.recipes[version],
        "-o",
        out,
        "--micromamba-exe",
        v.exe,
        "--cache-dir",
        v.cache,
        "--no-sfx",
        "-q",
    )
    assert result.exit_code == 0, result.output
    (bundle,) = out.glob(f"*-{PLATFORM}.zip")
    v.bundles[version] = bundle
    return bundle


def build_update(v: Versions, new: str, old: Path, out: Path) -> list[Path]:
    """envpack's update build through its Python face (the CLI option is not wired in yet)."""
    from envpack.options import BuildOptions, LockOptions
    from envpack.update.build import build_update as build

    options = BuildOptions(
        lock=LockOptions(recipe=v.recipes[new], micromamba_exe=v.exe, cache_dir=v.cache),
        output_dir=out,
        sfx=False,
    )
    return build(options, old).outputs


def extract(bundle_zip: Path, dest: Path) -> Path:
    with zipfile.ZipFile(bundle_zip) as zf:
        zf.extractall(dest)
        (top,) = {name.split("/", 1)[0] for name in zf.namelist()}
    return dest / top


def manifest(folder: Path) -> dict[str, object]:
    data = json.loads((folder / "envpack.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def lock_dists(folder: Path) -> set[str]:
    lock = manifest(folder)["lock"]
    assert isinstance(lock, dict)
    return {f"{p['name']}-{p['version']}-{p['build']}" for p in lock["packages"]}


def conda_meta(prefix: Path) -> set[str]:
    return {p.stem for p in (prefix / "conda-meta").glob("*.json")}


def copy_tree(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


STEM = re.compile(r"^demo-win-64-update-([0-9a-f]{8})-to-([0-9a-f]{8})\.zip$")
