"""What envpack reads from inside a package: ``info/index.json`` and ``info/paths.json``.

For ``.conda`` only the small ``info-*.tar.zst`` member is read. The result is cached beside the
package in the download cache, so a warm build opens no package at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from envpack.errors import BundleError, first_line
from envpack.limits import MAX_JSON


@dataclass(frozen=True)
class PackageInfo:
    longest_path: int
    installed_size: int
    # etc/conda/env_vars.d/*.json the package installs: activate.bat must set their variables
    # (no default, so a cache sidecar written before this field existed is read again).
    env_vars_files: list[str]


ENV_VARS_DIR = "etc/conda/env_vars.d/"


def read_info_files(
    package: Path | str, wanted: tuple[str, ...], fileobj: IO[bytes] | None = None
) -> dict[str, bytes]:
    """Return the named ``info/`` members of a ``.conda`` or ``.tar.bz2``.

    ``package`` names it (its suffix picks the format); ``fileobj``, when given, is read instead
    of the file, so a package inside a bundle is streamed without being extracted.
    """
    from conda_package_streaming.package_streaming import stream_conda_component

    name = Path(package).name
    found: dict[str, bytes] = {}
    try:
        with ExitStack() as stack:
            fh = fileobj if fileobj is not None else stack.enter_context(Path(package).open("rb"))
            stream = stream_conda_component(name, fh, component="info")
            for tar, member in stream:
                if member.name in wanted and member.isfile():
                    if member.size > MAX_JSON:
                        raise BundleError(f"{name}: {member.name} is implausibly large")
                    extracted = tar.extractfile(member)
                    if extracted is not None:
                        found[member.name] = extracted.read()
                    if len(found) == len(wanted):
                        stream.close()
                        break
    except BundleError:
        raise
    except Exception as exc:  # the streaming library raises many types for a damaged archive
        raise BundleError(f"{name}: cannot read the package ({first_line(exc)})") from None
    return found


def read_package_files(package: Path, wanted: list[str]) -> list[tuple[str, bytes]]:
    """The named files of a package's payload (not ``info/``), as (path, content) pairs."""
    from conda_package_streaming.package_streaming import stream_conda_component

    found: list[tuple[str, bytes]] = []
    try:
        with package.open("rb") as fh:
            for tar, member in stream_conda_component(package.name, fh, component="pkg"):
                if member.name in wanted and member.isfile():
                    if member.size > MAX_JSON:
                        raise BundleError(f"{package.name}: {member.name} is implausibly large")
                    extracted = tar.extractfile(member)
                    if extracted is not None:
                        found.append((member.name, extracted.read()))
    except BundleError:
        raise
    except Exception as exc:  # the streaming library raises many types for a damaged archive
        raise BundleError(f"{package.name}: cannot read the package ({first_line(exc)})") from None
    return found


def package_info(package: Path, use_cache: bool = True) -> PackageInfo:
    sidecar = package.with_name(package.name + ".envpack-info.json")
    if use_cache and sidecar.is_file():
        try:
            return PackageInfo(**json.loads(sidecar.read_text("utf-8")))
        except (ValueError, TypeError):
            pass
    files = read_info_files(package, ("info/index.json", "info/paths.json"))
    if "info/index.json" not in files:
        raise BundleError(f"{package.name}: no info/index.json; not a conda package")
    paths = json.loads(files.get("info/paths.json", b"{}")).get("paths", [])
    info = PackageInfo(
        longest_path=max((len(p.get("_path", "")) for p in paths), default=0),
        installed_size=sum(int(p.get("size_in_bytes") or 0) for p in paths),
        env_vars_files=sorted(
            str(p["_path"])
            for p in paths
            if str(p.get("_path", "")).startswith(ENV_VARS_DIR)
            and str(p["_path"]).endswith(".json")
        ),
    )
    if use_cache:
        try:
            tmp = sidecar.with_name(sidecar.name + ".tmp")
            tmp.write_text(json.dumps(asdict(info)), "utf-8")
            tmp.replace(sidecar)
        except OSError:
            pass  # the cache is an optimisation
    return info


def env_vars_d(files: Iterable[tuple[str, bytes]]) -> tuple[tuple[str, str], ...]:
    """The variables of packages' ``etc/conda/env_vars.d/*.json`` files, given as (path in the
    package, content) pairs: merged in file-name order, a later file overriding an earlier one,
    as conda's activation does (``_get_environment_env_vars``). Values are literal (conda does
    not expand them). A file that is not a JSON object of strings is refused, by name."""
    merged: dict[str, str] = {}
    for name, data in sorted(files, key=lambda f: f[0].replace("\\", "/").rsplit("/", 1)[-1]):
        try:
            values = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise BundleError(f"{name}: not a JSON file; the package is damaged") from None
        if not isinstance(values, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in values.items()
        ):
            raise BundleError(f"{name}: not a JSON object of strings; the package is damaged")
        for key, value in values.items():
            merged.pop(key, None)
            merged[key] = value
    return tuple(merged.items())
