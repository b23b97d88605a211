"""verify, inspect, diff and build --from of bundles with wheels (a local 127.0.0.1 index)."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from envpack.errors import BundleError
from envpack.snapshot.rebuild import extract_wheels, lock_from_bundle
from envpack.snapshot.verify import verify_bundle
from pypi_built import build_wheel_bundle
from pypi_index import IndexServer, standard_dists, write_index

from conftest import run_cli

pytest.importorskip("uv")


@pytest.fixture
def index(tmp_path: Path) -> Iterator[IndexServer]:
    with IndexServer(write_index(tmp_path / "index", standard_dists())) as srv:
        yield srv


def _rewrite(bundle: Path, out: Path, change: dict[str, bytes | None]) -> Path:
    """A copy of the zip with members replaced (bytes) or left out (None)."""
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename in change:
                data = change[info.filename]
                if data is not None:
                    dst.writestr(info, data)
            else:
                dst.writestr(info, src.read(info))
    return out


def test_verify_wheels(index: IndexServer, tmp_path: Path, cache_dir: Path) -> None:
    bundle = build_wheel_bundle(tmp_path, index)
    assert verify_bundle(bundle) == []
    result = run_cli("verify", str(bundle))
    assert result.exit_code == 0, result.output

    whl = "pipenv/wheels/beta-1.2-py3-none-any.whl"
    with zipfile.ZipFile(bundle) as zf:
        data = bytearray(zf.read(whl))
        txt = zf.read("pipenv/wheels.txt").decode()
    data[len(data) // 2] ^= 0x01
    flipped = _rewrite(bundle, tmp_path / "flipped.zip", {whl: bytes(data)})
    problems = verify_bundle(flipped)
    assert any("wheels/beta-1.2-py3-none-any.whl" in p and "lock" in p for p in problems), problems

    lines = [line for line in txt.splitlines(keepends=True) if not line.startswith("gamma==")]
    assert len(lines) == 2
    cut = _rewrite(bundle, tmp_path / "cut.zip", {"pipenv/wheels.txt": "".join(lines).encode()})
    problems = verify_bundle(cut)
    assert any(p.startswith("wheels.txt:") for p in problems), problems

    gone = _rewrite(bundle, tmp_path / "gone.zip", {whl: None})
    problems = verify_bundle(gone)
    assert any("wheels/beta-1.2-py3-none-any.whl: missing" in p for p in problems), problems


def test_inspect_shows_wheels(index: IndexServer, tmp_path: Path, cache_dir: Path) -> None:
    bundle = build_wheel_bundle(tmp_path, index)
    result = run_cli("inspect", str(bundle), "--json")
    assert result.exit_code == 0, result.output
    wheels = json.loads(result.output)["wheels"]
    assert [(w["name"], w["version"], w["filename"]) for w in wheels] == [
        ("alpha", "1.1", "alpha-1.1-cp39-cp39-win_amd64.whl"),
        ("beta", "1.2", "beta-1.2-py3-none-any.whl"),
        ("gamma", "0.5", "gamma-0.5-py3-none-any.whl"),
    ]
    with zipfile.ZipFile(bundle) as zf:
        size = zf.getinfo("pipenv/wheels/beta-1.2-py3-none-any.whl").file_size
    assert wheels[1]["size"] == size
    text = run_cli("inspect", str(bundle))
    assert text.exit_code == 0, text.output
    assert re.search(r"^beta\s+1\.2\s+beta-1\.2-py3-none-any\.whl\s+\d+ B$", text.output, re.M)
    assert ", 3 wheels (installed by pip after them)" in text.output


def test_diff_reports_wheels(index: IndexServer, tmp_path: Path, cache_dir: Path) -> None:
    old = build_wheel_bundle(tmp_path / "a", index, wheels=("beta==1.0",))
    new = build_wheel_bundle(tmp_path / "b", index, wheels=("alpha",))
    result = run_cli("diff", str(old), str(new), "--json")
    assert result.exit_code == 0, result.output
    wheels = json.loads(result.output)["wheels"]
    assert wheels["added"] == [
        {"name": "alpha", "version": "1.1", "filename": "alpha-1.1-cp39-cp39-win_amd64.whl"}
    ]
    assert wheels["removed"] == []
    assert wheels["changed"] == [
        {
            "name": "beta",
            "old": "1.0",
            "new": "1.2",
            "old_filename": "beta-1.0-py3-none-any.whl",
            "new_filename": "beta-1.2-py3-none-any.whl",
        }
    ]
    text = run_cli("diff", str(new), str(old))
    assert "  - pip:alpha  1.1 (alpha-1.1-cp39-cp39-win_amd64.whl)" in text.output
    assert "  ~ pip:beta   beta-1.2-py3-none-any.whl -> beta-1.0-py3-none-any.whl" in text.output
    assert "wheels: 0 added, 1 removed, 1 changed" in text.output
    same = run_cli("diff", str(new), str(new))
    assert "no differences" in same.output


def _same_bytes(a: Path, b: Path) -> bool:
    return hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


def test_build_from_wheel_bundle_is_byte_identical(
    index: IndexServer, tmp_path: Path, cache_dir: Path
) -> None:
    bundle = build_wheel_bundle(tmp_path, index)
    out = tmp_path / "again"
    result = run_cli("build", "--from", str(bundle), "-o", str(out))
    assert result.exit_code == 0, result.output
    [again] = out.glob("*.zip")
    assert again.name == bundle.name
    assert _same_bytes(again, bundle)


def test_extract_wheels_checks_the_lock(
    index: IndexServer, tmp_path: Path, cache_dir: Path
) -> None:
    bundle = build_wheel_bundle(tmp_path, index)
    lock, _ = lock_from_bundle(bundle)
    wheels = lock.platforms["win-64"].pypi
    files = extract_wheels(bundle, wheels, tmp_path / "x")
    assert sorted(p.name for p in files.values()) == [
        "alpha-1.1-cp39-cp39-win_amd64.whl",
        "beta-1.2-py3-none-any.whl",
        "gamma-0.5-py3-none-any.whl",
    ]
    whl = "pipenv/wheels/gamma-0.5-py3-none-any.whl"
    with zipfile.ZipFile(bundle) as zf:
        data = bytearray(zf.read(whl))
    data[10] ^= 0x01
    bad = _rewrite(bundle, tmp_path / "bad.zip", {whl: bytes(data)})
    with pytest.raises(BundleError, match=r"wheels/gamma-0\.5-py3-none-any\.whl differs from the"):
        extract_wheels(bad, wheels, tmp_path / "y")


def test_build_from_wheel_bundle_needs_no_index(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with IndexServer(write_index(tmp_path / "index", standard_dists())) as index:
        bundle = build_wheel_bundle(tmp_path, index)
    # The index is gone and the cache is empty: the wheels can only come from the old bundle
    # (the conda packages from the test channel, still on disk).
    monkeypatch.setenv("ENVPACK_CACHE_DIR", str(tmp_path / "fresh-cache"))
    out = tmp_path / "again"
    result = run_cli("build", "--from", str(bundle), "-o", str(out))
    assert result.exit_code == 0, result.output
    [again] = out.glob("*.zip")
    assert _same_bytes(again, bundle)
    assert verify_bundle(again) == []
