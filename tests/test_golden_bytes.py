"""Golden bytes: a fixed lock and fixed packages give bundles with these exact sha256 values.

The promise "the same lock gives the same bytes" is checked elsewhere by building twice; this
test pins the bytes themselves, so that moving code around (a reshape, a refactor of a writer)
cannot change a bundle unnoticed. Everything here is fixed: packages are ``.tar.bz2`` archives
written by this file with fixed metadata (bz2's output has not changed in decades, unlike
zstd's), the lock names made-up URLs and is served from a cache filled beforehand (``--offline``:
no server port leaks into ``env.txt``), micromamba.exe is a fixed file, SOURCE_DATE_EPOCH is set.

When a change is *meant* to alter the bytes (a new manifest field, a setup.bat fix), the failure
prints every new value; update GOLDEN in the same commit and say why in its message. The 7z form
holds Deflate output from the zlib Python links, so it is pinned only where that zlib is the one
recorded below.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import json
import random
import tarfile
import zlib
from pathlib import Path

import pytest
import yaml

from conftest import run_cli

EPOCH = "1700000000"
ZLIB_OF_RECORD = "1.2.13"  # Debian 12's; the 7z goldens hold for it only
GOLDEN = {
    "zip": "9acdbbe37b63a588c7599e8a28fdaa783f04ba59d1fa600d437cce884697a4d3",
    "sfx": "ca6a95d73702dd73d1748f641c04302d5f19ace83f78281c4b1b82dd60f4728e",
    "7z": "89d4022c74aafd9059c4574644a73d2b48c4590063b334e3d077b5cfc5be2aef",
    "split.001": "4579e709c754f2abf247fdbbae0823f4fb92b13295963fece720703b5afd9241",
    "split.002": "a8685d8ab0b3571bb90994fc5047d510d64616f6b1e8511c471127fea95c4592",
    "split-sfx.001": "aef7f16dda2b316500aebba45ac040a3ecea6ad2ba80af93914890288806fbc5",
    "tar": "97388c66d2dec48478d50a8a9bf241d8ea747dd9ea2e8cbab803e35eaaada1de",
    "sfx-sh": "58a01710fd47384efc772ee02a4765a96be219e9d048a8fbfd0cd634086fe253",
}


def tar_bz2(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mtime = int(EPOCH)
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(files[name]))
    return bz2.compress(raw.getvalue(), 9)


def package(
    name: str, version: str, build: str, subdir: str, payload: dict[str, bytes], depends: list[str]
) -> tuple[dict[str, object], bytes]:
    index = {
        "name": name,
        "version": version,
        "build": build,
        "build_number": 0,
        "depends": depends,
        "license": "MIT",
        "subdir": subdir,
        "timestamp": 1700000000000,
    }
    paths = [
        {
            "_path": p,
            "path_type": "hardlink",
            "sha256": hashlib.sha256(d).hexdigest(),
            "size_in_bytes": len(d),
        }
        for p, d in sorted(payload.items())
    ]
    files = dict(payload)
    files["info/index.json"] = json.dumps(index, indent=2, sort_keys=True).encode()
    files["info/paths.json"] = json.dumps({"paths": paths, "paths_version": 1}).encode()
    files["info/files"] = "".join(f"{p}\n" for p in sorted(payload)).encode()
    data = tar_bz2(files)
    fn = f"{name}-{version}-{build}.tar.bz2"
    record = {
        **index,
        "fn": fn,
        "url": f"https://conda.golden.invalid/golden/{subdir}/{fn}",
        "channel": "https://conda.golden.invalid/golden",
        "sha256": hashlib.sha256(data).hexdigest(),
        "md5": hashlib.md5(data).hexdigest(),
        "size": len(data),
        "constrains": [],
    }
    return record, data


def golden_inputs(root: Path, platform: str = "win-64") -> tuple[Path, Path, Path]:
    """The lock, the filled cache and micromamba.exe, all of fixed bytes."""
    rnd = random.Random("envpack golden")
    made = [
        package("ucrt", "10.0.22621.0", "h0", platform, {"Library/bin/ucrtbase.dll": b"ucrt"}, []),
        package(
            "libbig",
            "1.0",
            "h1",
            platform,
            {"Library/bin/big.dll": rnd.randbytes(1_300_000)},
            ["ucrt"],
        ),
        package(
            "tool", "2.0", "h2", platform, {"Library/bin/tool.exe": b"MZ tool"}, ["libbig", "ucrt"]
        ),
        package("docs", "0.1", "pyh0", "noarch", {"share/docs/README": b"docs\n"}, ["tool"]),
    ]
    cache = root / "cache"
    for record, data in made:
        # Where envpack's cache keeps a package: pkgs/<sha256>/<fn> (download.cache_path).
        folder = cache / "pkgs" / str(record["sha256"])
        folder.mkdir(parents=True)
        (folder / str(record["fn"])).write_bytes(data)
    exe = root / ("micromamba.exe" if platform.startswith("win-") else "micromamba")
    exe.write_bytes(b"MZ golden micromamba " + bytes(range(256)) * 64)
    lock = {
        "version": 1,
        "envpack": "0.1.0",
        "recipe": {"name": "golden", "path": None, "channels": [], "specs": ["tool", "docs"]},
        "platforms": {
            platform: {
                "input_hash": "",
                "virtual_packages": ["__win=10.0.19045=0"],
                "packages": sorted((r for r, _ in made), key=lambda r: str(r["name"])),
                "micromamba": {
                    "source": "file",
                    "file": {
                        "name": exe.name,
                        "sha256": hashlib.sha256(exe.read_bytes()).hexdigest(),
                    },
                    "runtime": [],
                },
            }
        },
    }
    lock_path = root / f"golden-{platform}.lock.yaml"
    lock_path.write_text(yaml.safe_dump(lock, sort_keys=False))
    return lock_path, cache, exe


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_golden_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lock, cache, exe = golden_inputs(tmp_path)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    monkeypatch.setenv("ENVPACK_CACHE_DIR", str(cache))
    common = ["--offline", "--micromamba-exe", str(exe)]
    got: dict[str, str] = {}

    out = tmp_path / "whole"
    result = run_cli("build", lock, "-o", out, "--sfx", *common)
    assert result.exit_code == 0, result.output
    got["zip"] = sha(out / "golden-win-64.zip")
    got["sfx"] = sha(out / "golden-win-64-setup.bat")

    out = tmp_path / "seven"
    result = run_cli("build", lock, "-o", out, "--format", "7z", "--no-sfx", *common)
    assert result.exit_code == 0, result.output
    got["7z"] = sha(out / "golden-win-64.7z")

    out = tmp_path / "split"
    result = run_cli("build", lock, "-o", out, "--split", "1M", "--sfx", *common)
    assert result.exit_code == 0, result.output
    got["split.001"] = sha(out / "golden-win-64" / "golden-win-64.zip.001")
    got["split.002"] = sha(out / "golden-win-64" / "golden-win-64.zip.002")
    got["split-sfx.001"] = sha(out / "golden-win-64-setup" / "golden-win-64-setup.bat.001")

    linux_root = tmp_path / "linux"
    linux_root.mkdir()
    lock, cache, exe = golden_inputs(linux_root, "linux-64")
    monkeypatch.setenv("ENVPACK_CACHE_DIR", str(cache))
    out = tmp_path / "tar"
    result = run_cli("build", lock, "-o", out, "--offline", "--micromamba-exe", exe, "--sfx")
    assert result.exit_code == 0, result.output
    got["tar"] = sha(out / "golden-linux-64.tar")
    got["sfx-sh"] = sha(out / "golden-linux-64-setup.sh")

    expected = dict(GOLDEN)
    if zlib.ZLIB_VERSION != ZLIB_OF_RECORD:
        del expected["7z"], got["7z"]
    assert got == expected, "new golden values:\n" + json.dumps(got, indent=4)
