"""A real bundle built through the CLI from the standard test channel, as Entries that the
archive writers can write again (shared by the 7z, split and join.bat tests)."""

from __future__ import annotations

import calendar
import hashlib
import json
import random
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from envpack.bundle.manifest import Entry

from conftest import run_cli, write_recipe
from http_server import ChannelServer


@dataclass(frozen=True)
class Built:
    zip_path: Path
    entries: list[Entry]
    epoch: int
    top: str
    manifest: dict[str, object]


def entries_from_zip(zip_path: Path, dest: Path) -> tuple[list[Entry], int, str]:
    """The zip's members as file-backed Entries (as core hands them over), its epoch and top."""
    entries: list[Entry] = []
    with zipfile.ZipFile(zip_path) as zf:
        infos = zf.infolist()
        top = infos[0].filename.split("/", 1)[0]
        epoch = calendar.timegm((*infos[0].date_time, 0, 0, 0))
        for info in infos:
            rel = info.filename.split("/", 1)[1]
            path = dest / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            data = zf.read(info)
            path.write_bytes(data)
            entries.append(Entry.from_file(rel, path, len(data), hashlib.sha256(data).hexdigest()))
    return entries, epoch, top


def build_bundle(base: Path, std_channel: Path) -> Built:
    channel = base / "served"
    shutil.copytree(std_channel, channel)
    with ChannelServer(channel) as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENVPACK_CACHE_DIR", str(base / "cache"))
        mp.delenv("SOURCE_DATE_EPOCH", raising=False)
        recipe = write_recipe(base / "demo.yaml", [server.url], ["tool", "docs"])
        result = run_cli("build", recipe, "-o", base / "dist", "--no-sfx")
        assert result.exit_code == 0, result.output
    zip_path = base / "dist" / "demo-win-64.zip"
    entries, epoch, top = entries_from_zip(zip_path, base / "members")
    with zipfile.ZipFile(zip_path) as zf:
        manifest = json.loads(zf.read(f"{top}/envpack.json"))
    return Built(zip_path, entries, epoch, top, manifest)


def random_entry(base: Path, arcname: str, size: int, seed: str = "x") -> Entry:
    path = base / arcname.replace("/", "_")
    data = random.Random(seed).randbytes(size)
    path.write_bytes(data)
    return Entry.from_file(arcname, path, size, hashlib.sha256(data).hexdigest())
