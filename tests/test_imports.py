"""Locks made by other tools as envpack input: conda-lock, pixi, @EXPLICIT files.

The real files in ../shared/data/locks must parse to the records their authors locked (checked
against the real conda-forge repodata subset); synthetic ones pointing at the test channel must
build into a bundle that verifies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from envpack.errors import LockError
from envpack.lock.importers import build_number_of, detect_lock_kind, load_lock_file
from envpack.lock.lockfile import Lock, PlatformLock, write_lock
from envpack.lock.record import LockedPackage
from envpack.snapshot import verify_bundle

from http_server import ChannelServer

LOCKS = "locks"


def repodata_records(
    channel: Path, subdirs: tuple[str, ...] = ("win-64", "noarch")
) -> dict[str, Any]:
    """``{fn: entry}`` over a channel's repodata (plain or conda-forge-subset shaped)."""
    out: dict[str, Any] = {}
    for sub in subdirs:
        data = json.loads((channel / sub / "repodata.json").read_text())
        for key in ("packages", "packages.conda"):
            for fn, entry in (data.get(key) or {}).items():
                out[fn] = {**entry, "subdir": entry.get("subdir", sub)}
    return out


# --------------------------------------------------------------------------- the real files


def test_detect_kinds(shared_data: Path, tmp_path: Path) -> None:
    locks = shared_data / LOCKS
    assert detect_lock_kind(locks / "conda-lock-gh155-py39.yml") == "conda-lock"
    assert detect_lock_kind(locks / "pixi-simple-python.lock") == "pixi"
    assert detect_lock_kind(locks / "explicit-zlib-win-64.txt") == "explicit"
    assert detect_lock_kind(locks / "environment-gh155-py39.yml") is None  # a recipe
    own = tmp_path / "own.lock.yaml"
    write_lock(Lock(name="x", platforms={"win-64": PlatformLock("win-64", ())}), own)
    assert detect_lock_kind(own) == "envpack"
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\nversion: 1\nchannels: [x]\ndependencies: [a]\n")
    assert detect_lock_kind(recipe) is None


def test_conda_lock_matches_the_real_repodata(shared_data: Path) -> None:
    lock = load_lock_file(shared_data / LOCKS / "conda-lock-gh155-py39.yml", "win-64")
    assert list(lock.platforms) == ["win-64"]
    records = lock.platforms["win-64"].packages
    assert len(records) == 17
    repodata = repodata_records(shared_data / "conda-forge-py39-subset")
    for r in records:
        entry = repodata[r.fn]
        assert (r.name, r.version, r.build, r.build_number, r.subdir) == (
            entry["name"],
            entry["version"],
            entry["build"],
            entry["build_number"],
            entry["subdir"],
        )
        assert (r.md5, r.sha256) == (entry["md5"], entry["sha256"])
        assert r.url == f"https://conda.anaconda.org/conda-forge/{r.subdir}/{r.fn}"
        assert r.channel == "https://conda.anaconda.org/conda-forge"
        assert r.size == 0  # conda-lock v1 records no size: the downloader fills it in
    python = next(r for r in records if r.name == "python")
    assert python.version == "3.9.10" and "bzip2 >=1.0.8,<2.0a0" in python.depends
    # Its 12 pip packages are wheels now, not skipped (tests/test_pypi_lock_import.py has them).
    assert lock.extra["skipped"] == []
    assert len(lock.platforms["win-64"].pypi) == 12
    assert lock.channels == ("conda-forge",)


def test_conda_lock_every_platform(shared_data: Path) -> None:
    path = shared_data / LOCKS / "conda-lock-gh155-py39.yml"
    # Its osx-64 part installs numpy from an sdist, which no offline bundle can carry.
    for platform in (None, "osx-64"):
        with pytest.raises(LockError, match="pip package 'numpy' is not a wheel"):
            load_lock_file(path, platform)
    counts = {p: len(load_lock_file(path, p).platforms[p].packages) for p in ("linux-64", "win-64")}
    assert counts == {"linux-64": 24, "win-64": 17}
    with pytest.raises(LockError, match="no win-arm64 packages"):
        load_lock_file(shared_data / LOCKS / "conda-lock-gh155-py39.yml", "win-arm64")


def test_explicit_file(shared_data: Path) -> None:
    lock = load_lock_file(shared_data / LOCKS / "explicit-zlib-win-64.txt", None)
    assert list(lock.platforms) == ["win-64"]
    by_name = {r.name: r for r in lock.platforms["win-64"].packages}
    assert sorted(by_name) == [
        "libzlib",
        "ucrt",
        "vc",
        "vs2008_runtime",
        "vs2015_runtime",
        "zlib",
    ]
    zlib = by_name["zlib"]
    assert (zlib.version, zlib.build, zlib.build_number) == ("1.2.11", "h8ffe710_1013", 1013)
    assert zlib.md5 == "866517df4fd8bb813bc20c24cf7b8f05" and zlib.sha256 == ""
    assert by_name["vs2008_runtime"].build == "0"
    with pytest.raises(LockError, match="is for linux-64, not win-64"):
        load_lock_file(shared_data / LOCKS / "explicit-zlib-linux-64.txt", "win-64")


def test_pixi_lock(shared_data: Path) -> None:
    lock = load_lock_file(shared_data / LOCKS / "pixi-simple-python.lock", "win-64")
    records = {r.name: r for r in lock.platforms["win-64"].packages}
    assert len(records) == 18
    python = records["python"]
    assert (python.version, python.build, python.subdir) == (
        "3.12.5",
        "h889d299_0_cpython",
        "win-64",
    )
    assert python.sha256 == "4cef304eb8877fd3094c14b57097ccc1b817b4afbf2223dd45d2b61e44064740"
    assert python.md5 == "db056d8b140ab2edd56a2f9bdb203dcd"
    assert python.size == 15897752 and python.license == "Python-2.0"
    assert python.timestamp == 1723141830000  # to the second, as the solvers record it
    assert "python_abi 3.12.* *_cp312" in python.constrains
    assert records["pip"].subdir == "noarch"
    assert lock.channels == ("https://conda.anaconda.org/conda-forge",)
    everything = load_lock_file(shared_data / LOCKS / "pixi-simple-python.lock", None)
    assert "linux-64" in everything.platforms and "win-64" in everything.platforms


# --------------------------------------------------------------------------- formats in detail


def explicit(tmp_path: Path, *lines: str, name: str = "team.txt") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


URL = "https://conda.anaconda.org/conda-forge/win-64/zlib-1.2.11-h8ffe710_1013.tar.bz2"
SHA = "a" * 64


@pytest.mark.parametrize(
    ("suffix", "md5", "sha256"),
    [
        ("#" + "b" * 32, "b" * 32, ""),
        (f"#sha256:{SHA}", "", SHA),
        (f"#{SHA}", "", SHA),
        (f"#{SHA.upper()}", "", SHA),
    ],
)
def test_explicit_hash_forms(tmp_path: Path, suffix: str, md5: str, sha256: str) -> None:
    path = explicit(tmp_path, "# platform: win-64", "@EXPLICIT", URL + suffix)
    (record,) = load_lock_file(path, "win-64").platforms["win-64"].packages
    assert (record.md5, record.sha256, record.fn) == (md5, sha256, URL.rsplit("/", 1)[1])


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["@EXPLICIT", URL], "no hash; envpack needs one"),
        (["@EXPLICIT", URL + "#abc"], "unrecognised hash"),
        (["@EXPLICIT", URL + "#sha256:xyz"], "malformed sha256"),
        ([URL + "#" + "b" * 32, "@EXPLICIT"], "a line before @EXPLICIT"),
        (["@EXPLICIT"], "no packages"),
        (["@EXPLICIT", "https://h/c/win-64/not-a-package.zip#" + "b" * 32], "not a conda package"),
        (
            ["@EXPLICIT", URL + "#" + "b" * 32, URL.replace("win-64", "linux-64") + "#" + "c" * 32],
            "several platforms",
        ),
        (["# platform: osx-64", "@EXPLICIT", URL + "#" + "b" * 32], "says platform osx-64"),
    ],
)
def test_explicit_errors(tmp_path: Path, lines: list[str], message: str) -> None:
    with pytest.raises(LockError, match=message):
        load_lock_file(explicit(tmp_path, *lines), None)


def test_explicit_noarch_only_needs_a_platform(tmp_path: Path) -> None:
    path = explicit(tmp_path, "@EXPLICIT", URL.replace("win-64", "noarch") + "#" + "b" * 32)
    with pytest.raises(LockError, match="name a platform"):
        load_lock_file(path, None)
    assert list(load_lock_file(path, "win-64").platforms) == ["win-64"]


def test_build_numbers() -> None:
    assert build_number_of("h8ffe710_1013") == 1013
    assert build_number_of("hcf16a7b_2_cpython") == 2
    assert build_number_of("pyhd8ed1ab_0") == 0
    assert build_number_of("0") == 0
    assert build_number_of("cpu") == 0


def test_names_from_paths(tmp_path: Path) -> None:
    project = tmp_path / "my project"
    project.mkdir()
    path = explicit(project, "@EXPLICIT", URL + "#" + "b" * 32, name="conda-lock.yml")
    assert load_lock_file(path, "win-64").name == "my-project"
    path = explicit(project, "@EXPLICIT", URL + "#" + "b" * 32, name="prod env.txt")
    assert load_lock_file(path, "win-64").name == "prod-env"
    assert load_lock_file(path, "win-64", name="given").name == "given"


def test_conda_lock_categories_and_pip(tmp_path: Path) -> None:
    def entry(name: str, **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "version": "1.0",
            "manager": "conda",
            "platform": "win-64",
            "dependencies": {},
            "url": f"https://conda.anaconda.org/conda-forge/win-64/{name}-1.0-h0_0.conda",
            "hash": {"md5": "b" * 32},
            "category": "main",
            "optional": False,
            **extra,
        }

    data = {
        "version": 1,
        "metadata": {"channels": [{"url": "conda-forge"}], "platforms": ["win-64"]},
        "package": [
            entry("main"),
            entry("devtool", category="dev", optional=True),
            entry("extra", category="docs", optional=True),
            entry(
                "six",
                manager="pip",
                url="https://files.pythonhosted.org/six-1.0-py2.py3-none-any.whl",
                hash={"sha256": "c" * 64},
            ),
            entry("docpip", manager="pip", category="docs", url="https://x/docpip-1.0.tar.gz"),
        ],
    }
    path = tmp_path / "conda-lock.yml"
    path.write_text(yaml.safe_dump(data))
    lock = load_lock_file(path, None)
    assert [r.name for r in lock.platforms["win-64"].packages] == ["devtool", "main"]
    assert [w.filename for w in lock.platforms["win-64"].pypi] == ["six-1.0-py2.py3-none-any.whl"]
    assert lock.extra["skipped"] == [
        "category docs: extra 1.0 (win-64)",
        "category docs: docpip 1.0 (win-64)",
    ]
    data["package"][0]["url"] = data["package"][0]["url"].replace("main-1.0", "other-1.0")
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(LockError, match="is not main 1.0"):
        load_lock_file(path, None)
    data["version"] = 7
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(LockError, match="conda-lock format version 7"):
        load_lock_file(path, None)


PIXI_WITH_PYPI = """\
version: 6
environments:
  default:
    channels:
    - url: https://conda.anaconda.org/conda-forge/
    indexes:
    - https://pypi.org/simple
    packages:
      win-64:
      - conda: https://conda.anaconda.org/conda-forge/win-64/ucrt-10.0.22621.0-h57928b3_1.conda
      - pypi: https://files.pythonhosted.org/packages/d9/5a/six-1.16.0-py2.py3-none-any.whl
packages:
- conda: https://conda.anaconda.org/conda-forge/win-64/ucrt-10.0.22621.0-h57928b3_1.conda
  sha256: db8dead3dd30fb1a032737554ce91e2819b43496a0db09927edf01c32b577450
  md5: 6797b005cd0f439c4c5c9ac565783700
  license: LicenseRef-MicrosoftWindowsSDK10
  size: 559710
  timestamp: 1728377723347
- pypi: https://files.pythonhosted.org/packages/d9/5a/six-1.16.0-py2.py3-none-any.whl
  name: six
  version: 1.16.0
  sha256: 8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254
  requires_python: '>=2.7'
"""


def test_pixi_pypi_entries_are_wheels(tmp_path: Path) -> None:
    path = tmp_path / "pixi.lock"
    path.write_text(PIXI_WITH_PYPI)
    lock = load_lock_file(path, "win-64")
    assert [r.name for r in lock.platforms["win-64"].packages] == ["ucrt"]
    assert [(w.name, w.version) for w in lock.platforms["win-64"].pypi] == [("six", "1.16.0")]
    assert lock.extra["skipped"] == []
    with pytest.raises(LockError, match="no osx-64 environment"):
        load_lock_file(path, "osx-64")
    path.write_text(PIXI_WITH_PYPI.replace("version: 6", "version: 6\nbroken: [", 1))
    with pytest.raises(LockError, match="pixi lock"):
        load_lock_file(path, "win-64")


def test_not_a_lock(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("name: x\nchannels: [c]\ndependencies: [a]\n")
    with pytest.raises(LockError, match="not a lock file envpack reads"):
        load_lock_file(recipe, None)


def test_envpack_lock_passes_through(tmp_path: Path) -> None:
    record = LockedPackage(
        "a", "1", "0", 0, "win-64", "a-1-0.conda", "https://h/c/win-64/a-1-0.conda",
        "https://h/c", "c" * 64, "d" * 32, 10,
    )  # fmt: skip
    original = Lock(
        name="own",
        platforms={
            "win-64": PlatformLock("win-64", (record,)),
            "linux-64": PlatformLock("linux-64", ()),
        },
    )
    path = tmp_path / "own.lock.yaml"
    write_lock(original, path)
    lock = load_lock_file(path, "win-64")
    assert list(lock.platforms) == ["win-64"]
    assert lock.platforms["win-64"].packages == (record,)


# --------------------------------------------------------------------------- build from them


def build_imported(lock: Lock, out: Path, cache: Path) -> Path:
    from envpack import pipeline as core

    options = core.BuildOptions(
        lock=core.LockOptions(recipe=out / "unused.yaml", cache_dir=cache),
        output_dir=out,
        sfx=False,
    )
    outputs = core.build_from_lock(
        lock, "win-64", options, tools=[("micromamba.exe", b"MZ stand-in")]
    )
    return Path(outputs[0])


def test_explicit_lock_builds_a_sound_bundle(
    server: ChannelServer, channel_copy: Path, tmp_path: Path, cache_dir: Path
) -> None:
    repodata = repodata_records(channel_copy)
    wanted = ["ucrt", "vc14_runtime", "vc", "libzlib", "tool-1.0", "docs"]
    fns = [
        fn for w in wanted for fn in repodata if fn.startswith(w + ("-" if "-" not in w else ""))
    ]
    lines = ["# platform: win-64", "@EXPLICIT"] + [
        f"{server.url}/{repodata[fn]['subdir']}/{fn}#{repodata[fn]['md5']}" for fn in fns
    ]
    lock = load_lock_file(explicit(tmp_path, *lines, name="team env.txt"), "win-64")
    assert all(r.size == 0 and r.sha256 == "" for r in lock.platforms["win-64"].packages)
    bundle = build_imported(lock, tmp_path / "dist", cache_dir)
    assert bundle.name == "team-env-win-64.zip"
    assert verify_bundle(bundle) == []
    # The bundle records what was downloaded, not the gaps of the imported lock.
    from envpack.snapshot import lock_from_bundle

    rebuilt, _ = lock_from_bundle(bundle)
    for r in rebuilt.platforms["win-64"].packages:
        assert r.sha256 == repodata[r.fn]["sha256"] and r.size == repodata[r.fn]["size"]


def test_conda_lock_builds_a_sound_bundle(
    server: ChannelServer, channel_copy: Path, tmp_path: Path, cache_dir: Path
) -> None:
    repodata = repodata_records(channel_copy)
    package = []
    for fn, e in sorted(repodata.items()):
        if e["name"] in ("micromamba",) or fn.startswith("tool-1.0"):
            continue
        package.append(
            {
                "name": e["name"],
                "version": e["version"],
                "manager": "conda",
                "platform": "win-64",
                "dependencies": {
                    d.partition(" ")[0]: d.partition(" ")[2] for d in e.get("depends", [])
                },
                "url": f"{server.url}/{e['subdir']}/{fn}",
                "hash": {"md5": e["md5"], "sha256": e["sha256"]},
                "category": "main",
                "optional": False,
            }
        )
    package.append(
        {
            **package[0],
            "name": "six",
            "version": "1.16",
            "manager": "pip",
            "url": "https://x/s.whl",
            "category": "docs",
        }
    )
    data = {
        "version": 1,
        "metadata": {"channels": [{"url": server.url}], "platforms": ["win-64"]},
        "package": package,
    }
    path = tmp_path / "proj" / "conda-lock.yml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(data))
    lock = load_lock_file(path, "win-64")
    assert lock.extra["skipped"] == ["category docs: six 1.16 (win-64)"]
    bundle = build_imported(lock, tmp_path / "dist", cache_dir)
    assert bundle.name == "proj-win-64.zip"
    assert verify_bundle(bundle) == []


def test_cli_builds_from_an_explicit_file(
    server: ChannelServer, channel_copy: Path, tmp_path: Path, cache_dir: Path
) -> None:
    from conftest import run_cli

    repodata = repodata_records(channel_copy)
    fns = [
        fn for fn, e in repodata.items() if e["name"] in ("ucrt", "libzlib", "vc", "vc14_runtime")
    ]
    lines = ["@EXPLICIT"] + [
        f"{server.url}/{repodata[fn]['subdir']}/{fn}#{repodata[fn]['md5']}" for fn in fns
    ]
    path = explicit(tmp_path, *lines, name="zlib-only.txt")
    result = run_cli("build", path, "-o", tmp_path / "dist", "--no-sfx")
    assert result.exit_code == 0, result.output
    bundle = tmp_path / "dist" / "zlib-only-win-64.zip"
    assert verify_bundle(bundle) == []
    from envpack.snapshot import inspect_bundle

    info = inspect_bundle(bundle)
    assert sorted(p["name"] for p in info["packages"]) == ["libzlib", "ucrt", "vc", "vc14_runtime"]
    assert info["micromamba"]["version"] == "2.8.1"  # solved from the channel the lock uses
