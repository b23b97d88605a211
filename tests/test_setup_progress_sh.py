"""setup.sh's progress lines while micromamba runs (issue 14), under dash, with the real Linux
micromamba 2.8.1 behind a wrapper.

The bundle's micromamba is a small script: for ``create`` it first "unpacks" a package folder
where micromamba 2.6+ extracts (``pkgs/<scheme>/<host>/.../<dist>/info``), waits until setup.sh
has printed the progress line for it (it reads setup.sh's output file: no timing), removes the
folder, and runs the real micromamba. Told to, it fails instead, as a damaged package would, or
stays at work until Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from linux_bundle import REAL_MICROMAMBA, ZLIB_CHANNEL, build_bundle, repaired_zlib, unpack

pytestmark = [
    pytest.mark.micromamba,
    pytest.mark.skipif(
        not (REAL_MICROMAMBA.is_file() and ZLIB_CHANNEL.is_dir()),
        reason="../shared (real micromamba and the zlib channel) is absent",
    ),
    pytest.mark.skipif(not Path("/bin/dash").is_file(), reason="dash is not installed"),
]

LINE = "setup: {} s: 1 of 1 packages unpacked, 0 of 1 installed"
WRAPPER = """#!/bin/sh
# envpack test wrapper around the real micromamba (tests/test_setup_progress_sh.py)
if [ "$1" = create ]; then
    mkdir -p pkgs/https/example.invalid/standin/linux-64/standin-1.0-0/info
    n=0
    until grep -q ' s: 1 of 1 packages unpacked, 0 of 1 installed$' "$ENVPACK_TEST_OUT"; do
        n=$((n + 1))
        if [ "$n" -gt 6000 ]; then echo "wrapper: no progress line" >&2; exit 70; fi
        sleep 0.1
    done
    rm -rf pkgs/https
    # told to, it stays at work until Ctrl-C
    while [ -n "$ENVPACK_TEST_HOLD" ]; do sleep 0.1; done
    if [ -n "$ENVPACK_TEST_FAIL" ]; then
        echo "critical libmamba wrapper: failing as told" >&2
        exit 1
    fi
fi
exec {real} "$@"
"""


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("progress-sh")
    wrapper = base / "micromamba"
    wrapper.write_text(WRAPPER.replace("{real}", f"'{REAL_MICROMAMBA}'"))
    wrapper.chmod(0o755)
    pkg, md5 = repaired_zlib(base / "pkg")
    return build_bundle(base / "out", package=pkg, md5=md5, micromamba=wrapper).tar


def start(bundle: Path, tmp_path: Path, **extra: str) -> tuple[subprocess.Popen[bytes], Path]:
    folder = unpack(bundle, tmp_path / "bundle dir")
    home = tmp_path / "home"
    home.mkdir()
    out = tmp_path / "out.txt"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "ENVPACK_TEST_OUT": str(out),
        **extra,
    }
    prefix = tmp_path / "my envs" / "zlib env"
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            ["/bin/dash", str(folder / "setup.sh"), str(prefix)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, for the Ctrl-C test
        )
    return proc, prefix


def progress_index(out: str) -> int:
    for number, line in enumerate(out.splitlines()):
        head, sep, _ = line.partition(" s: ")
        seconds = head.removeprefix("setup: ")
        if sep and seconds.isdigit() and LINE.format(seconds) == line:
            return number
    raise AssertionError(f"no progress line in:\n{out}")


def test_progress_line_then_the_install(bundle: Path, tmp_path: Path) -> None:
    proc, prefix = start(bundle, tmp_path)
    assert proc.wait(timeout=300) == 0, (tmp_path / "out.txt").read_text()
    out = (tmp_path / "out.txt").read_text()
    lines = out.splitlines()
    at = progress_index(out)
    assert lines[at - 1].startswith('setup: installing into "')
    assert lines.index(f'setup: installed "zlibenv" into "{prefix}".') > at
    assert (prefix / "conda-meta" / "zlib-1.2.11-h7b6447c_3.json").is_file()
    log = (prefix / "envpack-install.log").read_text()
    assert "micromamba exit code: 0" in log
    assert " packages unpacked" not in log  # micromamba's output is logged, progress is not
    assert sorted(os.listdir(prefix.parent)) == ["zlib env"]  # no work folder, no mm.done


def test_failing_micromamba_after_progress_still_exits_10(bundle: Path, tmp_path: Path) -> None:
    proc, prefix = start(bundle, tmp_path, ENVPACK_TEST_FAIL="1")
    assert proc.wait(timeout=300) == 10
    out = (tmp_path / "out.txt").read_text()
    lines = out.splitlines()
    at = progress_index(out)
    failed = lines.index("critical libmamba wrapper: failing as told")
    assert at < failed
    assert lines[failed + 1] == (
        "setup: micromamba failed (exit code 1); its messages are above and in the log."
    )
    log = (prefix.parent / "zlib env.envpack-work" / "envpack-install.log").read_text()
    assert "critical libmamba wrapper: failing as told" in log
    assert "result: FAILED, exit code 10" in log


def test_ctrl_c_leaves_no_heartbeat_behind(bundle: Path, tmp_path: Path) -> None:
    """SIGINT to the terminal's process group, as Ctrl-C sends it: setup.sh and the wrapper
    (micromamba) end; the background loop, which sh runs with SIGINT ignored, ends by itself
    at its next check, and the work folder keeps the marker for the rerun."""
    proc, prefix = start(bundle, tmp_path, ENVPACK_TEST_HOLD="1")
    out = tmp_path / "out.txt"
    end = time.monotonic() + 300
    while " s: 1 of 1 packages unpacked" not in out.read_text():
        assert proc.poll() is None, out.read_text()
        assert time.monotonic() < end, out.read_text()
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=60)
    # every process of the group gone (the heartbeat included), within its 2-second waits
    end = time.monotonic() + 60
    while True:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < end, "a process of setup.sh's group outlived it"
        time.sleep(0.1)
    work = prefix.parent / "zlib env.envpack-work"
    assert (work / ".envpack-incomplete").is_file()
    assert not (prefix / "conda-meta").exists()
