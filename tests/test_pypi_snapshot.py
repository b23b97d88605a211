"""verify, inspect, diff and build --from of bundles with wheels (a local 127.0.0.1 index)."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

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
