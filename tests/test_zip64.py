"""ZIP64: the bundle and its self-extracting form stay readable once offsets and counts need it.

Real >4 GiB bundles are a benchmark matter; here the zip writer's ZIP64 thresholds are lowered
so every entry and the central directory take the ZIP64 path, and real libarchive (bsdtar, the
library of Windows' tar.exe) must still read both forms. Plain concatenation would fail exactly
here.
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

import envpack.archive.zipwriter as zipwriter

from channel_factory import file_sha256
from conftest import run_cli


@pytest.mark.skipif(
    shutil.which("bsdtar") is None, reason="bsdtar (libarchive-tools) not installed"
)
def test_zip64_bundle_and_sfx_read_by_libarchive(
    recipe: Path, tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(zipwriter, "ZIP64_AT", 1 << 10)
    monkeypatch.setattr(zipwriter, "ZIP64_COUNT_AT", 4)
    out = tmp_path / "out"
    result = run_cli("build", recipe, "-o", out, "--sfx")
    assert result.exit_code == 0, result.output
    bundle, sfx = out / "demo-win-64.zip", out / "demo-win-64-setup.bat"
    assert b"PK\x06\x06" in bundle.read_bytes()  # a ZIP64 end-of-central-directory record
    for archive in (bundle, sfx):
        dest = tmp_path / f"x-{archive.suffix[1:]}"
        dest.mkdir()
        subprocess.run(["bsdtar", "-xf", str(archive), "-C", str(dest)], check=True, timeout=60)
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                extracted = dest / info.filename
                assert extracted.read_bytes() == zf.read(info), info.filename
    a = sorted(p.relative_to(tmp_path / "x-zip") for p in (tmp_path / "x-zip").rglob("*"))
    b = sorted(p.relative_to(tmp_path / "x-bat") for p in (tmp_path / "x-bat").rglob("*"))
    assert a == b and len(a) > 10
    tool = tmp_path / "x-bat" / "demo" / "channel" / "win-64" / "tool-2.0-h1234_0.conda"
    assert file_sha256(tool) == file_sha256(
        tmp_path / "x-zip" / "demo" / "channel" / "win-64" / tool.name
    )
