"""Update bundles on the build side: what they hold, their name, the base read from any form,
the refusals that write nothing, and what inspect, verify, diff and the SBOM see in them."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from envpack.errors import EnvpackError
from envpack.lock.record import LockedPackage
from update_factory import STEM, Versions, build_full, build_update, extract, make_versions

MD5 = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Versions]:
    v = make_versions(tmp_path_factory.mktemp("versions"))
    build_full(v, "v1")
    build_full(v, "v2")
    yield v


@pytest.fixture(scope="module")
def update12(versions: Versions) -> Path:
    (zipped,) = build_update(versions, "v2", versions.bundles["v1"], versions.base / "u12")
    return zipped


def record(fn: str, md5: str = MD5, subdir: str = "win-64") -> LockedPackage:
    name, version, build = fn.removesuffix(".conda").rsplit("-", 2)
    return LockedPackage(
        name, version, build, 0, subdir, fn, f"https://x.invalid/c/{subdir}/{fn}", "c", "", md5, 0
    )


def test_environment_hash_is_platform_and_sorted_subdir_fn_md5() -> None:
    from envpack.lock.record import environment_sha256

    text = (
        f"envpack-environment 1\nwin-64\nnoarch/b-2.0-0.conda#{MD5}\nwin-64/a-1.0-0.conda#{MD5}\n"
    )
    want = hashlib.sha256(text.encode()).hexdigest()
    recs = [record("b-2.0-0.conda", subdir="noarch"), record("a-1.0-0.conda")]
    assert environment_sha256("win-64", recs) == want
    assert environment_sha256("win-64", recs[::-1]) == want
    assert environment_sha256("win-32", recs) != want


def test_update_holds_only_what_the_base_lacks(update12: Path) -> None:
    with zipfile.ZipFile(update12) as zf:
        names = sorted(zf.namelist())
    packages = [n for n in names if n.endswith(".conda")]
    assert packages == [
        "demo-update/channel/noarch/newp-1.0-0.conda",
        "demo-update/channel/win-64/app-1.1-0.conda",
    ]
    assert "demo-update/update.bat" in names
    assert "demo-update/setup.bat" not in names
    assert "demo-update/micromamba.exe" not in names  # the same micromamba as v1: not carried


def test_name_says_update_and_both_short_hashes(update12: Path, versions: Versions) -> None:
    found = STEM.match(update12.name)
    assert found, update12.name
    data = json.loads(zipfile.ZipFile(update12).read("demo-update/envpack.json"))
    assert found.group(1) == data["update"]["base_sha256"][:8]
    assert found.group(2) == data["update"]["target_sha256"][:8]
    assert data["kind"] == "update"
    table = data["update"]
    assert table["added"] == ["newp-1.0-0.conda"]
    assert table["removed"] == ["gone-1.0-0.conda"]
    assert table["changed"] == [{"name": "app", "from": "app-1.0-0.conda", "to": "app-1.1-0.conda"}]
    assert table["carried_bytes"] == sum(
        e.file_size for e in zipfile.ZipFile(update12).infolist() if e.filename.endswith(".conda")
    )
    names = {p["name"] for p in data["lock"]["packages"]}
    assert names == {"app", "lib", "keep", "newp"}  # the full new lock
    assert {p["fn"] for p in table["base"]} == {
        "app-1.0-0.conda",
        "lib-1.0-0.conda",
        "gone-1.0-0.conda",
        "keep-1.0-0.conda",
    }


def test_same_base_from_bundle_lock_and_installed_list(versions: Versions, tmp_path: Path) -> None:
    from envpack.update.plan import read_base

    bundle = read_base(versions.bundles["v1"])
    lock = read_base(versions.recipes["v1"].with_name("demo.lock.yaml"))
    env_txt = extract(versions.bundles["v1"], tmp_path / "x") / "env.txt"
    lines = [line for line in env_txt.read_text().splitlines() if "://" in line]
    listed = tmp_path / "installed.txt"
    # what micromamba 2.8.1's "list --explicit --md5" prints: a header, no @EXPLICIT
    listed.write_text('List of packages in environment: "C:\\envs\\demo"\n\n' + "\n".join(lines))
    installed = read_base(listed)
    assert (bundle.kind, lock.kind, installed.kind) == ("bundle", "lock", "installed-list")
    assert bundle.sha256 == lock.sha256 == installed.sha256
    assert installed.platform == "win-64"


def test_update_is_deterministic(versions: Versions, update12: Path) -> None:
    (again,) = build_update(versions, "v2", versions.bundles["v1"], versions.base / "again")
    assert again.name == update12.name
    assert again.read_bytes() == update12.read_bytes()


def test_identical_locks_write_nothing(versions: Versions, tmp_path: Path) -> None:
    from envpack.errors import UpdateError

    out = tmp_path / "out"
    with pytest.raises(UpdateError, match="nothing to update") as caught:
        build_update(versions, "v2", versions.bundles["v2"], out)
    assert caught.value.exit_code == 9
    assert not out.exists() or not any(out.iterdir())


def test_other_platform_writes_nothing(versions: Versions, tmp_path: Path) -> None:
    from envpack.errors import UpdateError

    listed = tmp_path / "linux.txt"
    listed.write_text(f"@EXPLICIT\nhttps://x.invalid/c/linux-64/app-1.0-0.conda#{MD5}\n")
    out = tmp_path / "out"
    with pytest.raises(UpdateError, match="linux-64") as caught:
        build_update(versions, "v2", listed, out)
    assert isinstance(caught.value, EnvpackError)
    assert not out.exists() or not any(out.iterdir())


def test_unreadable_base_is_one_clear_error(versions: Versions, tmp_path: Path) -> None:
    from envpack.errors import UpdateError

    junk = tmp_path / "notes.txt"
    junk.write_text("hello\n")
    with pytest.raises(UpdateError, match="micromamba list -p PREFIX --explicit --md5"):
        build_update(versions, "v2", junk, tmp_path / "out")


def test_diff_works_between_the_update_and_either_end(versions: Versions, update12: Path) -> None:
    from envpack.snapshot import diff

    same = diff(update12, versions.bundles["v2"])
    assert not (same.added or same.removed or same.changed)
    moved = diff(versions.bundles["v1"], update12)
    assert {r.name for r in moved.added} == {"newp"}
    assert {r.name for r in moved.removed} == {"gone"}
    assert {a.name for a, _ in moved.changed} == {"app"}


def test_sbom_describes_the_environment_after_the_update(update12: Path) -> None:
    sbom = json.loads(zipfile.ZipFile(update12).read("demo-update/sbom.cdx.json"))
    assert {c["name"] for c in sbom["components"]} == {"app", "lib", "keep", "newp"}


def test_manifest_helpers_for_inspect_and_verify(update12: Path, versions: Versions) -> None:
    from envpack.snapshot import lock_from_manifest
    from envpack.snapshot.update import carried_lock, format_update, update_info, update_problems

    manifest = json.loads(zipfile.ZipFile(update12).read("demo-update/envpack.json"))

    def platform_lock_of(m: dict[str, Any]) -> Any:
        return lock_from_manifest(m).platforms["win-64"]

    pl = platform_lock_of(manifest)
    assert update_problems(manifest, pl) == []
    assert sorted(r.fn for r in carried_lock(manifest, pl).packages) == [
        "app-1.1-0.conda",
        "newp-1.0-0.conda",
    ]
    text = format_update(update_info(manifest) or {})
    assert "+ newp-1.0-0.conda" in text and "- gone-1.0-0.conda" in text
    assert "~ app: app-1.0-0.conda -> app-1.1-0.conda" in text
    # a tampered table is named
    manifest["update"]["removed"] = []
    manifest["update"]["base_sha256"] = "0" * 64
    problems = update_problems(manifest, pl)
    assert any("'removed'" in p for p in problems)
    assert any("base_sha256" in p for p in problems)
    full = json.loads(zipfile.ZipFile(versions.bundles["v2"]).read("demo/envpack.json"))
    assert update_info(full) is None
    assert carried_lock(full, platform_lock_of(full)) == platform_lock_of(full)


def test_verify_accepts_an_intact_update_bundle(update12: Path) -> None:
    from envpack.snapshot import verify_bundle

    assert verify_bundle(update12) == []


def test_linux_targets_are_refused() -> None:
    from envpack.errors import UpdateError
    from envpack.lock.lockfile import PlatformLock
    from envpack.update.plan import Base, plan_update

    old = record("a-1.0-0.conda", subdir="linux-64")
    new = record("a-1.1-0.conda", subdir="linux-64")
    base = Base("linux-64", (old,), "old.txt", "installed-list")
    with pytest.raises(UpdateError, match="Windows targets only"):
        plan_update("demo", base, PlatformLock("linux-64", (new,)))
