"""The 7z code uses py7zr internals: an unsupported py7zr, or any failure inside py7zr, is
envpack's own BundleError with one line naming py7zr, never a traceback."""

from __future__ import annotations

from pathlib import Path

import py7zr
import pytest

from envpack.archive import open_bundle, write_bundle
from envpack.bundle.manifest import Entry
from envpack.errors import BundleError

ENTRIES = [
    Entry.from_bytes("pkgs/a-1-0.tar.bz2", b"BZh9" + b"\0" * 100),
    Entry.from_bytes("env.txt", b"@EXPLICIT\n"),
]


@pytest.mark.parametrize("version", ["2.0.0", "1.0.9", "0.22.0", "garbage"])
def test_unsupported_py7zr_is_refused_before_writing(
    version: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(py7zr, "__version__", version)
    with pytest.raises(BundleError) as err:
        write_bundle(tmp_path / "o", "b", "b", ENTRIES, 1700000000, "7z")
    assert f"py7zr {version} is not a release envpack's 7z code supports" in str(err.value)
    assert not (tmp_path / "o" / "b.7z").exists()


def test_unsupported_py7zr_is_refused_when_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seven = write_bundle(tmp_path, "b", "b", ENTRIES, 1700000000, "7z")[0]
    monkeypatch.setattr(py7zr, "__version__", "2.1.0")
    with pytest.raises(BundleError, match=r"py7zr 2\.1\.0 is not a release"):
        open_bundle(seven)


def test_py7zr_internal_failure_is_a_bundle_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise AttributeError("'Header' object has no attribute 'initialize'")

    monkeypatch.setattr(py7zr.SevenZipFile, "set_encoded_header_mode", broken)
    with pytest.raises(BundleError) as err:
        write_bundle(tmp_path / "o", "b", "b", ENTRIES, 1700000000, "7z")
    assert str(err.value) == (
        "py7zr 1.1.4 failed writing the 7z ('Header' object has no attribute 'initialize'); "
        "use --format zip"
    )
    assert list((tmp_path / "o").iterdir()) == []
