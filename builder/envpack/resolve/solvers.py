"""Solvers: py-rattler in-process (default) and micromamba's dry run. Both return lock records.

The same channels, specs and virtual packages give the same lock with either backend: same
packages, builds, URLs, hashes, sizes, dependencies (tested on a real conda-forge subset and on
test channels). Each record is normalised here, so that what the two report differently in form
only is the same in the lock:

- ``url`` is percent-normalised, and ``channel`` is derived from the URL: micromamba 1.x reports
  the channel as a URL with the subdir, 2.x as a name or a URL without it.
- ``timestamp`` is kept to the second (as milliseconds): micromamba reports seconds, repodata and
  rattler milliseconds. A record without one has ``None`` (micromamba says 0).
- ``license`` is ``None`` when the repodata has none (micromamba says "").
- ``depends``/``constrains`` are rewritten in one canonical match-spec spelling: micromamba
  re-renders them (``ucrt>=10`` as ``ucrt >=10``, ``x ==1`` as ``x 1``), rattler keeps the
  repodata's text.

Where the backends may legitimately still differ:

- Ties: when several solutions are equally good the two solvers may choose differently. None was
  found in the test channels (same-version builds, track_features, two channels in either order).
- Virtual packages: with micromamba 1.5.x a foreign ``win-*`` target always has ``__win=0`` and
  ``__archspec`` cannot be set (it has no override variables for them); use micromamba >= 2.0
  or rattler for recipes whose packages depend on them.
- Spec grammar: micromamba 2.8.1 does not read bracket specs (``x[version='>=1']``) inside
  repodata ``depends``, rattler does; conda-forge does not use them there.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from envpack.bundle import mamba_cli
from envpack.channels import Channel, redact, strip_token
from envpack.errors import DownloadError, EnvpackError, SolveError, first_line
from envpack.lock.lockfile import LockedPackage
from envpack.platforms import VirtualPackage

MICROMAMBA_TIMEOUT = 600  # seconds; a solve of conda-forge's full repodata takes well under one
_MAX_SUMMARY = 400


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
    return seconds * 1000 if seconds > 0 else None


def canonical_spec(spec: str) -> str:
    """One spelling per match spec, whichever solver reported it (see the module docstring)."""
    import rattler

    text = " ".join(spec.split())
    try:
        return str(rattler.MatchSpec(text, strict=False))
    except Exception:  # rattler's parse errors share no base class; keep what cannot be parsed
        return text


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
            "license": data.get("license") or None,
            "md5": data.get("md5") or "",
            "sha256": data.get("sha256") or "",
            "depends": [canonical_spec(d) for d in data.get("depends") or ()],
            "constrains": [canonical_spec(c) for c in data.get("constrains") or ()],
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
        if len(r.md5) != 32:
            raise SolveError(
                f"package {r.fn} has no md5 in its channel's repodata; the bundle's package list "
                "needs one for micromamba 1.x (re-index the channel)"
            )
    return sorted(records)


# --------------------------------------------------------------------------- error messages

_LOG_PREFIX = re.compile(r"^\s*(critical|error|warning|info|debug|trace)\s+libmamba\s+", re.I)
_TREE = "│├└─|`- "
# Headings that say a solve failed without saying why.
_GENERIC = re.compile(
    r"^(could not solve for environment specs|the following packages? (are|is|could)\b|"
    r"encountered problems while solving|cannot solve the request because of:?$)",
    re.IGNORECASE,
)
_LEAF_MARKERS = (
    "for which no candidates were found",
    "conflicts with",
    "does not exist",
    "is locked",
    "is excluded",
    "missing on the system",
)
_NOT_INSTALLABLE = re.compile(
    r"^(?P<what>.+?)\s+(?:is not installable|cannot be installed)\b", re.IGNORECASE
)


def _clean_spec(text: str) -> str:
    """``python =3.9 *`` (micromamba) or ``nosuchpkg *`` (rattler) -> ``python =3.9``."""
    tokens = [t for t in text.strip().rstrip(".,;:").split() if t not in {"*", "=*"}]
    return " ".join(tokens)


def summarise_problems(text: str) -> str:
    """One line out of a solver's problem report (rattler's or micromamba's tree, libsolv's list).

    Says which requested packages do not exist, or which cannot be installed and which
    requirements are in the way; never the whole tree.
    """
    header: list[str] = []
    entries: list[tuple[int, str]] = []
    for raw in text.splitlines():
        line = _LOG_PREFIX.sub("", raw.rstrip())
        body = line.lstrip(_TREE)
        if not body.strip():
            continue
        if any(g in line[: len(line) - len(body)] for g in "├└"):
            entries.append((len(line) - len(body), body.strip()))
        else:
            header.append(body.strip())

    missing: list[str] = []
    blocked: list[str] = []
    for line in header:
        line = re.sub(r"^Cannot solve the request because of:\s*", "", line)
        found = re.match(r"No candidates were found for (.+?)\.?$", line)
        if found:
            missing.append(_clean_spec(found.group(1)))
        for m in re.finditer(r"nothing provides requested (\S+(?: \S+)?)", line):
            missing.append(_clean_spec(m.group(1)))
        stuck = _NOT_INSTALLABLE.match(line)
        if stuck:
            blocked.append(_clean_spec(stuck.group("what")))
    top = min((depth for depth, _ in entries), default=0)
    names: list[str] = []
    for depth, body in entries:
        if depth == top:
            gone = re.match(r"(.+?),? (?:which )?does not exist", body)
            if gone:
                missing.append(_clean_spec(gone.group(1)))
                continue
            stuck = _NOT_INSTALLABLE.match(body)
            if stuck:
                blocked.append(_clean_spec(stuck.group("what")))
                continue
        if any(marker in body for marker in _LEAF_MARKERS):
            names.append(body.split()[0].rstrip(","))
    for m in re.finditer(r"nothing provides (\S+) .*?needed by (\S+)", text):
        names.append(m.group(1))
        blocked.append(m.group(2))

    if missing:
        summary = f"no package matches {', '.join(dict.fromkeys(missing))}"
    elif blocked:
        summary = "; ".join(f"{b} cannot be installed" for b in dict.fromkeys(blocked))
        unique = sorted(dict.fromkeys(names))
        if unique:
            more = f" and {len(unique) - 5} more" if len(unique) > 5 else ""
            summary += f" (unsatisfiable requirements on {', '.join(unique[:5])}{more})"
    else:
        lines = [line for line in header + [b for _, b in entries] if not _GENERIC.match(line)]
        summary = lines[0] if lines else "the solver gave no reason"
    summary = " ".join(summary.split())
    return summary if len(summary) <= _MAX_SUMMARY else summary[: _MAX_SUMMARY - 1] + "…"


def specs_text(specs: Sequence[str], shown: int = 12) -> str:
    """The specs for a message: all of a recipe's usual handful, the first few of a huge one."""
    if len(specs) <= shown:
        return " ".join(specs)
    return f"{' '.join(specs[:shown])} … and {len(specs) - shown:,} more"


def _solver_message(summary: str, request: SolveRequest) -> str:
    specs = specs_text(request.specs)
    where = ", ".join(c.public_url for c in request.channels)
    hint = f" in {where}" if summary.startswith("no package matches") and where else ""
    return f"cannot solve {specs!r} for {request.platform}: {redact(summary)}{hint}"


def _invalid_spec(request: SolveRequest, reason: str) -> SolveError:
    import rattler

    bad = request.specs
    for spec in request.specs:
        try:
            rattler.MatchSpec(spec, strict=True)
        except Exception:  # rattler's parse errors share no base class
            bad = [spec]
            break
    return SolveError(
        f"invalid spec {' '.join(bad)!r} (solving for {request.platform}): {redact(reason)}"
    )


# --------------------------------------------------------------------------- rattler


class RattlerSolver:
    """py-rattler, in-process, for any target from any host."""

    name = "rattler"

    def solve(self, request: SolveRequest) -> list[LockedPackage]:
        import rattler
        from rattler.exceptions import (
            FetchRepoDataError,
            GatewayError,
            InvalidMatchSpecError,
            SolverError,
        )

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
            raise SolveError(_solver_message(summarise_problems(str(exc)), request)) from None
        except (FetchRepoDataError, GatewayError) as exc:
            where = ", ".join(c.public_url for c in request.channels)
            hint = " (--offline: nothing cached yet; build once online)" if request.offline else ""
            raise DownloadError(
                f"cannot fetch repodata from {where}{hint}: {redact(_error_text(exc))}"
            ) from None
        except (InvalidMatchSpecError, ValueError, TypeError) as exc:
            raise _invalid_spec(request, first_line(exc)) from None
        except Exception as exc:  # rattler's own errors share no base class
            if type(exc).__module__.split(".")[0] in {"rattler", "exceptions"}:
                raise SolveError(
                    f"solving {' '.join(request.specs)!r} for {request.platform} failed: "
                    f"{redact(first_line(exc))}"
                ) from None
            raise
        return _check_hashes([make_record(rattler_record_dict(r)) for r in records])


def rattler_record_dict(r: Any) -> dict[str, Any]:
    """A py-rattler record (solve result or lock entry) as the fields make_record reads."""
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


def _error_text(exc: BaseException) -> str:
    """rattler's errors put the cause on later lines ("Caused by: ..."): keep it on one line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines) or type(exc).__name__


# --------------------------------------------------------------------------- micromamba


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
        return _check_hashes(records)


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
        out.append(_LOG_PREFIX.sub("", raw).strip())
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
        return _invalid_spec(request, messages[0])
    if problems or "could not solve" in lowered:
        useful = [p for p in problems if p.strip() and p.strip() != "unsupported request"]
        report = explanation if explanation and "could not solve" in explanation.lower() else ""
        summary = summarise_problems(report or "\n".join(useful) or text)
        return SolveError(_solver_message(summary, request))
    if messages:
        return SolveError(
            f"micromamba failed solving {' '.join(request.specs)!r} for {request.platform}: "
            f"{redact(messages[-1])}"
        )
    return SolveError(
        f"micromamba exited with status {returncode} and printed no result for "
        f"{' '.join(request.specs)!r} ({request.platform}); is it micromamba?"
    )


def get_solver(name: str, micromamba_exe: str | None = None) -> Solver:
    if name == "rattler":
        return RattlerSolver()
    if name == "micromamba":
        return MicromambaSolver(micromamba_exe)
    raise SolveError(f"unknown solver {name!r}; use 'rattler' or 'micromamba'")
