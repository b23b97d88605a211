"""The warning for what a lock file import leaves out names the entry and the reason (pip
packages are wheels in the bundle now, so "not a conda package" was no longer the reason)."""

from __future__ import annotations

from pathlib import Path

from envpack.lock.importers import skipped_note


def test_a_category_conda_lock_leaves_out() -> None:
    assert skipped_note(Path("/p/conda-lock.yml"), "category docs: six 1.16 (win-64)") == (
        "warning: conda-lock.yml: skipped category docs: six 1.16 (win-64) "
        "(conda-lock installs the main and dev categories only)"
    )


def test_another_package_manager() -> None:
    assert skipped_note(Path("conda-lock.yml"), "npm: left-pad 1.3 (win-64)") == (
        "warning: conda-lock.yml: skipped npm: left-pad 1.3 (win-64) "
        "(envpack ships conda packages and pip wheels only)"
    )
