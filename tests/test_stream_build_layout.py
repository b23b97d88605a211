"""layout.streamed_entries gives the bytes of bundle_entries in every container, asks for each
package in the order the writers write them, and makes the other files once, after the last."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from envpack.archive.write import write_bundle
from envpack.bundle.layout import BundleSettings, bundle_entries, streamed_entries
from envpack.fetch.download import Fetcher, FetchOptions
from envpack.lock.lockfile import PlatformLock, read_lock
from envpack.lock.record import LockedPackage
from envpack.lock.wheel import WheelRecord

from conftest import run_cli

EPOCH = 1700000000
TOOLS = [("micromamba.exe", b"MZ stand-in"), ("vcruntime140.dll", b"dll")]
SETTINGS = BundleSettings(
    name="demo",
    default_prefix="%LOCALAPPDATA%\\envs\\demo",
    variables=(("A_VAR", "1"),),
)


@pytest.fixture
def cached(
    recipe: Path, tmp_path: Path, cache_dir: Path
) -> tuple[PlatformLock, dict[LockedPackage, Path]]:
    result = run_cli("build", recipe, "-o", tmp_path / "first")
    assert result.exit_code == 0, result.output
    pl = read_lock(recipe.with_name("demo.lock.yaml")).for_platform("win-64")
    fetcher = Fetcher(FetchOptions(cache_dir=cache_dir, offline=True))
    return pl, fetcher.fetch_all(sorted(pl.packages))


def wheel(tmp_path: Path) -> tuple[WheelRecord, Path]:
    data = b"PK not really a wheel"
    path = tmp_path / "six-1.16.0-py2.py3-none-any.whl"
    path.write_bytes(data)
    record = WheelRecord(
        name="six",
        version="1.16.0",
        filename=path.name,
        url=f"https://example.invalid/{path.name}",
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
    )
    return record, path


@pytest.mark.parametrize("platform", ["win-64", "linux-64"])
def test_streamed_entries_write_the_same_bytes(
    platform: str, cached: tuple[PlatformLock, dict[LockedPackage, Path]], tmp_path: Path
) -> None:
    pl, paths = cached
    whl, whl_path = wheel(tmp_path)
    pl = replace(pl, platform=platform, pypi=(whl,))
    asked: list[str] = []

    def pending(record: LockedPackage) -> Callable[[], tuple[Path, int | None]]:
        def wait() -> tuple[Path, int | None]:
            asked.append(record.fn)
            return paths[record], None

        return wait

    def arrived() -> tuple[dict[LockedPackage, Path], dict[WheelRecord, Path]]:
        asked.append("every package in")
        return paths, {whl: whl_path}

    script = (
        ("hello.sh", b"echo hello\n") if platform == "linux-64" else ("hello.bat", b"@echo\r\n")
    )
    settings = replace(SETTINGS, post_install=(script,))
    plain, ctx = bundle_entries(pl, settings, paths, TOOLS, EPOCH, {whl: whl_path})
    streamed, late = streamed_entries(
        pl, settings, {r: pending(r) for r in pl.packages}, TOOLS, EPOCH, arrived
    )
    assert sorted(e.arcname for e in streamed) == sorted(e.arcname for e in plain)
    assert asked == []  # nothing waited for before the writer asks
    formats = ["tar"] if platform == "linux-64" else ["zip", "7z"]
    for fmt in formats:
        a = write_bundle(tmp_path / fmt / "plain", "demo", "demo", plain, EPOCH, fmt)
        b = write_bundle(tmp_path / fmt / "streamed", "demo", "demo", streamed, EPOCH, fmt)
        assert a[0].read_bytes() == b[0].read_bytes(), fmt
    assert late.context() == ctx
    # The first container asked for the packages in member order (noarch first), then for the
    # rest once; later containers wrote the files already made.
    first = [
        "docs-0.1-pyh0.conda",
        "libzlib-1.3.1-h2466b09_2.conda",
        "tool-2.0-h1234_0.conda",
        "ucrt-10.0.22621.0-h57928b3_0.conda",
        "vc-14.3-hcf57466_18.conda",
        "vc14_runtime-14.38.33130-h82b7239_18.conda",
        "every package in",
    ]
    assert asked[: len(first)] == first
    assert asked.count("every package in") == 1


def test_a_wheel_the_lock_gave_no_size_ships_with_the_downloaded_one(
    cached: tuple[PlatformLock, dict[LockedPackage, Path]], tmp_path: Path
) -> None:
    pl, paths = cached
    whl, whl_path = wheel(tmp_path)
    unsized = replace(whl, size=0)  # an imported lock's wheel: the index gave no size
    pl = replace(pl, pypi=(unsized,))
    shipped = {whl: whl_path}  # what the pipeline passes: the record with the download's size

    def arrived() -> tuple[dict[LockedPackage, Path], dict[WheelRecord, Path]]:
        return paths, shipped

    def pending(record: LockedPackage) -> Callable[[], tuple[Path, int | None]]:
        return lambda: (paths[record], None)

    plain, _ = bundle_entries(pl, SETTINGS, paths, TOOLS, EPOCH, shipped)
    streamed, _ = streamed_entries(
        pl, SETTINGS, {r: pending(r) for r in pl.packages}, TOOLS, EPOCH, arrived
    )
    a = write_bundle(tmp_path / "plain", "demo", "demo", plain, EPOCH)
    b = write_bundle(tmp_path / "streamed", "demo", "demo", streamed, EPOCH)
    assert a[0].read_bytes() == b[0].read_bytes()
    with zipfile.ZipFile(a[0]) as zf:
        manifest = json.loads(zf.read("demo/envpack.json"))
    member = "wheels/six-1.16.0-py2.py3-none-any.whl"
    assert manifest["files"][member]["size"] == 21
    assert [w["size"] for w in manifest["lock"]["pypi"]] == [21]


def test_the_dry_run_still_checks_the_settings_before_any_package_arrives(
    cached: tuple[PlatformLock, dict[LockedPackage, Path]],
) -> None:
    """streamed_entries renders setup.bat in its dry run (names only otherwise): a recipe setting
    that setup.bat cannot carry fails before the first download is waited for, not after."""
    from envpack.errors import EnvpackError

    pl, paths = cached
    asked: list[str] = []

    def pending(record: LockedPackage) -> Callable[[], tuple[Path, int | None]]:
        asked.append(record.fn)
        return lambda: (paths[record], None)

    def arrived() -> tuple[dict[LockedPackage, Path], dict[WheelRecord, Path]]:
        asked.append("every package in")
        return paths, {}

    waits = {r: pending(r) for r in pl.packages}
    asked.clear()
    for bad, why in (
        (replace(SETTINGS, shortcuts=True), "shortcuts: true"),
        (replace(SETTINGS, variables=(("PATH", "x"),)), "'PATH' cannot be set"),
    ):
        with pytest.raises(EnvpackError, match=why):
            streamed_entries(pl, bad, waits, TOOLS, EPOCH, arrived)
    assert asked == []  # no package was waited for, nothing was made
