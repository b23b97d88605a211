"""The cache is private: rattler's repodata cache keeps full channel URLs, credentials included
(issue 13, item 9)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from conftest import run_cli, write_recipe
from http_server import ChannelServer

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")


def readable_by_others(path: Path, root: Path) -> bool:
    """Whether another user could read ``path``: every folder from root down must let them in."""
    for folder in [root, *reversed(path.relative_to(root).parents[:-1])]:
        full = folder if folder == root else root / folder
        if not full.stat().st_mode & (stat.S_IXGRP | stat.S_IXOTH):
            return False
    return bool(path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH))


def test_credentials_in_the_repodata_cache_are_private(
    tmp_path: Path, server: ChannelServer, cache_dir: Path
) -> None:
    cache_dir.mkdir(mode=0o755)
    os.chmod(cache_dir, 0o755)  # as a user's umask would leave an existing cache folder
    url = server.url.replace("http://", "http://alice:s3cret-pw@")
    recipe = write_recipe(tmp_path / "demo.yaml", [url], ["tool"])
    result = run_cli("build", recipe, "-o", tmp_path / "dist", "--no-sfx")
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    holding = [p for p in cache_dir.rglob("*") if p.is_file() and b"s3cret-pw" in p.read_bytes()]
    for path in holding:
        assert not readable_by_others(path, cache_dir), path
    # Nothing the user gets to keep or share holds the password.
    for path in [*tmp_path.joinpath("dist").rglob("*"), tmp_path / "demo.lock.yaml"]:
        if path.is_file():
            assert b"s3cret-pw" not in path.read_bytes(), path
    assert "s3cret-pw" not in result.output
