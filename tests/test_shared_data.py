"""The real conda-forge data in ../shared/data: the python 3.9 win-64 tree and its recorded lock."""

from __future__ import annotations

from pathlib import Path

import yaml

from envpack.channels import resolve_channel
from envpack.platforms import virtual_packages
from envpack.resolve.rattler_backend import RattlerSolver
from envpack.resolve.solver import SolveRequest

from conftest import run_cli, write_recipe

CORE = {
    "python",
    "pip",
    "setuptools",
    "wheel",
    "vc",
    "vs2015_runtime",
    "ucrt",
    "openssl",
    "ca-certificates",
    "tzdata",
    "bzip2",
    "libffi",
    "libzlib",
    "tk",
    "xz",
}


def recorded_win64(shared: Path) -> list[dict[str, object]]:
    data = yaml.safe_load((shared / "locks" / "conda-lock-gh155-py39.yml").read_text())
    return [p for p in data["package"] if p["platform"] == "win-64" and p["manager"] == "conda"]


def solve(shared: Path, specs: list[str]):  # type: ignore[no-untyped-def]
    channel = resolve_channel(str(shared / "conda-forge-py39-subset"), shared)
    return RattlerSolver().solve(
        SolveRequest(
            channels=[channel],
            specs=specs,
            platform="win-64",
            virtual_packages=virtual_packages("win-64", {}),
        )
    )


def test_python39_resolves_to_a_consistent_windows_set(shared_data: Path) -> None:
    records = solve(shared_data, ["python=3.9", "pip"])
    by_name = {r.name: r for r in records}
    assert set(by_name) >= CORE
    assert by_name["python"].version.startswith("3.9.")
    assert all(r.subdir in {"win-64", "noarch"} for r in records)
    # every dependency of every record is satisfied inside the set
    for r in records:
        for dep in r.depends:
            assert dep.split()[0] in by_name or dep.startswith("__"), (r.name, dep)
    recorded = {p["name"] for p in recorded_win64(shared_data)}
    # the recorded 2022 lock predates conda-forge's sqlite->libsqlite split and vc14_runtime
    assert recorded >= CORE


def test_recorded_lock_is_reproduced_exactly(shared_data: Path) -> None:
    recorded = recorded_win64(shared_data)
    pins = []
    for p in recorded:
        build = str(p["url"]).rsplit("/", 1)[1].rsplit("-", 1)[1].split(".")[0]
        pins.append(f"{p['name']} =={p['version']} {build}")
    records = solve(shared_data, pins)
    got = {r.name: r for r in records}
    assert set(got) == {p["name"] for p in recorded}
    for p in recorded:
        r = got[str(p["name"])]
        assert r.version == p["version"]
        assert r.sha256 == p["hash"]["sha256"]  # type: ignore[index]
        assert r.md5 == p["hash"]["md5"]  # type: ignore[index]
        assert r.fn == str(p["url"]).rsplit("/", 1)[1]


def test_lock_command_on_the_subset(shared_data: Path, tmp_path: Path, cache_dir: Path) -> None:
    exe = tmp_path / "micromamba.exe"
    exe.write_bytes(b"MZ stand-in")
    recipe = write_recipe(
        tmp_path / "py39.yaml",
        [str(shared_data / "conda-forge-py39-subset")],
        ["python=3.9", "pip"],
    )
    result = run_cli("lock", recipe, "--micromamba-exe", exe)
    assert result.exit_code == 0, result.output
    lock = yaml.safe_load((tmp_path / "py39.lock.yaml").read_text())
    pkgs = lock["platforms"]["win-64"]["packages"]
    assert len(pkgs) == 17
    assert [p["name"] for p in pkgs] == sorted(p["name"] for p in pkgs)
    assert all(len(p["sha256"]) == 64 and len(p["md5"]) == 32 and p["size"] > 0 for p in pkgs)
    assert lock["platforms"]["win-64"]["micromamba"]["source"] == "file"
