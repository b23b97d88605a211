"""A full disk exits with one code per place (errors.py): 5 when the package cache cannot be
written, 7 when an output (bundle, lock file) cannot; always one line, never a traceback."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

import envpack.fetch.partfile
from envpack.errors import BundleError
from envpack.lock.lockfile import write_atomic

from conftest import run_cli


def enospc(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("envpack: error: ")]


def test_cache_disk_full_exits_5(
    recipe: Path, tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_cli("lock", recipe).exit_code == 0
    monkeypatch.setattr(envpack.fetch.partfile.Digest, "update", enospc)
    result = run_cli("build", recipe, "-o", tmp_path / "out")
    assert result.exit_code == 5, result.output
    [line] = error_lines(result.stderr)
    assert "disk full while writing" in line and "free some space" in line
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_lock_file_disk_full_is_a_bundle_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "replace", enospc)
    target = tmp_path / "env.lock.yml"
    with pytest.raises(BundleError) as err:
        write_atomic(target, b"version: 1\n")
    assert err.value.exit_code == 7
    assert str(err.value) == f"disk full while writing {target}; free some space"
    assert list(tmp_path.iterdir()) == []


def test_lock_file_unwritable_folder_is_a_bundle_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(BundleError, match=r"^cannot write to .*file"):
        write_atomic(blocker / "env.lock.yml", b"version: 1\n")
