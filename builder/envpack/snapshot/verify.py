"""Verify a bundle: every member hashed against the manifest, the manifest against the packages'
own metadata, the scripts and header against what the manifest says they are.

Everything in snapshot/ reads through :mod:`envpack.archive`, so it works the same on a zip, a
self-extracting .bat and an unpacked folder, and never extracts or writes anything.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envpack.archive.base import BundleReader, unsafe_reason
from envpack.archive.readers import open_bundle
from envpack.bundle.manifest import EXPLICIT_NAME, MANIFEST_NAME, SBOM_NAME
from envpack.bundle.pkginfo import read_info_files
from envpack.errors import BundleError, EnvpackError, LockError
from envpack.fetch.micromamba_exe import exe_name
from envpack.limits import CHUNK, MAX_JSON
from envpack.lock.lockfile import PlatformLock, platform_lock_from_dict
from envpack.lock.record import LockedPackage
from envpack.names import printable
from envpack.platforms import check_platform
from envpack.pypi.bundle import is_wheel_component, member_wheel_problems, sbom_wheel_problems
from envpack.snapshot.rebuild import platform_lock_of
from envpack.snapshot.update import carried_lock, update_problems, update_table

_INDEX_KEYS = ("name", "version", "build", "subdir")
_REPODATA_KEYS = ("name", "version", "build", "build_number", "subdir", "sha256", "md5", "size")


# --------------------------------------------------------------------------- the lock inside


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


# --------------------------------------------------------------------------- inspect


def read_json(reader: BundleReader, name: str) -> Any:
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
        # An update bundle's lock is the whole new environment; it holds only the packages its
        # base lacks (for a full bundle, held is the lock itself).
        held = carried_lock(manifest, pl) if pl is not None else None
        package_files = (
            {f"channel/{r.subdir}/{r.fn}": r for r in held.packages} if held is not None else {}
        )
        self._check_files(expected, names, package_files)
        self._check_header(manifest)
        if pl is not None and held is not None:
            self._check_platform(manifest, pl)
            self._check_packages(held, expected, names)
            self._check_repodata(held, names)
            self._check_explicit(pl, names)
            self._check_sbom(pl, names)
            self._check_environments(manifest, pl, names)
            self._check_wheels(pl, names)
            if (update_table(manifest) or {}).get("micromamba") != "prefix":
                self._check_micromamba(pl, names)
            self.problems.extend(update_problems(manifest, pl))
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
                data = read_json(self.reader, rel)
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

    def _check_explicit(
        self, pl: PlatformLock, names: set[str], explicit: str = EXPLICIT_NAME
    ) -> None:
        if explicit not in names:
            self._missing(explicit, "setup.bat installs from it")
            return
        try:
            text = self.reader.read_bytes(explicit).decode("utf-8")
        except (BundleError, UnicodeDecodeError) as exc:
            self.problems.append(f"{explicit}: unreadable ({exc})")
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
            self.problems.append(f"{explicit}: does not list {fn}, which the lock has")
        for fn in sorted(set(listed) - set(locked)):
            self.problems.append(f"{explicit}: lists {fn}, which is not in the lock")
        for fn in sorted(set(listed) & set(locked)):
            digest, r = listed[fn], locked[fn]
            if digest not in {r.md5, r.sha256, f"sha256:{r.sha256}"}:
                self.problems.append(f"{explicit}: the hash for {fn} differs from the lock")

    def _check_sbom(self, pl: PlatformLock, names: set[str]) -> None:
        if SBOM_NAME not in names:
            self._missing(SBOM_NAME, "the package list with licences and hashes")
            return
        try:
            sbom = read_json(self.reader, SBOM_NAME)
            everything = list(sbom.get("components") or ())
            # Wheels are pkg:pypi components, checked by file name against the lock's wheels.
            wheels = [c for c in everything if is_wheel_component(c)]
            # name -> the SHA-256s listed under it (a bundle of several environments may
            # hold two versions of one package)
            components: dict[str, set[str | None]] = {}
            for c in everything:
                if not is_wheel_component(c):
                    hashes = {h["alg"]: h["content"] for h in c.get("hashes") or ()}
                    components.setdefault(c["name"], set()).add(hashes.get("SHA-256"))
        except BundleError as exc:
            self.problems.append(str(exc))
            return
        except (AttributeError, KeyError, TypeError):
            self.problems.append(f"{SBOM_NAME}: not a CycloneDX component list")
            return
        for r in pl.packages:
            listed = components.get(r.name)
            if listed is None:
                self.problems.append(f"{SBOM_NAME}: does not list {r.name}")
            elif r.sha256 and r.sha256 not in listed and None not in listed:
                self.problems.append(f"{SBOM_NAME}: the sha256 of {r.name} differs from the lock")
        for name in sorted(set(components) - {r.name for r in pl.packages}):
            self.problems.append(f"{SBOM_NAME}: lists {name}, which is not in the lock")
        self.problems.extend(sbom_wheel_problems(wheels, pl.pypi))

    def _check_environments(
        self, manifest: Mapping[str, Any], pool: PlatformLock, names: set[str]
    ) -> None:
        """A bundle of several environments: each one's lock against the pool (its packages
        must be the pool's files), its env.txt against its lock, its installer and scripts
        present. The pool itself (the manifest's ``lock``) was checked above."""
        envs = manifest.get("environments")
        if envs is None:
            return
        if not isinstance(envs, list) or not all(isinstance(e, dict) for e in envs):
            self.problems.append(f"{MANIFEST_NAME}: 'environments' is not a list of tables")
            return
        in_pool = {(r.subdir, r.fn): r.sha256 for r in pool.packages}
        for env in envs:
            name = printable(str(env.get("name")))
            try:
                pl = platform_lock_from_dict(
                    pool.platform, env.get("lock") or {}, MANIFEST_NAME, f"environment {name}"
                )
            except LockError as exc:
                self.problems.append(str(exc))
                continue
            for r in pl.packages:
                have = in_pool.get((r.subdir, r.fn))
                if have is None:
                    self.problems.append(
                        f"environment {name}: package {r.dist} is not in the bundle's packages"
                    )
                elif r.sha256 and have and have != r.sha256:
                    self.problems.append(
                        f"environment {name}: package {r.dist} differs from the bundle's file"
                    )
            explicit = str(env.get("explicit_file") or "")
            if unsafe_reason(explicit):
                self.problems.append(f"environment {name}: unsafe explicit file {explicit!r}")
            else:
                self._check_explicit(pl, names, explicit)
            install = env.get("install") if isinstance(env.get("install"), dict) else {}
            assert isinstance(install, dict)
            for rel in [env.get("setup"), *(install.get("post_install") or ())]:
                if str(rel) not in names:
                    self._missing(str(rel), f"environment {name} installs with it")

    def _check_wheels(self, pl: PlatformLock, names: set[str]) -> None:
        """The pip step's wheels against the lock (the manifest check above already caught
        bytes changed behind the manifest's back; this one catches a lock and wheels that
        disagree, and wheels.txt lines changed or removed)."""

        def digest(name: str) -> tuple[int, str] | None:
            found = self._digest(name)
            return None if found is None else (found.size, found.sha256)

        def read(name: str) -> bytes:
            try:
                return self.reader.read_bytes(name, MAX_JSON)
            except BundleError as exc:
                return str(exc).encode()  # differs from the lock's text: reported as such

        self.problems.extend(member_wheel_problems(names, digest, read, pl.pypi))

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
