"""Small real conda packages and channels, made at test time.

Packages are real ``.conda`` (or ``.tar.bz2``) archives written by conda-package-handling, with an
``info/index.json`` and ``info/paths.json`` like conda-build writes; channels are indexed by
rattler's indexer, so every test runs the same repodata code paths as a real channel.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_DATA = SHARED / "data"
REAL_MICROMAMBA = SHARED / "tools" / "micromamba-linux" / "micromamba"


@dataclass
class Pkg:
    name: str
    version: str = "1.0"
    build: str = "0"
    build_number: int = 0
    subdir: str = "win-64"
    depends: list[str] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    license: str = "MIT"
    fmt: str = ".conda"
    random_bytes: int = 0  # incompressible payload, to make a package of a given size
    timestamp: int = 1700000000000

    @property
    def fn(self) -> str:
        return f"{self.name}-{self.version}-{self.build}{self.fmt}"


def build_package(pkg: Pkg, out_dir: Path) -> Path:
    """Write ``pkg`` as a real conda package into ``out_dir``; return its path."""
    import tempfile

    from conda_package_handling import api

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = dict(pkg.files)
        if not files and not pkg.random_bytes:
            files[f"Library/share/{pkg.name}/README.txt"] = f"{pkg.name} {pkg.version}\n".encode()
        if pkg.random_bytes:
            rnd = random.Random(f"{pkg.name}-{pkg.version}")
            files[f"Library/share/{pkg.name}/payload.bin"] = rnd.randbytes(pkg.random_bytes)
        paths = []
        for rel, data in sorted(files.items()):
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            paths.append(
                {
                    "_path": rel,
                    "path_type": "hardlink",
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "size_in_bytes": len(data),
                }
            )
        info = root / "info"
        info.mkdir()
        noarch = pkg.subdir == "noarch"
        index = {
            "name": pkg.name,
            "version": pkg.version,
            "build": pkg.build,
            "build_number": pkg.build_number,
            "depends": pkg.depends,
            "license": pkg.license,
            "subdir": pkg.subdir,
            "timestamp": pkg.timestamp,
        }
        if noarch:
            index["noarch"] = "generic"
        elif pkg.subdir.startswith("win"):
            index.update(platform="win", arch="x86_64")
        (info / "index.json").write_text(json.dumps(index, indent=2))
        (info / "paths.json").write_text(json.dumps({"paths": paths, "paths_version": 1}))
        (info / "files").write_text("".join(p["_path"] + "\n" for p in paths))
        file_list = [str(p.relative_to(root)) for p in sorted(root.rglob("*")) if p.is_file()]
        # zstd level 1: test packages are built often and mostly incompressible anyway.
        kw = {"compression_level": 1} if pkg.fmt == ".conda" else {}
        api.create(str(root), file_list, pkg.fn, str(out_dir), **kw)
    return out_dir / pkg.fn


def index_channel(channel: Path) -> None:
    import asyncio

    from rattler.index import index_fs

    for sub in ("noarch",):
        (channel / sub).mkdir(parents=True, exist_ok=True)
    asyncio.run(index_fs(channel, write_zst=False, write_shards=False, force=True))


def make_channel(channel: Path, pkgs: list[Pkg]) -> Path:
    for pkg in pkgs:
        build_package(pkg, channel / pkg.subdir)
    index_channel(channel)
    return channel


def fake_exe(label: str) -> dict[str, bytes]:
    """Bytes standing in for micromamba.exe and the VC++ runtime, for the package tests."""
    return {"Library/bin/micromamba.exe": b"MZ fake micromamba " + label.encode()}


def standard_packages() -> list[Pkg]:
    """A small closed graph with a Windows shape: python-ish app, runtime, noarch, micromamba."""
    return [
        Pkg("ucrt", "10.0.22621.0", "h57928b3_0", files={"Library/bin/ucrtbase.dll": b"ucrt"}),
        Pkg(
            "vc14_runtime",
            "14.38.33130",
            "h82b7239_18",
            depends=["ucrt >=10.0.20348.0"],
            files={
                "vcruntime140.dll": b"vcruntime140",
                "vcruntime140_1.dll": b"vcruntime140_1",
                "msvcp140.dll": b"msvcp140",
                "Library/bin/vcruntime140.dll": b"vcruntime140",
            },
        ),
        Pkg("vc", "14.3", "hcf57466_18", depends=["vc14_runtime >=14.38.33130"]),
        Pkg("libzlib", "1.3.1", "h2466b09_2", depends=["vc >=14.2,<15", "ucrt"]),
        Pkg("tool", "2.0", "h1234_0", depends=["libzlib >=1.3", "vc >=14.2,<15"]),
        Pkg("tool", "1.0", "h1234_0", depends=["libzlib >=1.3"]),
        Pkg("docs", "0.1", "pyh0", subdir="noarch", depends=["tool"]),
        Pkg(
            "micromamba",
            "2.8.1",
            "0",
            depends=["vc >=14.3", "ucrt"],
            files=fake_exe("2.8.1"),
        ),
        Pkg("micromamba", "2.6.0", "0", files=fake_exe("2.6.0")),
    ]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def env_without_proxies() -> dict[str, str]:
    env = dict(os.environ)
    for k in list(env):
        if k.lower() in {"http_proxy", "https_proxy", "all_proxy"}:
            del env[k]
    return env
