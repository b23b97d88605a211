"""micromamba for the target: from conda-forge's ``micromamba`` package, or from a local file.

micromamba >= 1.5.2 on Windows is built /MD and needs the VC++ runtime DLLs (mamba#2928), which a
bare PC may lack; they are taken from the target's ``vc14_runtime`` package and shipped beside it.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from envpack.errors import BundleError, SolveError
from envpack.lock.record import LockedPackage, MicromambaArtifact

RUNTIME_PACKAGES = ("vc14_runtime",)
RUNTIME_GLOBS = ("vcruntime140*.dll", "msvcp140*.dll")


def exe_name(platform: str) -> str:
    return "micromamba.exe" if platform.startswith("win-") else "micromamba"


def member_path(platform: str) -> str:
    return "Library/bin/micromamba.exe" if platform.startswith("win-") else "bin/micromamba"


def tool_specs(spec: str, platform: str, with_runtime: bool = True) -> list[str]:
    specs = [f"micromamba {spec}".strip()]
    if with_runtime and platform.startswith("win-"):
        specs += list(RUNTIME_PACKAGES)
    return specs


def artifact_from_solve(records: Sequence[LockedPackage], platform: str) -> MicromambaArtifact:
    by_name = {r.name: r for r in records}
    if "micromamba" not in by_name:
        raise SolveError(f"the channels have no micromamba for {platform}; pass --micromamba-exe")
    runtime = tuple(by_name[n] for n in RUNTIME_PACKAGES if n in by_name)
    return MicromambaArtifact(source="package", record=by_name["micromamba"], runtime=runtime)


@dataclass(frozen=True)
class ToolFile:
    name: str
    data: bytes


def _extract(package: Path, wanted: Callable[[str], bool]) -> list[ToolFile]:
    from conda_package_streaming.package_streaming import stream_conda_component

    out: list[ToolFile] = []
    try:
        with package.open("rb") as fh:
            for tar, member in stream_conda_component(str(package), fh, component="pkg"):
                if member.isfile() and wanted(member.name):
                    extracted = tar.extractfile(member)
                    if extracted is not None:
                        out.append(ToolFile(member.name.rsplit("/", 1)[-1], extracted.read()))
    except Exception as exc:
        raise BundleError(f"{package.name}: cannot read package ({exc})") from None
    return out


def extract_micromamba(
    artifact: MicromambaArtifact,
    platform: str,
    paths: dict[LockedPackage, Path],
    exe_file: Path | None,
) -> list[ToolFile]:
    """The files that go beside setup.bat: the executable first, then runtime DLLs (sorted)."""
    name = exe_name(platform)
    if artifact.source == "file":
        if exe_file is None:
            raise BundleError(
                "this lock was made with --micromamba-exe FILE; pass the same file again"
            )
        data = exe_file.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if artifact.file_sha256 and digest != artifact.file_sha256:
            raise BundleError(
                f"{exe_file}: sha256 {digest} differs from the lock's {artifact.file_sha256}"
            )
        files = [ToolFile(name, data)]
    else:
        assert artifact.record is not None
        target = member_path(platform)
        found = _extract(paths[artifact.record], lambda m: m == target)
        if not found:
            raise BundleError(f"{artifact.record.fn} holds no {target}")
        files = [ToolFile(name, found[0].data)]
    dlls: dict[str, bytes] = {}
    for record in artifact.runtime:
        for tool in _extract(
            paths[record],
            lambda m: any(fnmatch.fnmatch(m.rsplit("/", 1)[-1].lower(), g) for g in RUNTIME_GLOBS),
        ):
            dlls.setdefault(tool.name.lower(), tool.data)
    return files + [ToolFile(n, dlls[n]) for n in sorted(dlls)]


def artifact_from_file(path: Path) -> MicromambaArtifact:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BundleError(f"--micromamba-exe {path}: cannot read ({exc.strerror})") from None
    return MicromambaArtifact(
        source="file", file_name=path.name, file_sha256=hashlib.sha256(data).hexdigest()
    )
