"""Bundles as snapshots: inspect, verify and diff in every form, and byte-identical rebuilds."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from envpack.errors import BundleError, EnvpackError, LockError
from envpack.lock.lockfile import Lock, PlatformLock, read_lock, write_lock
from envpack.snapshot import (
    diff,
    format_diff,
    format_inspect,
    inspect_bundle,
    lock_from_bundle,
    rebuild_inputs,
    verify_bundle,
)

from channel_factory import file_sha256
from conftest import run_cli, write_recipe
from http_server import ChannelServer

EXTRA = """\
variables:
  GREETING: "hello & goodbye"
envpack:
  prefix: "C:\\\\envs\\\\{name}"
  post_install: [hello.bat]
"""


@pytest.fixture
def rich_recipe(tmp_path: Path, server: ChannelServer) -> Path:
    """The demo recipe plus everything that shapes a bundle besides the lock."""
    (tmp_path / "hello.bat").write_bytes(b"@echo hello\r\n")
    return write_recipe(tmp_path / "demo.yaml", [server.url], ["tool", "docs"], EXTRA)


def build(recipe: Path, out: Path, *extra: str) -> Path:
    result = run_cli("build", recipe, "-o", out, *extra)
    assert result.exit_code == 0, result.output
    return out / f"{recipe.stem}-win-64.zip"


def every_form(bundle: Path, tmp_path: Path) -> dict[str, Path]:
    """The same bundle as zip, self-extracting .bat (both ways of making one) and folders."""
    forms = {"zip": bundle}
    sfx = bundle.with_name(bundle.name.replace(".zip", "-setup.bat"))
    if sfx.exists():
        forms["sfx"] = sfx
        # `cat header zip` leaves offsets relative to the zip; readers must cope with both.
        with zipfile.ZipFile(sfx) as zf:
            header = sfx.read_bytes()[: zf.infolist()[0].header_offset]
        assert header.startswith(b"@") and b"PK\x03\x04" not in header
        catted = tmp_path / "catted-setup.bat"
        catted.write_bytes(header + bundle.read_bytes())
        forms["sfx-cat"] = catted
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(unpacked)
    forms["folder"] = next(unpacked.iterdir())
    forms["parent"] = unpacked
    return forms


def test_every_form_verifies_and_inspects_alike(
    rich_recipe: Path, tmp_path: Path, cache_dir: Path
) -> None:
    bundle = build(rich_recipe, tmp_path / "dist", "--sfx")
    forms = every_form(bundle, tmp_path)
    assert set(forms) == {"zip", "sfx", "sfx-cat", "folder", "parent"}
    seen = {}
    for form, path in forms.items():
        assert verify_bundle(path) == [], form
        info = inspect_bundle(path)
        seen[form] = info["packages"]
        assert info["form"] == {"sfx-cat": "sfx", "parent": "folder"}.get(form, form)
    assert all(packages == seen["zip"] for packages in seen.values())


def test_inspect(rich_recipe: Path, tmp_path: Path, cache_dir: Path) -> None:
    bundle = build(rich_recipe, tmp_path / "dist", "--no-sfx")
    info = inspect_bundle(bundle)
    json.dumps(info)  # --json prints it as it is
    assert (info["name"], info["platform"], info["form"]) == ("demo", "win-64", "zip")
    assert info["bundle_size"] == bundle.stat().st_size
    assert info["created_utc"] == "2023-11-14 22:13:20 UTC"
    names = {p["name"]: p for p in info["packages"]}
    assert sorted(names) == ["docs", "libzlib", "tool", "ucrt", "vc", "vc14_runtime"]
    assert names["tool"]["version"] == "2.0" and names["tool"]["license"] == "MIT"
    assert info["package_count"] == 6
    assert info["total_size"] == sum(p["size"] for p in info["packages"]) > 0
    assert info["micromamba"]["source"] == "package"
    assert info["micromamba"]["version"] == "2.8.1"
    assert info["recipe"]["specs"] == ["tool", "docs"]
    assert info["install"]["default_prefix"] == "C:\\envs\\demo"
    assert info["sbom_present"] is True and "sbom" not in info

    text = format_inspect(info)
    assert text.splitlines()[0].startswith("demo (win-64): envpack bundle, zip, ")
    assert "micromamba   2.8.1 (package micromamba-2.8.1-0.conda" in text
    assert "C:\\envs\\demo" in text and "tool docs" in text
    table = [line.split() for line in text.splitlines() if line.startswith("tool ")]
    assert len(table) == 1
    assert table[0][:4] == ["tool", "2.0", "h1234_0", "win-64"] and table[0][-2:] == ["KB", "MIT"]
    assert text.splitlines()[-1].startswith("6 packages, ")


def test_inspect_sbom(recipe: Path, tmp_path: Path, cache_dir: Path) -> None:
    bundle = build(recipe, tmp_path / "dist", "--no-sfx")
    with zipfile.ZipFile(bundle) as zf:
        stored = json.loads(zf.read("demo/sbom.cdx.json"))
    info = inspect_bundle(bundle, sbom=True)
    assert info["sbom"] == stored
    assert json.loads(format_inspect(info, sbom=True)) == stored
    assert stored["metadata"]["component"] == {
        "type": "application",
        "name": "demo",
        "properties": [{"name": "conda:subdir", "value": "win-64"}],
    }
    assert [c["version"] for c in stored["components"] if c["name"] == "tool"] == ["2.0"]
    components = {c["name"]: c for c in stored["components"]}
    assert components["tool"]["licenses"] == [{"expression": "MIT"}]
    assert {"alg": "SHA-256", "content": info["packages"][2]["sha256"]} in [
        h for c in stored["components"] for h in c["hashes"]
    ]

    stripped = tmp_path / "no-sbom.zip"
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(stripped, "w") as dst:
        for item in src.infolist():
            if not item.filename.endswith("sbom.cdx.json"):
                dst.writestr(item, src.read(item))
    info = inspect_bundle(stripped, sbom=True)
    assert info["sbom_present"] is False and info["sbom"] is None
    with pytest.raises(BundleError, match="has no sbom.cdx.json"):
        format_inspect(info, sbom=True)


# --------------------------------------------------------------------------- diff


def test_diff_bundles_and_locks(server: ChannelServer, tmp_path: Path, cache_dir: Path) -> None:
    old_recipe = write_recipe(tmp_path / "old.yaml", [server.url], ["tool=1.0"])
    new_recipe = write_recipe(tmp_path / "new.yaml", [server.url], ["tool", "docs"])
    old = build(old_recipe, tmp_path / "dist", "--no-sfx")
    new = build(new_recipe, tmp_path / "dist", "--no-sfx")

    result = diff(old, new)
    assert result.platform == "win-64"
    assert [r.name for r in result.added] == ["docs"]
    assert result.removed == ()
    assert [(a.version, b.version) for a, b in result.changed] == [("1.0", "2.0")]
    assert result.unchanged == 4
    assert result.micromamba is None
    assert format_diff(result).splitlines()[1:] == [
        "  + docs  0.1-pyh0",
        "  ~ tool  1.0-h1234_0 -> 2.0-h1234_0",
        "1 added, 0 removed, 1 changed, 4 unchanged",
    ]
    backwards = diff(new, old).to_dict()
    assert [p["name"] for p in backwards["removed"]] == ["docs"]
    assert backwards["changed"][0]["old"] == "2.0-h1234_0"
    json.dumps(backwards)

    # A bundle against its own lock file, and against an @EXPLICIT export of it.
    same = diff(new, new_recipe.with_name("new.lock.yaml"))
    assert same.empty and format_diff(same).endswith("no differences (6 packages)")
    with zipfile.ZipFile(old) as zf:
        env_txt = zf.read("old/env.txt").decode()
    exported = tmp_path / "exported.txt"
    exported.write_text("# platform: win-64\n" + env_txt)
    assert diff(old, exported).empty
    assert [r.name for r in diff(exported, new).added] == ["docs"]


def test_diff_same_version_other_file(tmp_path: Path) -> None:
    from envpack.lock.record import LockedPackage

    def rec(sha: str) -> LockedPackage:
        return LockedPackage(
            "a", "1", "0", 0, "win-64", "a-1-0.conda", "https://h/c/win-64/a-1-0.conda",
            "https://h/c", sha, "", 1,
        )  # fmt: skip

    for name, sha in (("x", "1" * 64), ("y", "2" * 64)):
        lock = Lock(name=name, platforms={"win-64": PlatformLock("win-64", (rec(sha),))})
        write_lock(lock, tmp_path / f"{name}.lock.yaml")
    result = diff(tmp_path / "x.lock.yaml", tmp_path / "y.lock.yaml")
    assert len(result.changed) == 1
    assert "a  1-0, same name but a different file" in format_diff(result)


def test_diff_picks_the_platform(tmp_path: Path) -> None:
    def lock_with(name: str, *platforms: str) -> Path:
        path = tmp_path / f"{name}.lock.yaml"
        write_lock(Lock(name=name, platforms={p: PlatformLock(p, ()) for p in platforms}), path)
        return path

    both = lock_with("both", "win-64", "linux-64")
    assert diff(both, lock_with("again", "linux-64", "win-64")).platform == "win-64"
    assert diff(both, lock_with("lin", "linux-64")).platform == "linux-64"
    assert diff(both, both, platform="linux-64").platform == "linux-64"
    unix = lock_with("unix", "linux-64", "osx-64")
    with pytest.raises(LockError, match="share no single platform"):
        diff(unix, lock_with("unix2", "osx-64", "linux-64"))
    with pytest.raises(LockError, match="has no win-arm64 environment"):
        diff(both, both, platform="win-arm64")


# --------------------------------------------------------------------------- rebuild


def test_lock_from_bundle_is_the_lock(recipe: Path, tmp_path: Path, cache_dir: Path) -> None:
    bundle = build(recipe, tmp_path / "dist", "--no-sfx")
    lock, manifest = lock_from_bundle(bundle)
    original = read_lock(recipe.with_name("demo.lock.yaml"))
    assert lock.platforms == original.platforms
    assert (lock.name, lock.channels, lock.specs) == ("demo", original.channels, original.specs)
    assert manifest["format"] == "envpack-bundle" and manifest["platform"] == "win-64"


def test_rebuild_inputs(rich_recipe: Path, tmp_path: Path, cache_dir: Path) -> None:
    bundle = build(rich_recipe, tmp_path / "dist", "--no-sfx")
    inputs = rebuild_inputs(bundle)
    assert inputs.post_install == (("hello.bat", b"@echo hello\r\n"),)
    names = [name for name, _ in inputs.tools]
    assert names == ["micromamba.exe", "msvcp140.dll", "vcruntime140.dll", "vcruntime140_1.dll"]
    assert dict(inputs.tools)["micromamba.exe"].startswith(b"MZ fake micromamba 2.8.1")


@pytest.mark.parametrize("cache", ["same", "fresh"])
def test_rebuild_from_bundle_is_byte_identical(
    rich_recipe: Path,
    tmp_path: Path,
    cache_dir: Path,
    server: ChannelServer,
    monkeypatch: pytest.MonkeyPatch,
    cache: str,
) -> None:
    bundle = build(rich_recipe, tmp_path / "dist", "--sfx")
    sfx = bundle.with_name("demo-win-64-setup.bat")
    if cache == "fresh":
        # Only the channel has the packages now; the recipe and its lock are gone too.
        monkeypatch.setenv("ENVPACK_CACHE_DIR", str(tmp_path / "other-cache"))
    old = tmp_path / "archive"
    old.mkdir()
    shutil.move(bundle, old / bundle.name)
    for leftover in (rich_recipe, rich_recipe.with_name("demo.lock.yaml"), tmp_path / "hello.bat"):
        leftover.unlink()
    hits = dict(server.hits)
    result = run_cli("build", "--from", old / bundle.name, "-o", tmp_path / "again", "--sfx")
    assert result.exit_code == 0, result.output
    again = tmp_path / "again"
    assert file_sha256(again / bundle.name) == file_sha256(old / bundle.name)
    assert file_sha256(again / sfx.name) == file_sha256(sfx)
    fetched = {k for k, v in server.hits.items() if v != hits.get(k)}
    assert bool(fetched) == (cache == "fresh")
    assert not any("micromamba" in k for k in fetched)  # taken from the old bundle


def test_rebuild_offline_when_cached(recipe: Path, tmp_path: Path, cache_dir: Path) -> None:
    bundle = build(recipe, tmp_path / "dist", "--no-sfx")
    result = run_cli("build", "--from", bundle, "-o", tmp_path / "again", "--no-sfx", "--offline")
    assert result.exit_code == 0, result.output
    assert file_sha256(tmp_path / "again" / bundle.name) == file_sha256(bundle)


def test_rebuild_from_a_folder(recipe: Path, tmp_path: Path, cache_dir: Path) -> None:
    bundle = build(recipe, tmp_path / "dist", "--no-sfx")
    forms = every_form(bundle, tmp_path)
    result = run_cli("build", "--from", forms["parent"], "-o", tmp_path / "again", "--no-sfx")
    assert result.exit_code == 0, result.output
    assert file_sha256(tmp_path / "again" / bundle.name) == file_sha256(bundle)


# --------------------------------------------------------------------------- CLI


def test_cli_inspect_verify_diff(recipe: Path, tmp_path: Path, cache_dir: Path) -> None:
    bundle = build(recipe, tmp_path / "dist", "--no-sfx")
    result = run_cli("inspect", bundle)
    assert result.exit_code == 0, result.output
    assert any(line.split()[:2] == ["tool", "2.0"] for line in result.output.splitlines())
    result = run_cli("inspect", bundle, "--json")
    assert json.loads(result.output)["name"] == "demo"
    result = run_cli("inspect", bundle, "--sbom")
    assert json.loads(result.output)["bomFormat"] == "CycloneDX"

    result = run_cli("verify", bundle)
    assert result.exit_code == 0 and result.output.strip() == f"{bundle}: OK"
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(damaged, "w") as dst:
        for item in src.infolist():
            if not item.filename.endswith("/env.txt"):
                dst.writestr(item, src.read(item))
        dst.writestr("demo/stray.txt", b"x")
    result = run_cli("verify", damaged)
    assert result.exit_code == 8
    assert "  - missing file: env.txt (listed in the manifest)" in result.output
    assert "  - extra file: stray.txt (not in the manifest)" in result.output
    result = run_cli("verify", damaged, "--json")
    assert result.exit_code == 8 and len(json.loads(result.output)["problems"]) == 2

    result = run_cli("diff", bundle, recipe.with_name("demo.lock.yaml"))
    assert result.exit_code == 0 and "no differences" in result.output
    result = run_cli("diff", bundle, bundle, "--json")
    assert json.loads(result.output)["unchanged"] == 6

    not_a_bundle = tmp_path / "notes.txt"
    not_a_bundle.write_text("hi")
    result = run_cli("inspect", not_a_bundle)
    assert result.exit_code == 7 and "not a bundle" in result.output


def test_7z_and_split_bundles_verify(recipe: Path, tmp_path: Path, cache_dir: Path) -> None:
    """The same bundle rewritten by formats.py as 7z and as split parts reads and verifies the
    same through open_bundle (formats registers its readers there)."""
    from envpack.archive.write import write_bundle
    from envpack.bundle.manifest import Entry

    bundle = build(recipe, tmp_path / "dist", "--no-sfx")
    with zipfile.ZipFile(bundle) as zf:
        entries = [Entry.from_bytes(i.filename.split("/", 1)[1], zf.read(i)) for i in zf.infolist()]
    seven = write_bundle(tmp_path / "7z", "demo-win-64", "demo", entries, 1700000000, fmt="7z")[0]
    parts = write_bundle(
        tmp_path / "split", "demo-win-64", "demo", entries, 1700000000, split=1 << 20
    )
    expected = inspect_bundle(bundle)["packages"]
    for path in (seven, parts[0], tmp_path / "split"):
        assert verify_bundle(path) == [], path
        assert inspect_bundle(path)["packages"] == expected
    # A damaged package inside the 7z is still found, by name.
    tool = next(e for e in entries if e.arcname.startswith("channel/win-64/tool-"))
    assert tool.data is not None and b"tool" in tool.data
    bad = [
        Entry.from_bytes(e.arcname, e.data.replace(b"tool", b"TOOL")) if e is tool and e.data else e
        for e in entries
    ]
    broken = write_bundle(tmp_path / "bad7z", "demo-win-64", "demo", bad, 1700000000, fmt="7z")[0]
    problems = verify_bundle(broken)
    assert problems and all(tool.arcname in p for p in problems), problems


def test_diff_refuses_what_it_cannot_read(recipe: Path, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    with pytest.raises(EnvpackError, match="neither a bundle nor a lock file"):
        diff(notes, recipe)
    with pytest.raises(BundleError, match="no envpack.json here or in a folder below"):
        diff(tmp_path, tmp_path)
