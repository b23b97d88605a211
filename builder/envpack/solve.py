"""Solvers: py-rattler in-process (default) and micromamba's dry run. Both return lock records.

Where the two may legitimately differ, records are normalised here so that the same channels give
the same lock: URLs are percent-normalised, the channel is derived from the URL (micromamba 1.x
reports it as a URL, 2.x as a name), and timestamps are kept to the second because micromamba's
JSON reports seconds where repodata has milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from . import mamba_cli
from .channels import Channel, redact, strip_token
from .errors import DownloadError, EnvpackError, SolveError
from .lock import LockedPackage
from .platforms import VirtualPackage


@dataclass(frozen=True)
class SolveRequest:
    channels: Sequence[Channel]
    specs: Sequence[str]
    platform: str
    virtual_packages: Sequence[VirtualPackage]
    offline: bool = False
    cache_dir: Path | None = None


class Solver(Protocol):
    name: str

    def solve(self, request: SolveRequest) -> list[LockedPackage]: ...


def normalize_url(url: str) -> str:
    parts = urllib.parse.urlsplit(strip_token(url))
    path = urllib.parse.quote(urllib.parse.unquote(parts.path), safe="/:@!$&'()*+,;=~")
    return urllib.parse.urlunsplit(parts._replace(path=path))


def channel_of(url: str) -> str:
    """``https://host/conda-forge/win-64/x.conda`` -> ``https://host/conda-forge``."""
    return url.rsplit("/", 2)[0]


def _seconds_ms(value: Any) -> int | None:
    """A timestamp (datetime, seconds or milliseconds) as milliseconds, truncated to the second."""
    if value is None:
        return None
    if isinstance(value, datetime):
        seconds = int(value.timestamp())
    else:
        number = int(value)
        seconds = number // 1000 if number > 10**11 else number
    return seconds * 1000


def make_record(data: Mapping[str, Any]) -> LockedPackage:
    url = normalize_url(str(data["url"]))
    fn = str(data.get("fn") or urllib.parse.unquote(url.rsplit("/", 1)[-1]))
    return LockedPackage.from_dict(
        {
            **data,
            "url": url,
            "fn": fn,
            "channel": channel_of(url),
            "subdir": data.get("subdir") or url.rsplit("/", 2)[-2],
            "timestamp": _seconds_ms(data.get("timestamp")),
        },
        where=f"solver result for {data.get('name', '?')}",
    )


def _check_hashes(records: list[LockedPackage]) -> list[LockedPackage]:
    for r in records:
        if len(r.sha256) != 64:
            raise SolveError(
                f"package {r.fn} has no sha256 in its channel's repodata; envpack needs one to "
                "verify downloads (re-index the channel)"
            )
    return sorted(records)


class RattlerSolver:
    """py-rattler, in-process, for any target from any host."""

    name = "rattler"

    def solve(self, request: SolveRequest) -> list[LockedPackage]:
        import rattler
        from rattler.exceptions import FetchRepoDataError, GatewayError, SolverError

        vps = [
            rattler.GenericVirtualPackage(
                rattler.PackageName(vp.name),
                rattler.Version(vp.version),
                rattler.BuildString(vp.build),
            )
            for vp in request.virtual_packages
        ]
        cache_action: Literal["force-cache-only", "cache-or-fetch"] = (
            "force-cache-only" if request.offline else "cache-or-fetch"
        )
        gateway = rattler.Gateway(
            cache_dir=request.cache_dir,
            default_config=rattler.SourceConfig(cache_action=cache_action, sharded_enabled=False),
        )
        sources = [rattler.Channel(c.url + "/") for c in request.channels]
        try:
            records = asyncio.run(
                rattler.solve(
                    sources=sources,
                    specs=list(request.specs),
                    platforms=[rattler.Subdir(request.platform), rattler.Subdir("noarch")],
                    virtual_packages=vps,
                    gateway=gateway,
                )
            )
        except SolverError as exc:
            raise SolveError(_solver_message(str(exc), request)) from None
        except (FetchRepoDataError, GatewayError) as exc:
            where = ", ".join(c.public_url for c in request.channels)
            hint = " (--offline: nothing cached yet; build once online)" if request.offline else ""
            raise DownloadError(
                f"cannot fetch repodata from {where}{hint}: {redact(_error_text(exc))}"
            ) from None
        except (ValueError, TypeError) as exc:
            raise SolveError(f"invalid spec: {_first_line(exc)}") from None
        except Exception as exc:  # rattler's own errors share no base class
            if type(exc).__module__.split(".")[0] in {"rattler", "exceptions"}:
                raise SolveError(f"solver failed: {redact(_first_line(exc))}") from None
            raise
        return _check_hashes([make_record(_rattler_dict(r)) for r in records])


def _rattler_dict(r: Any) -> dict[str, Any]:
    return {
        "name": r.name.normalized,
        "version": str(r.version),
        "build": r.build,
        "build_number": r.build_number,
        "subdir": r.subdir,
        "fn": r.file_name,
        "url": r.url,
        "sha256": r.sha256.hex() if r.sha256 else "",
        "md5": r.md5.hex() if r.md5 else "",
        "size": r.size or 0,
        "depends": list(r.depends),
        "constrains": list(r.constrains),
        "license": r.license,
        "timestamp": r.timestamp,
    }


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _error_text(exc: BaseException) -> str:
    """rattler's errors put the cause on later lines ("Caused by: ..."): keep it on one line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines) or type(exc).__name__


def _solver_message(text: str, request: SolveRequest) -> str:
    specs = " ".join(request.specs)
    body = "\n".join("  " + line.rstrip() for line in redact(text).strip().splitlines())
    return f"cannot solve {specs!r} for {request.platform}:\n{body}"


_OVERRIDE_VARS = {
    "__win": "CONDA_OVERRIDE_WIN",
    "__glibc": "CONDA_OVERRIDE_GLIBC",
    "__osx": "CONDA_OVERRIDE_OSX",
    "__cuda": "CONDA_OVERRIDE_CUDA",
    "__archspec": "CONDA_OVERRIDE_ARCHSPEC",
    "__linux": "CONDA_OVERRIDE_LINUX",
}


def micromamba_env(vps: Sequence[VirtualPackage], root: Path) -> dict[str, str]:
    """The environment of a builder-side micromamba: isolated, and told the target's facts.

    micromamba takes ``__archspec``/``__cuda`` from the host unless overridden, and on a non-Windows
    host 2.x sets ``__win=0`` unless ``CONDA_OVERRIDE_WIN`` is set (notes: measured with 2.8.1).
    """
    env = {k: v for k, v in os.environ.items() if k not in mamba_cli.CLEARED_VARS}
    env[mamba_cli.ROOT_PREFIX_VAR] = str(root / "root")
    env[mamba_cli.PKGS_DIRS_VAR] = str(root / "pkgs")
    env["CONDA_OVERRIDE_CUDA"] = ""
    for vp in vps:
        var = _OVERRIDE_VARS.get(vp.name)
        if var is None:
            if vp.name == "__unix":
                continue
            raise SolveError(f"the micromamba solver cannot set virtual package {vp.name}")
        env[var] = vp.build if vp.name == "__archspec" else vp.version
    return env


class MicromambaSolver:
    """``micromamba create --dry-run --json`` with an isolated root prefix and empty cache."""

    name = "micromamba"

    def __init__(self, exe: str | None = None) -> None:
        self.exe = exe

    def find_exe(self) -> str:
        exe = self.exe or shutil.which("micromamba")
        if not exe:
            raise SolveError(
                "the micromamba solver needs a micromamba on PATH or --solver-micromamba FILE"
            )
        if not Path(exe).is_file():
            raise SolveError(f"micromamba {exe!r} not found")
        return exe

    def solve(self, request: SolveRequest) -> list[LockedPackage]:
        exe = self.find_exe()
        with tempfile.TemporaryDirectory(prefix="envpack-mamba-") as tmp:
            root = Path(tmp)
            (root / "pkgs").mkdir()
            argv = mamba_cli.dry_run_argv(
                exe,
                str(root / "prefix"),
                [c.url for c in request.channels],
                list(request.specs),
                request.platform,
            )
            if request.offline:
                argv.insert(2, "--offline")
            try:
                proc = subprocess.run(
                    argv,
                    env=micromamba_env(request.virtual_packages, root),
                    capture_output=True,
                    text=True,
                    timeout=600,
                    check=False,
                )
            except OSError as exc:
                raise SolveError(f"cannot run micromamba {exe!r}: {exc.strerror}") from None
        return _check_hashes(parse_dry_run(proc.stdout, proc.stderr, proc.returncode, request))


def parse_dry_run(
    stdout: str, stderr: str, returncode: int, request: SolveRequest
) -> list[LockedPackage]:
    """Read ``actions.LINK`` from micromamba's JSON (1.x and 2.x shapes)."""
    data: Any = None
    text = stdout.strip()
    if text:
        try:
            data = json.loads(text[text.index("{") :])
        except (ValueError, json.JSONDecodeError):
            data = None
    if returncode != 0 or not isinstance(data, dict) or not data.get("success", False):
        message = _micromamba_error(data, stderr)
        lowered = message.lower()
        if "download error" in lowered or "couldn't resolve" in lowered or "curl" in lowered:
            raise DownloadError(f"micromamba could not fetch repodata: {message}")
        raise SolveError(_solver_message(message, request))
    link = (data.get("actions") or {}).get("LINK") or []
    records = []
    for entry in link:
        if "url" not in entry:
            raise EnvpackError(f"micromamba's JSON has a LINK entry without url: {entry!r}")
        records.append(make_record(entry))
    return records


def _micromamba_error(data: Any, stderr: str) -> str:
    if isinstance(data, dict):
        for key in ("solver_problems", "message", "error"):
            value = data.get(key)
            if value:
                return redact("\n".join(value) if isinstance(value, list) else str(value))
    lines = [
        line.strip()
        for line in stderr.splitlines()
        if line.strip() and not line.lstrip().startswith("warning")
    ]
    return redact("\n".join(lines[-20:]) or "micromamba failed without a message")


def get_solver(name: str, micromamba_exe: str | None = None) -> Solver:
    if name == "rattler":
        return RattlerSolver()
    if name == "micromamba":
        return MicromambaSolver(micromamba_exe)
    raise SolveError(f"unknown solver {name!r}; use 'rattler' or 'micromamba'")
