"""Running uv (the ``uv`` PyPI package ships its binary) with nothing of the build machine's
configuration leaking in: no uv.toml/pip.conf, no managed-Python downloads, no UV_* variables."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from ..errors import EnvpackError, first_line

UV_TIMEOUT = 900  # seconds; a resolve against a slow private index can take minutes


def uv_binary() -> str:
    try:
        import uv
    except ImportError:
        raise EnvpackError(
            "the 'uv' package is not installed; pip install uv (envpack resolves pip: with it)"
        ) from None
    return str(uv.find_uv_bin())


def clean_env(cache_dir: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_", "VIRTUAL_ENV"))}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env["UV_NO_PROGRESS"] = "1"
    if cache_dir is not None:
        env["UV_CACHE_DIR"] = str(cache_dir)
    return env


def run_uv(
    args: Sequence[str], *, cwd: Path, cache_dir: Path | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [uv_binary(), *args],
            cwd=cwd,
            env=clean_env(cache_dir),
            capture_output=True,
            text=True,
            timeout=UV_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise EnvpackError(
            f"uv {args[0]} took more than {UV_TIMEOUT} s; is the index up?"
        ) from None
    except OSError as exc:
        raise EnvpackError(f"cannot run uv: {first_line(exc)}") from None


def uv_error(stderr: str) -> str:
    """uv's error as one line: its ``error:`` line and the first cause/hint under it."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    picked = [ln for ln in lines if not ln.startswith("warning:")]
    return " ".join(picked[:4])[:600] or "uv failed without a message"
