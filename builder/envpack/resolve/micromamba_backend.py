"""The micromamba solver: a host micromamba's ``create --dry-run --json``, read back as lock
records."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from envpack.bundle import mamba_cli
from envpack.channels import redact
from envpack.errors import DownloadError, EnvpackError, SolveError
from envpack.lock.record import LockedPackage, make_record
from envpack.platforms import VirtualPackage
from envpack.resolve.solver import (
    LOG_PREFIX,
    SolveRequest,
    check_hashes,
    invalid_spec,
    solver_message,
    summarise_problems,
)

MICROMAMBA_TIMEOUT = 600  # seconds; a solve of conda-forge's full repodata takes well under one


def micromamba_env(vps: Sequence[VirtualPackage], root: Path) -> dict[str, str]:
    """The environment of a builder-side micromamba: isolated, and told the target's facts.

    micromamba takes ``__archspec``/``__cuda`` from the host unless overridden, and on a non-Windows
    host 2.x sets ``__win=0`` unless ``CONDA_OVERRIDE_WIN`` is set (notes: measured with 2.8.1).
    """
    env = mamba_cli.builder_env(os.environ, root / "root", root / "pkgs")
    # No GPU unless the recipe names one: an empty override hides the host's __cuda.
    env[mamba_cli.OVERRIDE_VARS["__cuda"]] = ""
    for vp in vps:
        var = mamba_cli.OVERRIDE_VARS.get(vp.name)
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
        # A bare relative name would be looked up on PATH by the OS, not in the current folder.
        return os.path.abspath(exe)

    def solve(self, request: SolveRequest) -> list[LockedPackage]:
        exe = self.find_exe()
        if request.offline:
            remote = [c.public_url for c in request.channels if not c.is_local]
            if remote:
                # Each run has a fresh, empty cache (isolation), so there is nothing to be
                # offline with.
                raise DownloadError(
                    f"--offline with the micromamba solver works with local channels only, and "
                    f"{remote[0]} is remote; use the rattler solver, which keeps a repodata cache"
                )
        with tempfile.TemporaryDirectory(prefix="envpack-mamba-") as tmp:
            root = Path(tmp)
            (root / "pkgs").mkdir()
            argv = mamba_cli.dry_run_argv(
                exe,
                str(root / "prefix"),
                [c.url for c in request.channels],
                list(request.specs),
                request.platform,
                offline=request.offline,
            )
            env = micromamba_env(request.virtual_packages, root)
            proc = _run(exe, argv, env)
            explanation = None
            failed = _load_json(proc.stdout)
            if proc.returncode != 0 and isinstance(failed, dict) and "solver_problems" in failed:
                # With --json, micromamba 2.x reports an unsatisfiable request only as
                # "unsupported request"; the same run without it explains on stderr. The
                # repodata is cached in this run's pkgs dir by now, so this costs a solve.
                again = _run(exe, [a for a in argv if a != mamba_cli.JSON_FLAG], env)
                explanation = again.stderr
        records = parse_dry_run(proc.stdout, proc.stderr, proc.returncode, request, explanation)
        return check_hashes(records)


def _run(exe: str, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv,
            env=env,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=MICROMAMBA_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise SolveError(
            f"micromamba {exe!r} did not finish solving within {MICROMAMBA_TIMEOUT} s"
        ) from None
    except OSError as exc:
        hint = " (is it executable?)" if isinstance(exc, PermissionError) else ""
        raise SolveError(f"cannot run micromamba {exe!r}: {exc.strerror or exc}{hint}") from None


def _load_json(stdout: str) -> Any:
    """The JSON document in micromamba's stdout (1.x may print log lines before it)."""
    start = stdout.find("{")
    if start < 0:
        return None
    try:
        data, _ = json.JSONDecoder().raw_decode(stdout[start:])
    except json.JSONDecodeError:
        return None
    return data


def parse_dry_run(
    stdout: str,
    stderr: str,
    returncode: int,
    request: SolveRequest,
    explanation: str | None = None,
) -> list[LockedPackage]:
    """Read ``actions.LINK`` from micromamba's JSON (1.x and 2.x shapes).

    ``explanation`` is the stderr of the same solve run without ``--json``, used for the message
    when the solve failed.
    """
    data = _load_json(stdout)
    if returncode != 0 or not isinstance(data, dict) or not data.get("success", False):
        raise _micromamba_error(data, stderr, returncode, request, explanation)
    link = (data.get("actions") or {}).get("LINK") or []
    records = []
    for entry in link:
        if not isinstance(entry, dict) or "url" not in entry:
            raise EnvpackError(
                f"micromamba's JSON has a LINK entry without url ({_describe(entry)}); "
                "this micromamba is not supported"
            )
        records.append(make_record(entry))
    return records


def _describe(entry: Any) -> str:
    if isinstance(entry, dict):
        return f"package {entry.get('name', '?')!r}"
    return type(entry).__name__


def _messages(stderr: str) -> list[str]:
    """stderr's error lines, without log prefixes and without warnings."""
    out = []
    for raw in stderr.splitlines():
        if not raw.strip() or re.match(r"^\s*warning\b", raw):
            continue
        out.append(LOG_PREFIX.sub("", raw).strip())
    return out


def _micromamba_error(
    data: Any,
    stderr: str,
    returncode: int,
    request: SolveRequest,
    explanation: str | None,
) -> EnvpackError:
    problems: list[str] = []
    if isinstance(data, dict):
        value = data.get("solver_problems") or data.get("error") or data.get("message") or []
        problems = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    messages = _messages(stderr)
    text = "\n".join(messages)
    lowered = text.lower()
    if "download error" in lowered or "couldn't resolve" in lowered or "curl" in lowered:
        where = ", ".join(c.public_url for c in request.channels)
        detail = next(
            (m for m in messages if re.search(r"download error|couldn't|could not", m, re.I)),
            messages[0] if messages else "no details",
        )
        return DownloadError(f"micromamba could not fetch repodata from {where}: {redact(detail)}")
    if messages and not problems and ("parsing" in lowered or "invalid" in lowered):
        return invalid_spec(request, messages[0])
    if problems or "could not solve" in lowered:
        useful = [p for p in problems if p.strip() and p.strip() != "unsupported request"]
        report = explanation if explanation and "could not solve" in explanation.lower() else ""
        summary = summarise_problems(report or "\n".join(useful) or text)
        return SolveError(solver_message(summary, request))
    if messages:
        return SolveError(
            f"micromamba failed solving {' '.join(request.specs)!r} for {request.platform}: "
            f"{redact(messages[-1])}"
        )
    return SolveError(
        f"micromamba exited with status {returncode} and printed no result for "
        f"{' '.join(request.specs)!r} ({request.platform}); is it micromamba?"
    )
