"""A failed build leaves the output folder exactly as it was (issue 13, item 11)."""

from __future__ import annotations

import errno
import hashlib
from pathlib import Path
from typing import Any

import pytest

import envpack.archive.write

from conftest import run_cli, write_recipe
from http_server import ChannelServer


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("form", ["whole", "split"])
def test_disk_full_in_the_sfx_keeps_the_old_pair(
    form: str,
    tmp_path: Path,
    server: ChannelServer,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recipe = write_recipe(tmp_path / "demo.yaml", [server.url], ["tool"])
    dist = tmp_path / "dist"
    split = ["--split", "1M"] if form == "split" else []
    assert run_cli("build", recipe, "-o", dist, "--sfx", *split).exit_code == 0
    before = snapshot(dist)
    if form == "whole":
        assert set(before) == {"demo-win-64.zip", "demo-win-64-setup.bat"}
    else:
        assert {"demo-win-64/demo-win-64.zip.001", "demo-win-64-setup/join.bat"} <= set(before)

    write_recipe(recipe, [server.url], ["tool", "docs"])  # a different bundle this time
    real = envpack.archive.write.write_zip_stream

    # A whole .bat is the zip copied behind its header (archive.sfxcopy); one in parts is
    # written again from the entries: the disk fills up in either.
    def full_disk_copying(zip_path: Path, dst: Any, header: bytes, advance: Any = None) -> None:
        dst.write(header)
        raise OSError(errno.ENOSPC, "No space left on device")

    def full_disk_writing(
        fp: Any, top: str, entries: Any, epoch: int, header: bytes = b"", advance: Any = None
    ) -> None:
        if header:
            fp.write(header)
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fp, top, entries, epoch, header, advance)

    monkeypatch.setattr(envpack.archive.write, "write_sfx_from_zip", full_disk_copying)
    monkeypatch.setattr(envpack.archive.write, "write_zip_stream", full_disk_writing)
    result = run_cli("build", recipe, "-o", dist, "--sfx", *split)
    assert result.exit_code == 7, result.output
    assert "disk full while writing" in result.stderr
    assert "demo-win-64-setup.bat" in result.stderr
    assert snapshot(dist) == before  # the old zip and the old .bat, nothing new, no temp
    names = sorted(p.name for p in dist.iterdir())
    if form == "whole":
        assert names == ["demo-win-64-setup.bat", "demo-win-64.zip"]
    else:
        assert names == ["demo-win-64", "demo-win-64-setup"]


def test_a_killed_builds_staging_folder_is_removed_by_the_next(
    tmp_path: Path, server: ChannelServer, cache_dir: Path
) -> None:
    recipe = write_recipe(tmp_path / "demo.yaml", [server.url], ["tool"])
    dist = tmp_path / "dist"
    dist.mkdir()
    # What kill -9 leaves: a staging folder whose process is gone (pid beyond pid_max).
    dead = dist / ".envpack-4999999-abc123.tmp"
    dead.mkdir()
    (dead / "demo-win-64.zip").write_bytes(b"half")
    # A build running right now (this process) keeps its own.
    alive = dist / f".envpack-{__import__('os').getpid()}-live.tmp"
    alive.mkdir()
    assert run_cli("build", recipe, "-o", dist, "--no-sfx").exit_code == 0
    assert not dead.exists()
    assert alive.exists()
    assert sorted(p.name for p in dist.iterdir()) == [alive.name, "demo-win-64.zip"]
