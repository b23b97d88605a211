"""What every solver is: a :class:`SolveRequest` in, sorted lock records out (:class:`Solver`),
and the one-line messages a failed solve becomes."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from envpack.channels import Channel, redact
from envpack.errors import SolveError
from envpack.lock.record import LockedPackage
from envpack.platforms import VirtualPackage

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


def check_hashes(records: list[LockedPackage]) -> list[LockedPackage]:
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


LOG_PREFIX = re.compile(r"^\s*(critical|error|warning|info|debug|trace)\s+libmamba\s+", re.I)


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
        line = LOG_PREFIX.sub("", raw.rstrip())
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


def solver_message(summary: str, request: SolveRequest) -> str:
    specs = specs_text(request.specs)
    where = ", ".join(c.public_url for c in request.channels)
    hint = f" in {where}" if summary.startswith("no package matches") and where else ""
    return f"cannot solve {specs!r} for {request.platform}: {redact(summary)}{hint}"


def invalid_spec(request: SolveRequest, reason: str) -> SolveError:
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
