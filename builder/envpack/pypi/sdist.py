"""Wheels built on the build machine, for what has no wheel for the target: an sdist the resolve
chose, ``-e .``, a local path. Only a pure-Python result (every tag ``*-none-any``) can go to
another platform; anything else needs a compiler for the target and is refused, naming the
package and pointing at its conda package.

Local paths and sdist archives are built with ``uv build --wheel``; VCS and URL references with
``pip wheel --no-deps`` (uv builds them only into its own cache).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.utils import parse_wheel_filename

from envpack.lock.wheel import WheelRecord

from ..errors import SolveError, first_line
from .uvtool import UV_TIMEOUT, clean_env, run_uv, uv_error


def _refuse(what: str, target: str, detail: str) -> SolveError:
    name = what.rsplit("/", 1)[-1].split("@")[0].strip() or what
    return SolveError(
        f"pip: {what} has no wheel for {target} and its source does not build into a "
        f"pure-Python wheel ({detail}); add its conda package under dependencies instead "
        f"(e.g. '- {name}') or remove it from pip:"
    )


def _pure(wheel: Path) -> bool:
    tags = parse_wheel_filename(wheel.name)[3]
    return all(t.abi == "none" and t.platform == "any" for t in tags)


def _build(source: str, out: Path, base: Path) -> None:
    local = (base / source) if not Path(source).is_absolute() else Path(source)
    if "://" not in source and not source.startswith(("git+", "hg+", "svn+", "bzr+")):
        done = run_uv(["build", "--wheel", "--out-dir", str(out), "--no-config", "--quiet",
                       str(local)], cwd=base)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(uv_error(done.stderr))
        return
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--isolated", "--quiet",
             "--wheel-dir", str(out), source],
            cwd=base, env=clean_env(None), capture_output=True, text=True,
            timeout=UV_TIMEOUT, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(first_line(exc)) from None
    if done.returncode != 0:
        raise RuntimeError(uv_error(done.stderr))


def build_pure_wheel(source: str, base: Path, out_dir: Path, target: str) -> Path:
    """Build ``source`` (a path relative to ``base``, an sdist file, a VCS/URL reference) into
    ``out_dir``; the wheel's path, or a SolveError when it is not pure Python."""
    with tempfile.TemporaryDirectory(prefix="envpack-wheel-") as tmp:
        out = Path(tmp)
        try:
            _build(source, out, base)
        except RuntimeError as exc:
            raise _refuse(source, target, f"the build failed: {exc}") from None
        built = sorted(out.glob("*.whl"))
        if len(built) != 1:
            raise _refuse(source, target, f"the build made {len(built)} wheels")
        wheel = built[0]
        if not _pure(wheel):
            name = str(parse_wheel_filename(wheel.name)[0])
            raise _refuse(name, target, f"it built {wheel.name}")
        out_dir.mkdir(parents=True, exist_ok=True)
        dest = out_dir / wheel.name
        dest.write_bytes(wheel.read_bytes())
        return dest


def local_record(wheel: Path) -> WheelRecord:
    """The lock record of a wheel built here: its URL is where it was built (a file URL), and
    ``build --from`` needs the cached file, as for a local channel."""
    name, version, _, _ = parse_wheel_filename(wheel.name)
    data = wheel.read_bytes()
    return WheelRecord(
        name=str(name),
        version=str(version),
        filename=wheel.name,
        url=wheel.resolve().as_uri(),
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
    )
