"""An output folder nobody can write to: one line, exit 7, on a machine where the tests run as root.

A folder with mode 0500 stops no one when the tests run as root (tests/test_errors.py skipped for
that reason, so it could never fail). A read-only file system stops root too: the build runs in a
private mount namespace (``unshare``, as root or through a user namespace) where the output folder
is a read-only tmpfs, so nothing is mounted for the rest of the machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_recipe
from http_server import ChannelServer


def private_mounts() -> list[str]:
    """The unshare prefix that gives a private mount namespace here, or a skip."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    for prefix in (["unshare", "-m"], ["unshare", "-r", "-m"]):
        probe = subprocess.run(
            [*prefix, "sh", "-c", "mount -t tmpfs -o ro tmpfs /mnt && umount /mnt"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        if probe.returncode == 0:
            return prefix
    pytest.skip("no private mount namespace here (no CAP_SYS_ADMIN, no user namespaces)")


def test_read_only_output_folder(server: ChannelServer, tmp_path: Path) -> None:
    prefix = private_mounts()
    recipe = write_recipe(tmp_path / "demo.yaml", [server.url], ["tool", "docs"])
    out = tmp_path / "read-only out"
    out.mkdir()
    script = 'mount -t tmpfs -o ro tmpfs "$1" && shift && exec "$@"'
    env = dict(os.environ, ENVPACK_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run(
        [
            *prefix,
            "sh",
            "-c",
            script,
            "sh",
            str(out),
            sys.executable,
            "-m",
            "envpack",
            "build",
            str(recipe),
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 7, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("envpack: error: ")]
    assert len(errors) == 1, proc.stderr
    assert str(out) in errors[0]
    assert "Traceback" not in proc.stderr
    # the mount was private: here the folder is the plain, empty, writable one
    assert list(out.iterdir()) == []
    (out / "probe").write_text("writable outside the namespace")
