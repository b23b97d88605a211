"""The package record, owned here alone: :class:`LockedPackage` (one package as the lock,
the bundle manifest and the downloader see it), :class:`MicromambaArtifact`, and
:func:`make_record`, which turns what a solver or an importer reports into one.

A record carries name, version, build, build_number, subdir, fn, url, channel, sha256, md5, size,
depends, constrains, license, timestamp. URLs and channels never carry credentials.

Each record is normalised by :func:`make_record`, so that what two solvers report differently in
form only is the same in the lock:

- ``url`` is percent-normalised, and ``channel`` is derived from the URL: micromamba 1.x reports
  the channel as a URL with the subdir, 2.x as a name or a URL without it.
- ``timestamp`` is kept to the second (as milliseconds): micromamba reports seconds, repodata and
  rattler milliseconds. A record without one has ``None`` (micromamba says 0).
- ``license`` is ``None`` when the repodata has none (micromamba says "").
- ``depends``/``constrains`` are rewritten in one canonical match-spec spelling: micromamba
  re-renders them (``ucrt>=10`` as ``ucrt >=10``, ``x ==1`` as ``x 1``), rattler keeps the
  repodata's text.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from envpack.channels import strip_token
from envpack.errors import LockError
from envpack.names import file_name_problem

_HEX = frozenset("0123456789abcdef")


def _is_hex(value: str, length: int) -> bool:
    return len(value) == length and set(value) <= _HEX


@dataclass(frozen=True, order=True)
class LockedPackage:
    name: str
    version: str
    build: str
    build_number: int
    subdir: str
    fn: str
    url: str
    channel: str
    sha256: str
    md5: str
    size: int
    depends: tuple[str, ...] = ()
    constrains: tuple[str, ...] = ()
    license: str | None = None
    timestamp: int | None = None  # milliseconds since the epoch, as repodata.json has it

    def __post_init__(self) -> None:
        # Every record, however it was made (lock file, importer, solver result, an old
        # bundle's lock), passes here: its fn and subdir become cache and bundle paths.
        for label, value in (("file name", self.fn), ("subdir", self.subdir)):
            problem = file_name_problem(value)
            if problem:
                raise LockError(
                    f"package {self.name!r}: unsafe {label} {value!r} ({problem}); "
                    "the lock or channel is damaged or hostile, refusing it"
                )
        for label, value, length in (("sha256", self.sha256, 64), ("md5", self.md5, 32)):
            if value and not _is_hex(value, length):
                raise LockError(
                    f"package {self.name!r}: {label} {value!r} is not {length} hex digits"
                )
        if self.size < 0:
            raise LockError(f"package {self.name!r}: negative size {self.size}")

    @property
    def dist(self) -> str:
        return f"{self.name}-{self.version}-{self.build}"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["depends"] = list(self.depends)
        out["constrains"] = list(self.constrains)
        return out

    def repodata_entry(self) -> dict[str, Any]:
        """The record as a channel's repodata.json lists it."""
        entry: dict[str, Any] = {
            "build": self.build,
            "build_number": self.build_number,
            "constrains": list(self.constrains),
            "depends": list(self.depends),
            "md5": self.md5,
            "name": self.name,
            "sha256": self.sha256,
            "size": self.size,
            "subdir": self.subdir,
            "version": self.version,
        }
        if self.license is not None:
            entry["license"] = self.license
        if self.timestamp is not None:
            entry["timestamp"] = self.timestamp
        return entry

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "lock") -> LockedPackage:
        try:
            return cls(
                name=str(data["name"]),
                version=str(data["version"]),
                build=str(data["build"]),
                build_number=int(data.get("build_number", 0)),
                subdir=str(data["subdir"]),
                fn=str(data["fn"]),
                url=strip_token(str(data["url"])),
                channel=strip_token(str(data.get("channel", ""))),
                sha256=str(data["sha256"]).lower(),
                md5=str(data["md5"]).lower(),
                size=int(data["size"]),
                depends=tuple(str(d) for d in data.get("depends") or ()),
                constrains=tuple(str(d) for d in data.get("constrains") or ()),
                license=None if data.get("license") is None else str(data["license"]),
                timestamp=None if data.get("timestamp") is None else int(data["timestamp"]),
            )
        except LockError as exc:
            raise LockError(f"{where}: {exc}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            name = data.get("name", "?") if isinstance(data, Mapping) else "?"
            raise LockError(f"{where}: package {name!r} record is incomplete ({exc})") from None


@dataclass(frozen=True)
class MicromambaArtifact:
    """Where the bundle's micromamba.exe comes from: a package of the target, or a local file."""

    source: str  # "package" or "file"
    record: LockedPackage | None = None
    file_name: str | None = None
    file_sha256: str | None = None
    runtime: tuple[LockedPackage, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source}
        if self.record is not None:
            out["record"] = self.record.to_dict()
        if self.file_name is not None:
            out["file"] = {"name": self.file_name, "sha256": self.file_sha256}
        out["runtime"] = [r.to_dict() for r in sorted(self.runtime)]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> MicromambaArtifact:
        file = as_mapping(data.get("file") or {}, where, "micromamba.file")
        return cls(
            source=str(data.get("source", "package")),
            record=LockedPackage.from_dict(as_mapping(data["record"], where, "record"), where)
            if data.get("record")
            else None,
            file_name=file.get("name"),
            file_sha256=file.get("sha256"),
            runtime=tuple(
                LockedPackage.from_dict(as_mapping(r, where, "runtime"), where)
                for r in data.get("runtime") or ()
            ),
        )


def as_mapping(value: Any, where: str, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise LockError(f"{where}: {what} is not a mapping; the lock is damaged, lock again")
    return value


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


HASH_FORMAT = "envpack-environment 1"
SHORT_HASH = 8  # hex digits of an environment hash in file names and messages


def environment_sha256(platform: str, records: Iterable[LockedPackage]) -> str:
    """The identity of an installed environment: its platform and each package's
    ``subdir/fn#md5``, sorted. Independent of the lock's form, channels' names and order, so
    a bundle, its lock and what ``micromamba list --explicit --md5`` prints on the PC agree.
    setup.bat records it in the prefix; update bundles name their base and target by it."""
    lines = sorted(f"{r.subdir}/{r.fn}#{r.md5}\n" for r in records)
    text = f"{HASH_FORMAT}\n{platform}\n" + "".join(lines)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def lock_sha256(pl: Any) -> str:
    """:func:`environment_sha256` of a platform lock's packages."""
    return environment_sha256(pl.platform, pl.packages)
