"""A locked wheel: what the lock, the manifest and the bundle's ``wheels.txt`` say about it."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import LockError
from ..names import file_name_problem

_SHA256 = re.compile(r"[0-9a-f]{64}")


def public_url(url: str) -> str:
    """``url`` without ``user:password@`` and without a query or fragment (``#sha256=``)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass(frozen=True, order=True)
class WheelRecord:
    name: str  # normalised (PEP 503)
    version: str
    filename: str
    url: str  # never with credentials
    sha256: str
    size: int = 0  # 0 until downloaded (an index need not announce it)
    requires_python: str | None = None

    def __post_init__(self) -> None:
        problem = file_name_problem(self.filename)
        if problem:
            raise LockError(f"wheel {self.name!r}: unsafe file name {self.filename!r} ({problem})")
        # Here, not at the top: a build without wheels never makes one (issue 18, start-up).
        from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

        try:
            name, _, _, _ = parse_wheel_filename(self.filename)
        except InvalidWheelFilename:
            raise LockError(
                f"wheel {self.name!r}: {self.filename!r} is not a wheel file name"
            ) from None
        if canonicalize_name(name) != self.name:
            raise LockError(f"wheel {self.name!r}: file {self.filename!r} is another project")
        if not _SHA256.fullmatch(self.sha256):
            raise LockError(f"wheel {self.filename}: sha256 {self.sha256!r} is not 64 hex digits")
        if public_url(self.url) != self.url:
            raise LockError(f"wheel {self.filename}: URL carries credentials or a query")
        if self.size < 0:
            raise LockError(f"wheel {self.filename}: negative size {self.size}")

    @property
    def tags(self) -> frozenset[str]:
        from packaging.utils import parse_wheel_filename  # deferred: see __post_init__

        return frozenset(str(t) for t in parse_wheel_filename(self.filename)[3])

    def requirement_line(self) -> str:
        """The line of ``wheels.txt`` pip installs it from (with ``--find-links wheels``): the
        exact version and the file's hash, so ``--require-hashes`` accepts this file only."""
        return f"{self.name}=={self.version} --hash=sha256:{self.sha256}"

    def purl(self) -> str:
        """The SBOM's package URL (``pkg:pypi/name@version?file_name=...``)."""
        return f"pkg:pypi/{self.name}@{self.version}?file_name={urllib.parse.quote(self.filename)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "filename": self.filename,
            "url": self.url,
            "sha256": self.sha256,
            "size": self.size,
            "requires_python": self.requires_python,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WheelRecord:
        from packaging.utils import canonicalize_name  # deferred: see __post_init__

        try:
            return cls(
                name=str(canonicalize_name(str(data["name"]))),
                version=str(data["version"]),
                filename=str(data["filename"]),
                url=str(data["url"]),
                sha256=str(data["sha256"]).lower(),
                size=int(data.get("size") or 0),
                requires_python=(
                    str(data["requires_python"]) if data.get("requires_python") else None
                ),
            )
        except KeyError as exc:
            raise LockError(f"a wheel record lacks {exc.args[0]!r}: {dict(data)!r}") from None
        except (TypeError, ValueError) as exc:
            raise LockError(f"a wheel record is malformed ({exc}): {dict(data)!r}") from None


def wheels_txt(records: list[WheelRecord]) -> str:
    """The bundle's ``wheels.txt``: one hashed line per wheel, sorted, CRLF for Windows' pip."""
    return "".join(r.requirement_line() + "\r\n" for r in sorted(records))
