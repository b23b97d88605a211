"""A different --micromamba-exe changes the lock (its sha256 is locked); --locked then refuses the
old one."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml

from conftest import run_cli


def test_a_new_micromamba_exe_relocks(recipe: Path, tmp_path: Path, cache_dir: Path) -> None:
    old, new = tmp_path / "old.exe", tmp_path / "new.exe"
    old.write_bytes(b"MZ old")
    new.write_bytes(b"MZ new")
    assert run_cli("lock", recipe, "--micromamba-exe", old).exit_code == 0
    result = run_cli("build", recipe, "--micromamba-exe", new, "-o", tmp_path / "o", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["lock_changed"] is True
    lock = yaml.safe_load(recipe.with_name("demo.lock.yaml").read_text())
    assert (
        lock["platforms"]["win-64"]["micromamba"]["file"]["sha256"]
        == hashlib.sha256(b"MZ new").hexdigest()
    )
    assert run_cli("build", recipe, "--micromamba-exe", old, "--locked").exit_code == 4
