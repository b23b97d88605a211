"""The bundle is written while its packages arrive (issue 18): a server holds one package's
response until the test has seen the packages before it written into the staged zip; the bytes
are those of a warm build; a package failing mid-write, or Ctrl-C then, leaves nothing behind."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from built_bundle import entries_from_zip
from envpack.archive.zip import write_zip_stream
from envpack.options import BuildOptions, LockOptions
from envpack.pipeline import build

from conftest import run_cli, write_recipe
from http_server import ChannelServer, _Handler

# Members in writing order: channel/noarch/docs-..., channel/win-64/libzlib-..., then tool-2.0
# (held), ucrt, vc, vc14_runtime. tool is in no micromamba tool, which are fetched first.
HELD = "tool-2.0-h1234_0.conda"
BEFORE = "libzlib-1.3.1-h2466b09_2.conda"
WAIT = 120.0  # seconds: generous, for a busy 2-core CI box; never reached when things work


class HoldingServer(ChannelServer):
    """Serves the channel, but holds every request for ``HELD`` until ``release`` is set."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.RequestHandlerClass = _Holding
        self.asked = threading.Event()  # the held package was requested
        self.release = threading.Event()

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        super().__exit__(*exc)


class _Holding(_Handler):
    server: HoldingServer

    def do_GET(self) -> None:
        if self.path.rsplit("/", 1)[-1] == HELD:
            self.server.asked.set()
            self.server.release.wait(WAIT)
        super().do_GET()


@pytest.fixture
def holding(channel_copy: Path) -> Iterator[HoldingServer]:
    with HoldingServer(channel_copy) as srv:
        yield srv


@pytest.fixture
def locked_recipe(tmp_path: Path, holding: HoldingServer, cache_dir: Path) -> Path:
    recipe = write_recipe(tmp_path / "demo.yaml", [holding.url], ["tool", "docs"])
    result = run_cli("lock", recipe)  # repodata only: nothing is held yet
    assert result.exit_code == 0, result.output
    return recipe


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` (a deterministic state, not a duration) until it holds."""
    done = threading.Event()
    for _ in range(int(WAIT / 0.05)):
        if condition():
            return
        done.wait(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def staged_zip(out: Path) -> Path | None:
    found = sorted(out.glob(".envpack-*.tmp/demo-win-64.zip"))
    return found[0] if found else None


def written_before_held(out: Path, package: bytes) -> bool:
    """The staged zip holds the whole package that comes just before the held one."""
    path = staged_zip(out)
    return path is not None and package in path.read_bytes()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_in_thread(func: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    failures: list[BaseException] = []

    def run() -> None:
        try:
            func()
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, failures


def options(recipe: Path, out: Path, cache: Path) -> BuildOptions:
    lock = LockOptions(recipe=recipe, mode="frozen", cache_dir=cache)
    return BuildOptions(lock=lock, output_dir=out, timeout=WAIT * 2)


def test_zip_is_written_while_a_package_is_still_held(
    locked_recipe: Path, holding: HoldingServer, channel_copy: Path, tmp_path: Path, cache_dir: Path
) -> None:
    out = tmp_path / "cold"
    before = (channel_copy / "win-64" / BEFORE).read_bytes()
    thread, failures = run_in_thread(lambda: build(options(locked_recipe, out, cache_dir)))
    assert holding.asked.wait(WAIT)
    # The held package has not arrived, yet the packages before it are in the zip already.
    wait_until(lambda: written_before_held(out, before), f"{BEFORE} in the staged zip")
    assert not (out / "demo-win-64.zip").exists()
    assert not list(cache_dir.rglob(HELD))
    holding.release.set()
    thread.join(WAIT)
    assert not thread.is_alive() and failures == []
    assert sorted(p.name for p in out.iterdir()) == ["demo-win-64.zip"]
    assert run_cli("verify", out / "demo-win-64.zip").exit_code == 0

    # A warm build of the same lock (every package cached, none fetched) gives the same bytes.
    hits = dict(holding.hits)
    warm = tmp_path / "warm"
    result = run_cli("build", locked_recipe, "--frozen", "-o", warm)
    assert result.exit_code == 0, result.output
    assert dict(holding.hits) == hits
    assert sha(warm / "demo-win-64.zip") == sha(out / "demo-win-64.zip")


def test_sfx_of_a_streamed_build_is_the_zip_behind_its_header(
    locked_recipe: Path, holding: HoldingServer, tmp_path: Path, cache_dir: Path
) -> None:
    holding.release.set()
    out = tmp_path / "o"
    result = run_cli("build", locked_recipe, "--frozen", "-o", out, "--sfx")
    assert result.exit_code == 0, result.output
    zip_bytes = (out / "demo-win-64.zip").read_bytes()
    bat = (out / "demo-win-64-setup.bat").read_bytes()
    header_len = bat.index(b"PK\x03\x04")
    assert bat[:header_len].startswith(b"@") and zip_bytes.startswith(b"PK\x03\x04")
    # The members are the zip's bytes behind the header; only the central directory moved.
    central = zip_bytes.index(b"PK\x01\x02")
    assert len(bat) == header_len + len(zip_bytes)
    assert bat[header_len : header_len + central] == zip_bytes[:central]
    assert run_cli("verify", out / "demo-win-64-setup.bat").exit_code == 0
    # The same bytes as writing the .bat in full from the same members.
    entries, epoch, top = entries_from_zip(out / "demo-win-64.zip", tmp_path / "members")
    full = io.BytesIO()
    write_zip_stream(full, top, entries, epoch, header=bat[:header_len])
    assert full.getvalue() == bat


def test_a_package_failing_mid_write_leaves_the_folder_as_it_was(
    locked_recipe: Path, holding: HoldingServer, channel_copy: Path, tmp_path: Path, cache_dir: Path
) -> None:
    out = tmp_path / "dist"
    out.mkdir()
    (out / "demo-win-64.zip").write_bytes(b"the old bundle")
    before = (channel_copy / "win-64" / BEFORE).read_bytes()
    thread, failures = run_in_thread(lambda: build(options(locked_recipe, out, cache_dir)))
    assert holding.asked.wait(WAIT)
    wait_until(lambda: written_before_held(out, before), f"{BEFORE} in the staged zip")
    holding.faults.status[HELD] = [404] * 20  # the held package is gone when it is answered
    holding.release.set()
    thread.join(WAIT)
    assert not thread.is_alive()
    assert [type(e).__name__ for e in failures] == ["DownloadError"]
    assert str(failures[0]) == (
        f"{HELD}: not found (HTTP 404) at {holding.url}/win-64/{HELD}; the channel may have "
        "removed it: lock again"
    )
    assert sorted(p.name for p in out.iterdir()) == ["demo-win-64.zip"]  # no staging folder
    assert (out / "demo-win-64.zip").read_bytes() == b"the old bundle"


def test_the_cli_says_the_same_and_exits_5(
    locked_recipe: Path, holding: HoldingServer, tmp_path: Path, cache_dir: Path
) -> None:
    holding.faults.status[HELD] = [404] * 20
    holding.release.set()
    out = tmp_path / "dist"
    result = run_cli("build", locked_recipe, "--frozen", "-o", out, "--sfx")
    assert result.exit_code == 5, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        f"envpack: error: {HELD}: not found (HTTP 404) at {holding.url}/win-64/{HELD}; "
        "the channel may have removed it: lock again"
    )
    assert not out.exists() or list(out.iterdir()) == []


def test_ctrl_c_while_writing_exits_130_and_leaves_nothing(
    locked_recipe: Path, holding: HoldingServer, channel_copy: Path, tmp_path: Path, cache_dir: Path
) -> None:
    out = tmp_path / "dist"
    before = (channel_copy / "win-64" / BEFORE).read_bytes()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENVPACK_")}
    env.update(ENVPACK_CACHE_DIR=str(cache_dir), NO_PROXY="127.0.0.1")
    cmd = [sys.executable, "-m", "envpack", "build", str(locked_recipe), "--frozen", "-o", str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert holding.asked.wait(WAIT)
        wait_until(lambda: written_before_held(out, before), f"{BEFORE} in the staged zip")
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=WAIT)
    finally:
        proc.kill()
        holding.release.set()
    assert proc.returncode == 130, stderr.decode()
    assert stderr.decode().splitlines()[-1] == "envpack: interrupted"
    assert stdout == b""
    assert list(out.iterdir()) == []  # the staged zip is gone
    # No part, lock or temp file among the cached packages, and the held one never arrived.
    # (The solver's repodata cache keeps lock files of its own.)
    ends = (".part", ".lock", ".tmp", HELD)
    left = [p for p in cache_dir.rglob("*") if p.name.endswith(ends) and "repodata" not in p.parts]
    assert left == []
