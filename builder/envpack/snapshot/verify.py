"""Bundles as archived snapshots: inspect, verify, diff, and the lock to rebuild one from.

Everything reads through :mod:`envpack.archive`, so it works the same on a zip, a self-extracting
.bat and an unpacked folder, and never extracts or writes anything. Nothing here prints; the CLI
formats with :func:`format_inspect` and :func:`format_diff`.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from envpack.archive.base import MAX_JSON, BundleReader, unsafe_reason
from envpack.archive.readers import is_bundle, open_bundle
from envpack.bundle.manifest import CHUNK, MANIFEST_NAME
from envpack.bundle.pkginfo import read_info_files
from envpack.errors import BundleError, EnvpackError, LockError
from envpack.fetch.micromamba_exe import exe_name
from envpack.lock.lockfile import Lock, PlatformLock, platform_lock_from_dict
from envpack.lock.record import LockedPackage, MicromambaArtifact
from envpack.names import printable
from envpack.platforms import check_platform

SBOM_NAME = "sbom.cdx.json"
EXPLICIT_NAME = "env.txt"
# Top-level files a bundle always has; any other top-level file is micromamba or a runtime DLL.
_FIXED_FILES = frozenset(
    {"setup.bat", "setup.sh", "README.txt", MANIFEST_NAME, SBOM_NAME, EXPLICIT_NAME}
)
_INDEX_KEYS = ("name", "version", "build", "subdir")
_REPODATA_KEYS = ("name", "version", "build", "build_number", "subdir", "sha256", "md5", "size")


# --------------------------------------------------------------------------- the lock inside


def platform_lock_of(manifest: Mapping[str, Any], where: str = MANIFEST_NAME) -> PlatformLock:
    """The bundle's one platform lock, as the manifest records it."""
    body = manifest.get("lock")
    platform = manifest.get("platform")
    if not isinstance(body, dict) or not isinstance(platform, str):
        raise LockError(f"{where}: no lock or platform recorded")
    return platform_lock_from_dict(platform, body, where, "lock")


def lock_from_manifest(manifest: Mapping[str, Any], where: str = MANIFEST_NAME) -> Lock:
    pl = platform_lock_of(manifest, where)
    recipe = manifest.get("recipe") if isinstance(manifest.get("recipe"), dict) else {}
    assert isinstance(recipe, dict)
    return Lock(
        name=str(manifest.get("name") or (manifest.get("lock") or {}).get("name") or "env"),
        platforms={pl.platform: pl},
        channels=tuple(str(c) for c in recipe.get("channels") or ()),
        specs=tuple(str(s) for s in recipe.get("specs") or ()),
        recipe_path=recipe.get("file"),
        envpack_version=str(manifest.get("envpack_version", "?")),
        extra={"kind": "bundle"},
    )


def lock_from_bundle(path: Path) -> tuple[Lock, dict[str, Any]]:
    """The lock an old bundle was built from, and its manifest (for ``build --from``)."""
    with open_bundle(path) as reader:
        manifest = reader.manifest
        return lock_from_manifest(manifest, f"{path}: {MANIFEST_NAME}"), manifest


def reading_problems(reader: BundleReader) -> list[str]:
    """What reading a bundle already showed to be wrong, without hashing anything: members
    left out (unsafe names, symlinks, duplicates), members that refuse to open, a changed
    batch header. inspect and diff report these; verify finds them and more."""
    problems = list(reader.problems)
    for name in reader.names():
        why = reader.damaged(name)
        if why:
            problems.append(f"{name}: {why}")
    try:
        manifest = reader.manifest
    except BundleError:
        return problems
    problems.extend(header_problems(reader, manifest))
    return [printable(p) for p in problems]


@dataclass(frozen=True)
class RebuildInputs:
    """What besides the lock shapes a bundle's bytes, taken from an old bundle."""

    lock: Lock
    manifest: dict[str, Any]
    post_install: tuple[tuple[str, bytes], ...]  # (original file name, content), in run order
    tools: tuple[
        tuple[str, bytes], ...
    ]  # micromamba first, then its DLLs, as the build orders them
    format: str = "zip"  # the old bundle's container, which a rebuild keeps


def rebuild_inputs(path: Path) -> RebuildInputs:
    """Everything ``build --from BUNDLE`` needs to reproduce the bundle byte for byte.

    The tools come from the old bundle itself, so a rebuild works even when the micromamba
    package (or the ``--micromamba-exe`` file) is no longer at hand.
    """
    with open_bundle(path) as reader:
        manifest = reader.manifest
        lock = lock_from_manifest(manifest, f"{path}: {MANIFEST_NAME}")
        names = reader.names()
        install = manifest.get("install") or {}
        listed = install.get("post_install") if isinstance(install, dict) else None
        scripts = (
            [str(s) for s in listed]
            if isinstance(listed, list)
            else [n for n in names if n.startswith("post-install/")]
        )
        missing = [rel for rel in scripts if rel not in names]
        if missing:
            raise BundleError(
                f"{path}: {MANIFEST_NAME} lists post-install script {printable(missing[0])!r}, "
                "which the bundle does not hold (damaged bundle; envpack verify names the rest)"
            )
        post = tuple(
            (re.sub(r"^\d+-", "", rel.rsplit("/", 1)[-1]), reader.read_bytes(rel, 1 << 30))
            for rel in scripts
        )
        exe = exe_name(str(manifest.get("platform", "win-64")))
        top = [n for n in names if "/" not in n and n not in _FIXED_FILES]
        dlls = sorted((n for n in top if n != exe), key=str.lower)
        tools = tuple((n, reader.read_bytes(n, 1 << 30)) for n in [exe, *dlls] if n in top)
        fmt = "tar" if reader.kind == "tar" else ("7z" if "7z" in reader.form else "zip")
        return RebuildInputs(
            lock=lock, manifest=manifest, post_install=post, tools=tools, format=fmt
        )


# --------------------------------------------------------------------------- inspect


def inspect_bundle(path: Path, sbom: bool = False) -> dict[str, Any]:
    """What a bundle holds, from its manifest alone (nothing is hashed; see verify_bundle)."""
    with open_bundle(path) as reader:
        manifest = reader.manifest
        try:
            pl = platform_lock_of(manifest, f"{path}: {MANIFEST_NAME}")
        except LockError as exc:
            raise BundleError(str(exc)) from None
        names = reader.names()
        info: dict[str, Any] = {
            "path": str(path),
            "form": reader.form,
            "bundle_size": _bundle_size(reader),
            "name": manifest.get("name"),
            "platform": manifest.get("platform"),
            "envpack_version": manifest.get("envpack_version"),
            "format_version": manifest.get("format_version"),
            "created": manifest.get("created"),
            "created_utc": _utc(manifest.get("created")),
            "recipe": manifest.get("recipe"),
            "micromamba": _micromamba_info(pl.micromamba),
            "virtual_packages": list(pl.virtual_packages),
            "input_hash": pl.input_hash,
            "install": manifest.get("install"),
            "packages": [
                {
                    "name": r.name,
                    "version": r.version,
                    "build": r.build,
                    "subdir": r.subdir,
                    "size": r.size,
                    "license": r.license,
                    "sha256": r.sha256,
                    "fn": r.fn,
                }
                for r in pl.packages
            ],
            "package_count": len(pl.packages),
            "total_size": sum(r.size for r in pl.packages),
            "file_count": len(names),
            "sbom_present": SBOM_NAME in names,
            "problems": reading_problems(reader),
        }
        if sbom:
            info["sbom"] = _read_json(reader, SBOM_NAME) if SBOM_NAME in names else None
        return info


def sbom_of(path: Path) -> dict[str, Any]:
    """The bundle's CycloneDX SBOM (``sbom.cdx.json``) as a JSON object."""
    with open_bundle(path) as reader:
        reader.manifest  # noqa: B018  (the format check comes first, as everywhere)
        if SBOM_NAME not in reader.names():
            raise BundleError(f"{path}: this bundle has no {SBOM_NAME}")
        document = _read_json(reader, SBOM_NAME)
        if not isinstance(document, dict):
            raise BundleError(f"{path}: {SBOM_NAME} is not a JSON object")
        return document


def format_inspect(info: Mapping[str, Any], sbom: bool = False) -> str:
    """A terminal view of :func:`inspect_bundle`'s result; ``sbom=True`` gives the SBOM itself."""
    if sbom:
        document = info.get("sbom")
        if not isinstance(document, dict):
            raise BundleError(f"{info.get('path')}: this bundle has no {SBOM_NAME}")
        return json.dumps(document, indent=2, ensure_ascii=False)
    recipe = info.get("recipe") or {}
    install = info.get("install") or {}
    mm = info.get("micromamba") or {}
    lines = [
        f"{info.get('name')} ({info.get('platform')}): envpack bundle, {info.get('form')}, "
        f"{human_size(info.get('bundle_size') or 0)}",
        f"  created      {info.get('created_utc') or '?'} by envpack {info.get('envpack_version')}",
    ]
    if recipe:
        specs = " ".join(recipe.get("specs") or [])
        chans = ", ".join(recipe.get("channels") or [])
        lines.append(f"  recipe       {recipe.get('file') or '?'}: {specs}")
        lines.append(f"  channels     {chans}")
    else:
        lines.append("  recipe       (none: built from a lock)")
    lines.append(f"  micromamba   {_micromamba_text(mm)}")
    if install:
        lines.append(
            f"  install      {install.get('default_prefix')}; "
            f"{human_size(int(install.get('installed_size') or 0))} installed, "
            f"longest path {install.get('longest_path')} characters"
        )
    if info.get("virtual_packages"):
        lines.append(f"  assumes      {' '.join(info['virtual_packages'])}")
    lines.append(f"  SBOM         {SBOM_NAME if info.get('sbom_present') else 'none'}")
    lines.append("")
    rows: list[tuple[str, ...]] = [
        (
            p["name"],
            p["version"],
            p["build"],
            p["subdir"],
            human_size(int(p["size"] or 0)),
            p.get("license") or "?",
        )
        for p in info.get("packages") or []
    ]
    lines += _table(("name", "version", "build", "subdir", "size", "licence"), rows, right={4})
    lines.append("")
    lines.append(
        f"{info.get('package_count')} packages, {human_size(int(info.get('total_size') or 0))} "
        "of packages"
    )
    lines += problem_lines(info.get("problems") or ())
    return "\n".join(lines)


def _micromamba_info(mm: MicromambaArtifact | None) -> dict[str, Any]:
    if mm is None:
        return {}
    out: dict[str, Any] = {"source": mm.source}
    if mm.record is not None:
        out.update(version=mm.record.version, build=mm.record.build, fn=mm.record.fn)
    if mm.file_name is not None:
        out.update(file=mm.file_name, sha256=mm.file_sha256)
    out["runtime"] = [f"{r.name}-{r.version}-{r.build}" for r in mm.runtime]
    return out


def _micromamba_text(mm: Mapping[str, Any]) -> str:
    if not mm:
        return "not recorded"
    if mm.get("source") == "file":
        return f"{mm.get('file')} (a local file, sha256 {str(mm.get('sha256'))[:12]}…)"
    runtime = f", runtime {', '.join(mm['runtime'])}" if mm.get("runtime") else ""
    return f"{mm.get('version')} (package {mm.get('fn')}{runtime})"


def _table(
    header: tuple[str, ...], rows: Sequence[tuple[str, ...]], right: frozenset[int] | set[int]
) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]

    def line(cells: tuple[str, ...]) -> str:
        out = [
            str(c).rjust(w) if i in right else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    return [line(header), line(tuple("-" * w for w in widths)), *(line(r) for r in rows)]


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _utc(epoch: Any) -> str | None:
    if not isinstance(epoch, int):
        return None
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _bundle_size(reader: BundleReader) -> int:
    parts = getattr(reader, "parts", None)
    if isinstance(parts, list):  # a split bundle: all its parts, not the one named
        return sum(p.stat().st_size for p in parts)
    if reader.source.is_file():
        return reader.source.stat().st_size
    return sum(reader.size(n) for n in reader.names())


def _read_json(reader: BundleReader, name: str) -> Any:
    data = reader.read_bytes(name, MAX_JSON)
    try:
        return json.loads(data)
    except ValueError as exc:
        raise BundleError(f"{name}: not valid JSON ({exc})") from None


# --------------------------------------------------------------------------- verify


def header_problems(reader: BundleReader, manifest: Mapping[str, Any]) -> list[str]:
    """A self-extracting file's batch header is the code the user runs: it must be the one
    the manifest records, byte for byte (a prepended ``powershell … | iex`` line, or bytes
    inserted before the zip, change it)."""
    leading = getattr(reader, "leading_bytes", None)
    if not callable(leading):
        return []  # an unpacked folder or a 7z: nothing runs before the files
    data = leading()
    if data == b"":
        return []
    recorded = manifest.get("sfx_header")
    if data is None:
        return ["batch header: over 1 MiB of data before the zip (not envpack's)"]
    if not isinstance(recorded, dict) or "sha256" not in recorded:
        return [
            f"batch header: {len(data)} bytes before the zip, but {MANIFEST_NAME} records "
            "no header to check them against (not a self-extracting envpack bundle)"
        ]
    size, sha256 = recorded.get("size"), str(recorded["sha256"]).lower()
    if len(data) != size:
        return [
            f"batch header: {len(data)} bytes, the manifest says {size} "
            "(bytes added or removed before the zip: do not run it)"
        ]
    if hashlib.sha256(data).hexdigest() != sha256:
        return [
            "batch header: its sha256 differs from the manifest (the script was changed: "
            "do not run it)"
        ]
    return []


def verify_bundle(path: Path) -> list[str]:
    """Every problem with a bundle, one line each naming the file or package; [] when sound.

    Raises only when ``path`` does not exist: anything found there is reported, not raised.
    """
    path = Path(path)
    if not path.exists():
        raise BundleError(f"{path}: no such bundle")
    try:
        reader = open_bundle(path)
    except BundleError as exc:
        return [str(exc)]
    with reader:
        problems = _Verifier(reader).run()
        # A split bundle also checks each part against its NAME.sha256 (formats.SplitReader).
        verify_parts = getattr(reader, "verify_parts", None)
        if callable(verify_parts):
            problems.extend(str(p) for p in verify_parts())
        return [printable(p) for p in problems]


@dataclass
class _Digest:
    sha256: str
    md5: str
    size: int


@dataclass
class _Verifier:
    reader: BundleReader
    problems: list[str] = field(default_factory=list)
    digests: dict[str, _Digest] = field(default_factory=dict)
    unreadable: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)

    def _missing(self, name: str, why: str) -> None:
        """Report a missing file once, whichever check notices it first."""
        if name not in self.missing:
            self.missing.add(name)
            self.problems.append(f"missing file: {name} ({why})")

    def run(self) -> list[str]:
        try:
            manifest = self.reader.manifest
        except BundleError as exc:
            # Nothing else can be trusted, or even understood, without a manifest we can read.
            return [str(exc), *self.reader.problems]  # made printable by verify_bundle
        self.problems.extend(self.reader.problems)
        names = set(self.reader.names())
        expected = self._manifest_files(manifest)
        try:
            pl = platform_lock_of(manifest)
        except LockError as exc:
            self.problems.append(str(exc))
            pl = None
        package_files = (
            {f"channel/{r.subdir}/{r.fn}": r for r in pl.packages} if pl is not None else {}
        )
        self._check_files(expected, names, package_files)
        self._check_header(manifest)
        if pl is not None:
            self._check_platform(manifest, pl)
            self._check_packages(pl, expected, names)
            self._check_repodata(pl, names)
            self._check_explicit(pl, names)
            self._check_sbom(pl, names)
            self._check_micromamba(pl, names)
        return self.problems

    # ---- files against the manifest

    def _manifest_files(self, manifest: Mapping[str, Any]) -> dict[str, tuple[str, int]]:
        files = manifest.get("files")
        if not isinstance(files, dict):
            self.problems.append(f"{MANIFEST_NAME}: no 'files' table")
            return {}
        out: dict[str, tuple[str, int]] = {}
        for name, entry in files.items():
            reason = unsafe_reason(str(name))
            if reason:
                self.problems.append(f"{MANIFEST_NAME} lists an unsafe path {name!r} ({reason})")
                continue
            try:
                out[str(name)] = (str(entry["sha256"]).lower(), int(entry["size"]))
            except (KeyError, TypeError, ValueError):
                self.problems.append(f"{MANIFEST_NAME}: the entry for {name} is malformed")
        return out

    def _check_files(
        self,
        expected: Mapping[str, tuple[str, int]],
        names: set[str],
        package_files: Mapping[str, LockedPackage],
    ) -> None:
        for name in sorted(expected):
            sha256, size = expected[name]
            if name not in names:
                if name not in package_files:  # a missing package is reported as a package
                    self._missing(name, "listed in the manifest")
                continue
            if self.reader.size(name) != size:
                self.problems.append(
                    f"{name}: {self.reader.size(name)} bytes, the manifest says {size}"
                )
                continue
            digest = self._digest(name)
            if digest is not None and digest.sha256 != sha256:
                self.problems.append(
                    f"{name}: sha256 differs from the manifest (changed or corrupt)"
                )
        for name in sorted(names - set(expected) - {MANIFEST_NAME}):
            why = self.reader.damaged(name)
            self.problems.append(
                f"extra file: {name} (not in the manifest)" + (f"; {why}" if why else "")
            )

    def _check_header(self, manifest: Mapping[str, Any]) -> None:
        self.problems.extend(header_problems(self.reader, manifest))

    def _digest(self, name: str) -> _Digest | None:
        if name in self.digests:
            return self.digests[name]
        if name in self.unreadable:
            return None
        sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
        try:
            with self.reader.open(name) as fh:
                while chunk := fh.read(CHUNK):
                    sha.update(chunk)
                    md5.update(chunk)
                    size += len(chunk)
        except BundleError as exc:
            self.problems.append(str(exc))
            self.unreadable.add(name)
            return None
        self.digests[name] = _Digest(sha.hexdigest(), md5.hexdigest(), size)
        return self.digests[name]

    # ---- the lock against the platform, the packages, repodata, env.txt, SBOM

    def _check_platform(self, manifest: Mapping[str, Any], pl: PlatformLock) -> None:
        try:
            check_platform(pl.platform)
        except EnvpackError:
            self.problems.append(f"{MANIFEST_NAME}: unknown platform {pl.platform!r}")
        lock_platform = (manifest.get("lock") or {}).get("platform")
        if lock_platform not in (None, pl.platform):
            self.problems.append(
                f"{MANIFEST_NAME}: the lock is for {lock_platform}, the bundle for {pl.platform}"
            )
        for r in pl.packages:
            if r.subdir not in (pl.platform, "noarch"):
                self.problems.append(
                    f"package {r.dist} is for {r.subdir}, but the bundle is for {pl.platform}"
                )

    def _check_packages(
        self, pl: PlatformLock, expected: Mapping[str, tuple[str, int]], names: set[str]
    ) -> None:
        for r in pl.packages:
            reason = unsafe_reason(r.fn) or ("'/' in file name" if "/" in r.fn else None)
            reason = reason or unsafe_reason(r.subdir)
            if reason:
                self.problems.append(f"package {r.dist}: unsafe file name {r.fn!r} ({reason})")
                continue
            rel = f"channel/{r.subdir}/{r.fn}"
            if rel not in names:
                self.problems.append(f"missing package {r.dist}: {rel}")
                continue
            if rel in expected and r.sha256 and expected[rel][0] != r.sha256:
                self.problems.append(
                    f"package {r.dist}: the manifest and the lock disagree on the sha256 of {rel}"
                )
            if r.size and self.reader.size(rel) != r.size:
                self.problems.append(
                    f"package {r.dist}: {rel} is {self.reader.size(rel)} bytes, the lock says "
                    f"{r.size}"
                )
            else:
                self._check_package_hashes(r, rel)
            # Independent of the hashes: a lock can be rewritten to match a swapped package.
            if rel not in self.unreadable:
                self._check_index(r, rel)

    def _check_package_hashes(self, r: LockedPackage, rel: str) -> None:
        digest = self._digest(rel)
        if digest is None:
            return
        if r.sha256 and digest.sha256 != r.sha256:
            self.problems.append(
                f"package {r.dist}: {rel} sha256 does not match the lock (changed or corrupt)"
            )
        if r.md5 and digest.md5 != r.md5:
            self.problems.append(f"package {r.dist}: {rel} md5 does not match the lock")

    def _check_index(self, r: LockedPackage, rel: str) -> None:
        try:
            index = _index_json(self.reader, rel)
        except BundleError as exc:
            self.problems.append(f"package {r.dist}: {exc}")
            return
        for key in _INDEX_KEYS:
            have, want = str(index.get(key)), str(getattr(r, key))
            if have != want:
                extra = " (a package of another platform)" if key == "subdir" else ""
                self.problems.append(
                    f"package {r.dist}: its info/index.json says {key} {have}, the lock says "
                    f"{want}{extra}"
                )

    def _check_repodata(self, pl: PlatformLock, names: set[str]) -> None:
        # Packages of other subdirs are reported by the platform check, not again here.
        for subdir in sorted({pl.platform, "noarch"}):
            if unsafe_reason(subdir):
                continue
            rel = f"channel/{subdir}/repodata.json"
            if rel not in names:
                self._missing(rel, "micromamba needs it")
                continue
            try:
                data = _read_json(self.reader, rel)
            except BundleError as exc:
                self.problems.append(str(exc))
                continue
            listed: dict[str, Any] = {}
            for key in ("packages", "packages.conda"):
                table = data.get(key) if isinstance(data, dict) else None
                if isinstance(table, dict):
                    listed.update(table)
            locked = {r.fn: r for r in pl.packages if r.subdir == subdir}
            for fn in sorted(set(locked) - set(listed)):
                self.problems.append(f"{rel}: does not list {fn}, which the lock has")
            for fn in sorted(set(listed) - set(locked)):
                self.problems.append(f"{rel}: lists {fn}, which is not in the lock")
            for fn in sorted(set(listed) & set(locked)):
                entry, want = listed[fn], locked[fn].repodata_entry()
                if not isinstance(entry, dict):
                    self.problems.append(f"{rel}: the entry for {fn} is malformed")
                    continue
                for key in _REPODATA_KEYS:
                    if key in entry and str(entry[key]) != str(want[key]):
                        self.problems.append(
                            f"{rel}: {fn} has {key} {entry[key]}, the lock says {want[key]}"
                        )

    def _check_explicit(self, pl: PlatformLock, names: set[str]) -> None:
        if EXPLICIT_NAME not in names:
            self._missing(EXPLICIT_NAME, "setup.bat installs from it")
            return
        try:
            text = self.reader.read_bytes(EXPLICIT_NAME).decode("utf-8")
        except (BundleError, UnicodeDecodeError) as exc:
            self.problems.append(f"{EXPLICIT_NAME}: unreadable ({exc})")
            return
        listed: dict[str, str] = {}
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#") or line == "@EXPLICIT":
                continue
            url, _, digest = line.partition("#")
            listed[urllib.parse.unquote(url.rsplit("/", 1)[-1])] = digest.lower()
        locked = {r.fn: r for r in pl.packages}
        for fn in sorted(set(locked) - set(listed)):
            self.problems.append(f"{EXPLICIT_NAME}: does not list {fn}, which the lock has")
        for fn in sorted(set(listed) - set(locked)):
            self.problems.append(f"{EXPLICIT_NAME}: lists {fn}, which is not in the lock")
        for fn in sorted(set(listed) & set(locked)):
            digest, r = listed[fn], locked[fn]
            if digest not in {r.md5, r.sha256, f"sha256:{r.sha256}"}:
                self.problems.append(f"{EXPLICIT_NAME}: the hash for {fn} differs from the lock")

    def _check_sbom(self, pl: PlatformLock, names: set[str]) -> None:
        if SBOM_NAME not in names:
            self._missing(SBOM_NAME, "the package list with licences and hashes")
            return
        try:
            sbom = _read_json(self.reader, SBOM_NAME)
            components = {
                c["name"]: {h["alg"]: h["content"] for h in c.get("hashes") or ()}
                for c in sbom.get("components") or ()
            }
        except BundleError as exc:
            self.problems.append(str(exc))
            return
        except (AttributeError, KeyError, TypeError):
            self.problems.append(f"{SBOM_NAME}: not a CycloneDX component list")
            return
        for r in pl.packages:
            hashes = components.get(r.name)
            if hashes is None:
                self.problems.append(f"{SBOM_NAME}: does not list {r.name}")
            elif r.sha256 and hashes.get("SHA-256") not in (None, r.sha256):
                self.problems.append(f"{SBOM_NAME}: the sha256 of {r.name} differs from the lock")
        for name in sorted(set(components) - {r.name for r in pl.packages}):
            self.problems.append(f"{SBOM_NAME}: lists {name}, which is not in the lock")

    def _check_micromamba(self, pl: PlatformLock, names: set[str]) -> None:
        exe = exe_name(pl.platform)
        if exe not in names:
            self._missing(exe, "setup.bat installs with it")
            return
        mm = pl.micromamba
        if mm is not None and mm.source == "file" and mm.file_sha256:
            digest = self._digest(exe)
            if digest is not None and digest.sha256 != mm.file_sha256:
                self.problems.append(f"{exe}: sha256 differs from the lock's micromamba file")


def _index_json(reader: BundleReader, rel: str) -> dict[str, Any]:
    """A bundled package's ``info/index.json``, streamed from inside the bundle."""
    with reader.open(rel, seekable=True) as fh:
        try:
            found = read_info_files(rel, ("info/index.json",), fileobj=fh)
        except BundleError as exc:
            raise BundleError(f"{rel}: {str(exc).split(': ', 1)[-1]}") from None
    if "info/index.json" not in found:
        raise BundleError(f"{rel}: no info/index.json; not a conda package")
    try:
        index = json.loads(found["info/index.json"])
    except ValueError as exc:
        raise BundleError(f"{rel}: info/index.json is not valid JSON ({exc})") from None
    if not isinstance(index, dict):
        raise BundleError(f"{rel}: info/index.json is not a JSON object")
    return index


# --------------------------------------------------------------------------- diff


@dataclass(frozen=True)
class DiffResult:
    a: str
    b: str
    platform: str
    added: tuple[LockedPackage, ...] = ()
    removed: tuple[LockedPackage, ...] = ()
    changed: tuple[tuple[LockedPackage, LockedPackage], ...] = ()
    unchanged: int = 0
    micromamba: tuple[str, str] | None = None  # (old, new) when they differ
    problems: tuple[str, ...] = ()  # what reading either side showed to be wrong

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.micromamba)

    def to_dict(self) -> dict[str, Any]:
        def pkg(r: LockedPackage) -> dict[str, Any]:
            return {"name": r.name, "version": r.version, "build": r.build, "subdir": r.subdir}

        return {
            "a": self.a,
            "b": self.b,
            "platform": self.platform,
            "added": [pkg(r) for r in self.added],
            "removed": [pkg(r) for r in self.removed],
            "changed": [
                {
                    "name": old.name,
                    "old": f"{old.version}-{old.build}",
                    "new": f"{new.version}-{new.build}",
                    "old_subdir": old.subdir,
                    "new_subdir": new.subdir,
                }
                for old, new in self.changed
            ],
            "unchanged": self.unchanged,
            "micromamba": list(self.micromamba) if self.micromamba else None,
            "problems": list(self.problems),
        }


def load_any(path: Path, platform: str | None = None) -> tuple[Lock, list[str]]:
    """A bundle's lock, or a lock file of any kind :mod:`envpack.lock.importers` reads, with what
    reading a bundle showed to be wrong with it (see :func:`reading_problems`)."""
    from envpack.lock.importers import detect_lock_kind, load_lock_file

    path = Path(path)
    if not path.exists():
        raise EnvpackError(f"{path}: no such bundle or lock file")
    # Bundles first: their probes read a few bytes, while a lock is recognised by reading text.
    if is_bundle(path):
        with open_bundle(path) as reader:
            lock = lock_from_manifest(reader.manifest, f"{path}: {MANIFEST_NAME}")
            return lock, [f"{path}: {p}" for p in reading_problems(reader)]
    if detect_lock_kind(path) is not None:
        return load_lock_file(path, platform), []
    raise EnvpackError(f"{path}: neither a bundle nor a lock file envpack reads")


def diff(a: Path, b: Path, platform: str | None = None) -> DiffResult:
    """Packages added, removed and changed from ``a`` to ``b`` (bundles or lock files)."""
    (lock_a, problems_a), (lock_b, problems_b) = load_any(a), load_any(b)
    pa, pb = _pick_platforms(lock_a, lock_b, platform, a, b)
    old = {r.name: r for r in lock_a.platforms[pa].packages}
    new = {r.name: r for r in lock_b.platforms[pb].packages}
    changed = tuple(
        (old[n], new[n]) for n in sorted(set(old) & set(new)) if not _same(old[n], new[n])
    )
    mm = (_mm_label(lock_a.platforms[pa]), _mm_label(lock_b.platforms[pb]))
    return DiffResult(
        a=str(a),
        b=str(b),
        platform=pa if pa == pb else f"{pa} -> {pb}",
        added=tuple(new[n] for n in sorted(set(new) - set(old))),
        removed=tuple(old[n] for n in sorted(set(old) - set(new))),
        changed=changed,
        unchanged=len(set(old) & set(new)) - len(changed),
        micromamba=mm if mm[0] != mm[1] and mm[0] and mm[1] else None,
        problems=(*problems_a, *problems_b),
    )


def _pick_platforms(
    a: Lock, b: Lock, platform: str | None, path_a: Path, path_b: Path
) -> tuple[str, str]:
    if platform is not None:
        for lock, path in ((a, path_a), (b, path_b)):
            if platform not in lock.platforms:
                have = ", ".join(sorted(lock.platforms)) or "none"
                raise LockError(f"{path}: has no {platform} environment (it has: {have})")
        return platform, platform
    common = sorted(set(a.platforms) & set(b.platforms))
    if len(a.platforms) == 1 and len(b.platforms) == 1:
        return next(iter(a.platforms)), next(iter(b.platforms))
    for only in (a, b):  # a bundle (one platform) decides for a multi-platform lock
        if len(only.platforms) == 1 and next(iter(only.platforms)) in common:
            return common[0], common[0]
    if len(common) == 1:
        return common[0], common[0]
    if "win-64" in common:
        return "win-64", "win-64"
    raise LockError(
        f"{path_a} and {path_b} share no single platform to compare "
        f"({', '.join(common) or 'none in common'}); name one"
    )


def _same(a: LockedPackage, b: LockedPackage) -> bool:
    if (a.version, a.build, a.subdir) != (b.version, b.build, b.subdir):
        return False
    if a.sha256 and b.sha256:
        return a.sha256 == b.sha256
    if a.md5 and b.md5:
        return a.md5 == b.md5
    return True


def _mm_label(pl: PlatformLock) -> str:
    mm = pl.micromamba
    if mm is None:
        return ""
    if mm.record is not None:
        return f"{mm.record.version}-{mm.record.build}"
    return f"{mm.file_name} ({(mm.file_sha256 or '')[:12]})"


def format_diff(result: DiffResult) -> str:
    lines = [f"{result.a} -> {result.b} ({result.platform})"]
    width = max(
        (len(r.name) for r in _all(result)),
        default=4,
    )
    for r in result.added:
        lines.append(f"  + {r.name.ljust(width)}  {r.version}-{r.build}")
    for r in result.removed:
        lines.append(f"  - {r.name.ljust(width)}  {r.version}-{r.build}")
    for old, new in result.changed:
        if (old.version, old.build, old.subdir) == (new.version, new.build, new.subdir):
            what = f"{old.version}-{old.build}, same name but a different file"
        else:
            what = f"{_label(old, new.subdir)} -> {_label(new, old.subdir)}"
        lines.append(f"  ~ {old.name.ljust(width)}  {what}")
    if result.micromamba:
        lines.append(
            f"  ~ {'(micromamba)'.ljust(width)}  {result.micromamba[0]} -> {result.micromamba[1]}"
        )
    if result.empty:
        lines.append(f"  no differences ({result.unchanged} packages)")
    else:
        lines.append(
            f"{len(result.added)} added, {len(result.removed)} removed, "
            f"{len(result.changed)} changed, {result.unchanged} unchanged"
        )
    lines += problem_lines(result.problems)
    return "\n".join(lines)


def problem_lines(problems: Sequence[str]) -> list[str]:
    """The problems inspect and diff noticed, for the terminal (verify lists them all)."""
    if not problems:
        return []
    head = f"PROBLEMS ({len(problems)}; run envpack verify for a full check):"
    return ["", head, *(f"  ! {p}" for p in problems)]


def _label(r: LockedPackage, other_subdir: str) -> str:
    text = f"{r.version}-{r.build}"
    return f"{text} ({r.subdir})" if r.subdir != other_subdir else text


def _all(result: DiffResult) -> Iterable[LockedPackage]:
    yield from result.added
    yield from result.removed
    for old, _ in result.changed:
        yield old
