from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

sys.path.insert(0, str(Path(__file__).parent))

from channel_factory import REAL_MICROMAMBA, SHARED_DATA, make_channel, standard_packages
from http_server import ChannelServer, no_proxy_env

no_proxy_env()

_exit_status: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _exit_status.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # py-rattler's runtime threads crash CPython's finalisation in about a fifth of the processes
    # that solved (see envpack.cli.entry); the test process must not lose its exit status to it.
    if _exit_status:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status[-1])


@pytest.fixture(scope="session")
def std_channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real indexed channel with the standard small package graph (read-only: copy to change)."""
    return make_channel(tmp_path_factory.mktemp("std") / "channel", standard_packages())


@pytest.fixture
def channel_copy(std_channel: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "served"
    shutil.copytree(std_channel, dest)
    return dest


@pytest.fixture
def server(channel_copy: Path) -> Iterator[ChannelServer]:
    with ChannelServer(channel_copy) as srv:
        yield srv


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("ENVPACK_CACHE_DIR", str(cache))
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    return cache


def write_recipe(path: Path, channels: list[str], deps: list[str], extra: str = "") -> Path:
    lines = [f"name: {path.stem}", "channels:"]
    lines += [f"  - {c}" for c in channels]
    lines += ["dependencies:"] + [f"  - {d}" for d in deps]
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


@pytest.fixture
def recipe(tmp_path: Path, server: ChannelServer) -> Path:
    return write_recipe(tmp_path / "demo.yaml", [server.url], ["tool", "docs"])


def run_cli(*args: str) -> Result:
    from envpack.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA} (only in the project's CI)")
    return SHARED_DATA


@pytest.fixture
def real_micromamba() -> Path:
    """The Linux micromamba in ../shared/tools, or the user's own via ENVPACK_TEST_MICROMAMBA."""
    chosen = os.environ.get("ENVPACK_TEST_MICROMAMBA")
    if chosen:
        path = Path(chosen).expanduser().resolve()
        if not path.is_file():
            pytest.fail(f"ENVPACK_TEST_MICROMAMBA={chosen!r} is not a file")
        return path
    if not REAL_MICROMAMBA.is_file():
        pytest.skip(
            f"real micromamba not found at {REAL_MICROMAMBA} (see ../shared/tools); "
            "set ENVPACK_TEST_MICROMAMBA to your own"
        )
    return REAL_MICROMAMBA
