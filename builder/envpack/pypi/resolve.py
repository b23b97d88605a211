"""Resolving the ``pip:`` list for the target (not the build machine) with uv.

``uv pip compile --python-platform <target> --python-version <conda's python> --format
pylock.toml`` lists, for each package, only the distributions usable on the target, honouring
Requires-Python and the index's ``data-requires-python``; envpack picks the best wheel by the
target's tag order. uv's pylock URLs carry no credentials (checked again here).

Conda first: a requirement a conda package already provides is dropped (a note says so) when the
conda version satisfies it, and is an error naming both when it does not. The conda packages are
offered to uv as metadata-only wheels at their conda versions (``--find-links`` of stubs, pinned
by constraints), so that pip dependencies resolve against what conda installs and the wheels of
those packages are never bundled.
"""

from __future__ import annotations

import base64
import hashlib
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from envpack.lock.wheel import WheelRecord, public_url

from ..channels import redact
from ..errors import DownloadError, SolveError
from .requirements import PipInput
from .target import Target
from .uvtool import run_uv, uv_error

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

# conda package name -> the PyPI project it provides, where the two differ.
CONDA_TO_PYPI = {
    "pytorch": "torch",
    "py-opencv": "opencv-python",
    "pytables": "tables",
    "matplotlib-base": "matplotlib",
    "python-dateutil": "python-dateutil",
    "msgpack-python": "msgpack",
    "typing_extensions": "typing-extensions",
}
# conda packages that are not Python distributions pip would see
_NOT_PYPI = {"python", "python_abi", "vc", "vc14_runtime", "vs2015_runtime", "ucrt"}
_STUB_TAG = "py3-none-any"
_UNREACHABLE = ("Failed to fetch", "error sending request", "Connect", "dns error", "timed out")


@dataclass
class Resolution:
    wheels: list[WheelRecord] = field(default_factory=list)
    # (name, version, url, sha256) of what has no wheel for the target, to build here
    sdists: list[tuple[str, str, str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # requirement names conda provides
    notes: list[str] = field(default_factory=list)


def conda_provides(conda: Mapping[str, str]) -> dict[str, str]:
    """conda name -> version, as PyPI project name -> version (normalised)."""
    out: dict[str, str] = {}
    for name, version in conda.items():
        if name in _NOT_PYPI or name.startswith("_") or name.startswith("__"):
            continue
        out[str(canonicalize_name(CONDA_TO_PYPI.get(name, name)))] = version
    return out


def conda_first(pip: PipInput, conda: Mapping[str, str], source: Path) -> Resolution:
    """Drop requirements conda provides; a conflict is one SolveError naming both sides."""
    provided = conda_provides(conda)
    result = Resolution()
    kept = []
    for req in pip.requirements:
        name = str(canonicalize_name(req.name))
        if name not in provided:
            kept.append(req)
            continue
        version = provided[name]
        if req.specifier and not req.specifier.contains(version, prereleases=True):
            raise SolveError(
                f"{source}: pip requirement {str(req)!r} conflicts with conda's {name} {version}; "
                f"drop it from pip: or pin {name} in the conda dependencies instead"
            )
        result.skipped.append(name)
        result.notes.append(f"pip: {name} is provided by conda ({version}); pip skips it")
    pip.requirements = kept
    return result


def _stub_wheel(folder: Path, name: str, version: str) -> None:
    """A metadata-only wheel standing for a conda package during the resolve."""
    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    files = {
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": f"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: {_STUB_TAG}\n",
    }
    lines = []
    for path, text in files.items():
        digest = hashlib.sha256(text.encode()).digest()
        b64 = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        lines.append(f"{path},sha256={b64},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*lines, f"{info}/RECORD,,"]) + "\n"
    with zipfile.ZipFile(folder / f"{module}-{version}-{_STUB_TAG}.whl", "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)


def _pep440(version: str) -> str | None:
    try:
        return str(Version(version))
    except InvalidVersion:
        return None  # a conda-only version spelling: uv cannot be told about it


def compile_args(pip: PipInput, target: Target, work: Path, stubs: Path | None) -> list[str]:
    args = [
        "pip", "compile", "requirements.in", "--constraint", "constraints.txt",
        "--python-platform", target.uv_platform, "--python-version", target.python_version,
        "--format", "pylock.toml", "--output-file", "pylock.toml",
        "--no-config", "--no-header", "--no-python-downloads", "--quiet",
    ]  # fmt: skip
    if pip.no_index:
        args.append("--no-index")
    if pip.index_url:
        args += ["--index-url", pip.index_url]
    for url in pip.extra_index_urls:
        args += ["--extra-index-url", url]
    for link in pip.find_links:
        args += ["--find-links", link]
    if stubs is not None:
        args += ["--find-links", str(stubs)]
    if pip.pre:
        args += ["--prerelease", "allow"]
    return args


def run_compile(
    pip: PipInput,
    target: Target,
    conda: Mapping[str, str],
    work: Path,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """uv's pylock for the remaining requirements (``pip.requirements`` after conda_first)."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "requirements.in").write_text("".join(f"{r}\n" for r in pip.requirements))
    constraints = [str(c) for c in pip.constraints]
    provided = {n: v for n, v in conda_provides(conda).items() if _pep440(v)}
    stubs = None
    if provided:
        stubs = work / "conda-provided"
        stubs.mkdir(exist_ok=True)
        for name, version in sorted(provided.items()):
            _stub_wheel(stubs, name, version)
            constraints.append(f"{name}=={version}")
    (work / "constraints.txt").write_text("".join(f"{c}\n" for c in constraints))
    # uv takes an existing output file as preferences: a stale one would pin old choices
    (work / "pylock.toml").unlink(missing_ok=True)
    done = run_uv(compile_args(pip, target, work, stubs), cwd=work, cache_dir=cache_dir)
    if done.returncode != 0:
        message = redact(uv_error(done.stderr))
        where = f"{pip.source}: pip: for {target.platform}, Python {target.python_version}"
        if any(marker in done.stderr for marker in _UNREACHABLE):
            raise DownloadError(f"{where}: the index cannot be reached: {message}")
        raise SolveError(f"{where}: {message}")
    with open(work / "pylock.toml", "rb") as f:
        return tomllib.load(f)


def best_wheel(wheels: list[dict[str, Any]], target: Target) -> dict[str, Any] | None:
    """The wheel pip on the target would prefer: the earliest tag in the target's order."""
    rank = {str(tag): i for i, tag in enumerate(target.tags())}
    best: tuple[int, dict[str, Any]] | None = None
    for wheel in wheels:
        name = str(wheel.get("name") or str(wheel["url"]).rsplit("/", 1)[-1])
        tags = parse_wheel_filename(name)[3]
        score = min((rank[str(t)] for t in tags if str(t) in rank), default=None)
        if score is not None and (best is None or score < best[0]):
            best = (score, wheel)
    return best[1] if best else None


def records_from_pylock(
    lock: Mapping[str, Any], target: Target, skip: set[str], source: Path
) -> Resolution:
    result = Resolution()
    for package in lock.get("packages", []):
        name = str(canonicalize_name(package["name"]))
        if name in skip:
            continue
        version = str(package.get("version", ""))
        wheel = best_wheel(list(package.get("wheels") or []), target)
        if wheel is not None:
            url = str(wheel["url"])
            filename = str(wheel.get("name") or url.rsplit("/", 1)[-1])
            result.wheels.append(
                WheelRecord(
                    name=name,
                    version=version,
                    filename=filename,
                    url=public_url(url),
                    sha256=str(wheel["hashes"]["sha256"]),
                    size=int(wheel.get("size") or 0),
                )
            )
        elif package.get("sdist"):
            sdist = package["sdist"]
            sha = str((sdist.get("hashes") or {}).get("sha256") or "")
            result.sdists.append((name, version, public_url(str(sdist["url"])), sha))
        else:
            raise SolveError(
                f"{source}: pip: no wheel or sdist of {name} {version} for "
                f"{target.platform}, Python {target.python_version}"
            )
    result.wheels.sort()
    return result


def resolve(
    pip: PipInput,
    target: Target,
    conda: Mapping[str, str],
    work: Path,
    cache_dir: Path | None = None,
) -> Resolution:
    """Wheel records (and sdists still to build) for ``pip`` on ``target``; ``conda`` maps each
    conda package of the solve to its version."""
    first = conda_first(pip, conda, pip.source)
    if not pip.requirements:
        return first
    lock = run_compile(pip, target, conda, work, cache_dir)
    skip = set(conda_provides(conda))
    result = records_from_pylock(lock, target, skip, pip.source)
    result.skipped = first.skipped
    result.notes = first.notes
    return result
