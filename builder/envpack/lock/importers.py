"""Locks made by other tools, as envpack locks: conda-lock, pixi, ``@EXPLICIT`` files.

Teams that already lock can ship without re-solving. Each format lacks some of what an envpack
record holds; the gaps are filled from the package URL (file name, subdir, channel) or left
"unknown" (``size=0``, ``sha256=""``), which the downloader then verifies by the hash the format
does carry and completes from the downloaded file. pip/PyPI entries (conda-lock's ``manager:
pip``, pixi's ``pypi:``) become the platform lock's wheels (``PlatformLock.pypi``), which setup
installs after the conda packages; an sdist or a hashless one is refused by name. Entries that
are skipped (categories conda-lock leaves out, package managers other than conda and pip) are
listed in ``Lock.extra["skipped"]``; :func:`skipped_note` words the warning for each.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from envpack.channels import Channel, redact, strip_token
from envpack.errors import LockError, first_line
from envpack.lock.lockfile import Lock, PlatformLock, parse_yaml, read_lock
from envpack.lock.pip_entries import conda_lock_wheels, pixi_wheels
from envpack.lock.record import LockedPackage
from envpack.lock.wheel import WheelRecord

KINDS = ("envpack", "conda-lock", "pixi", "explicit")
MAX_LOCK = 256 << 20  # bigger than any real lock; refuse rather than parse it
DETECT_BYTES = 8 << 20  # every format's telling top-level keys come well before this
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_TOP_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*):")
_PLATFORM_COMMENT = re.compile(r"^#\s*platform:\s*(\S+)")
# conda-lock installs these categories by default (main, plus dev unless --no-dev).
CONDA_LOCK_CATEGORIES = ("main", "dev")


def detect_lock_kind(path: Path) -> str | None:
    """``"envpack"``, ``"conda-lock"``, ``"pixi"``, ``"explicit"``, or ``None`` (a recipe)."""
    keys: set[str] = set()
    version: str | None = None
    try:
        with Path(path).open("r", encoding="utf-8", errors="replace") as fh:
            for line in _lines(fh, DETECT_BYTES):
                if line.strip() == "@EXPLICIT":
                    return "explicit"
                match = _TOP_KEY.match(line)
                if match:
                    keys.add(match.group(1))
                    if match.group(1) == "version":
                        version = line.split(":", 1)[1].strip().strip("'\"")
    except OSError as exc:
        raise LockError(f"{path}: cannot read ({exc.strerror})") from None
    if {"version", "envpack", "platforms", "recipe"} <= keys:
        return "envpack"
    if {"version", "package", "metadata"} <= keys:
        return "conda-lock"
    # pixi lists every environment's URLs before "packages:", so that key may come late.
    if {"version", "environments"} <= keys and version not in (None, "1"):
        return "pixi"
    return None


def _lines(fh: Any, limit: int) -> Iterator[str]:
    read = 0
    while read < limit and (line := fh.readline(limit - read)):
        read += len(line)
        yield line


def load_lock_file(path: Path, platform: str | None = None, name: str | None = None) -> Lock:
    """Read any lock envpack understands; with ``platform``, keep only that platform."""
    path = Path(path)
    kind = detect_lock_kind(path)
    if kind is None:
        raise LockError(
            f"{path}: not a lock file envpack reads (an envpack, conda-lock or pixi lock, "
            "or an @EXPLICIT file)"
        )
    if path.stat().st_size > MAX_LOCK:
        raise LockError(f"{path}: {path.stat().st_size} bytes; too large for a lock file")
    if kind == "envpack":
        lock = read_lock(path)
    elif kind == "conda-lock":
        lock = _conda_lock(path, platform, name)
    elif kind == "pixi":
        lock = _pixi(path, platform, name)
    else:
        lock = _explicit(path, platform, name)
    if platform is not None:
        lock = Lock(
            name=lock.name,
            platforms={platform: lock.for_platform(platform)},
            channels=lock.channels,
            specs=lock.specs,
            recipe_path=lock.recipe_path,
            envpack_version=lock.envpack_version,
            extra=lock.extra,
        )
    if not lock.platforms:
        raise LockError(f"{path}: the lock holds no conda package for any platform")
    return lock


def skipped_note(path: Path, entry: str) -> str:
    """The warning for one ``Lock.extra["skipped"]`` entry: what was left out, and why."""
    if entry.startswith("category "):
        why = f"conda-lock installs the {' and '.join(CONDA_LOCK_CATEGORIES)} categories only"
    else:
        why = "envpack ships conda packages and pip wheels only"
    return f"warning: {Path(path).name}: skipped {entry} ({why})"


def default_name(path: Path) -> str:
    """A bundle name for a lock that has none: the file's stem, or its folder's for generic
    names (``conda-lock.yml``, ``pixi.lock``) where the folder is the project."""
    stem = path.name
    for suffix in (".yml", ".yaml", ".lock", ".txt"):
        stem = stem.removesuffix(suffix)
    if stem in ("conda-lock", "pixi", "") and path.resolve().parent.name:
        stem = path.resolve().parent.name
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.")
    return cleaned or "env"


def record_from_url(
    url: str,
    *,
    name: str | None = None,
    version: str | None = None,
    md5: str = "",
    sha256: str = "",
    depends: tuple[str, ...] = (),
    where: str,
) -> LockedPackage:
    """A record from what a package URL says (``<channel>/<subdir>/<name>-<version>-<build>.ext``),
    checked against the name and version the lock gives, when it gives them."""
    from envpack.lock.record import channel_of, normalize_url

    clean = normalize_url(strip_token(url.strip()))
    path = urllib.parse.urlsplit(clean).path
    fn = urllib.parse.unquote(path.rsplit("/", 1)[-1])
    subdir = urllib.parse.unquote(path.rsplit("/", 2)[-2]) if path.count("/") >= 2 else ""
    stem = fn.removesuffix(".conda").removesuffix(".tar.bz2")
    if stem == fn or not subdir or "://" not in clean:
        raise LockError(f"{where}: {url!r} is not a conda package URL")
    parts = stem.rsplit("-", 2)
    if len(parts) != 3:
        raise LockError(f"{where}: cannot read name-version-build from {fn!r}")
    if name is not None and version is not None:
        prefix = f"{name}-{version}-"
        if not stem.startswith(prefix):
            raise LockError(f"{where}: {fn} is not {name} {version}")
        build = stem[len(prefix) :]
    else:
        name, version, build = parts
    for label, value, length in (("md5", md5, 32), ("sha256", sha256, 64)):
        if value and (len(value) != length or not _HEX.match(value)):
            raise LockError(f"{where}: {fn} has a malformed {label} {value!r}")
    return LockedPackage(
        name=name,
        version=version,
        build=build,
        build_number=build_number_of(build),
        subdir=subdir,
        fn=fn,
        url=clean,
        channel=channel_of(clean),
        sha256=sha256.lower(),
        md5=md5.lower(),
        size=0,
        depends=depends,
    )


def build_number_of(build: str) -> int:
    """conda-build writes build strings as ``<hash>_<number>[_<suffix>]``; the last all-digit
    component is the build number. Only for repodata's sake: nothing installs by it."""
    numbers = [p for p in build.split("_") if p.isdigit()]
    return int(numbers[-1]) if numbers else 0


def _lock(
    path: Path,
    kind: str,
    name: str | None,
    by_platform: Mapping[str, list[LockedPackage]],
    channels: tuple[str, ...],
    skipped: list[str],
    wheels: Mapping[str, list[WheelRecord]] | None = None,
) -> Lock:
    platforms = {}
    for platform, records in sorted(by_platform.items()):
        seen: dict[str, LockedPackage] = {}
        for r in records:
            if r.name in seen and seen[r.name] != r:
                raise LockError(
                    f"{path}: {platform} locks {r.name} twice ({seen[r.name].fn}, {r.fn})"
                )
            seen[r.name] = r
        platforms[platform] = PlatformLock(
            platform=platform,
            packages=tuple(sorted(seen.values())),
            pypi=tuple(sorted((wheels or {}).get(platform, ()))),
        )
    return Lock(
        name=name or default_name(path),
        platforms=platforms,
        channels=channels,
        recipe_path=path.name,
        envpack_version="?",
        extra={"kind": kind, "source": str(path), "skipped": skipped},
    )


# --------------------------------------------------------------------------- conda-lock


def _conda_lock(path: Path, platform: str | None, name: str | None) -> Lock:
    data = _yaml(path)
    version = data.get("version")
    if version not in (1, 2):
        raise LockError(
            f"{path}: conda-lock format version {version!r} is not supported "
            "(envpack reads versions 1 and 2)"
        )
    entries = data.get("package")
    if not isinstance(entries, list):
        raise LockError(f"{path}: conda-lock file without a 'package' list")
    metadata = data.get("metadata") or {}
    channels = tuple(
        strip_token(str(c.get("url") if isinstance(c, dict) else c))
        for c in metadata.get("channels") or ()
    )
    by_platform: dict[str, list[LockedPackage]] = {
        str(p): [] for p in metadata.get("platforms") or ()
    }
    skipped: list[str] = []
    pip_entries: list[dict[str, Any]] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise LockError(f"{path}: package entry {i} is not a mapping")
        where = f"{path}: package {entry.get('name', i)!r}"
        plat = str(entry.get("platform", ""))
        if platform is not None and plat != platform:
            continue
        label = f"{entry.get('name')} {entry.get('version')} ({plat})"
        manager = entry.get("manager", "conda")
        if manager not in ("conda", "pip"):
            skipped.append(f"{manager}: {label}")
            continue
        categories = entry.get("categories") or [entry.get("category", "main")]
        if not set(map(str, categories)) & set(CONDA_LOCK_CATEGORIES):
            skipped.append(f"category {'/'.join(map(str, categories))}: {label}")
            continue
        if manager == "pip":
            pip_entries.append(entry)  # wheels, read below by conda_lock_wheels
            continue
        hashes = entry.get("hash") or {}
        deps = entry.get("dependencies") or {}
        if not isinstance(hashes, dict) or not isinstance(deps, dict):
            raise LockError(f"{where}: malformed hash or dependencies")
        if not hashes.get("md5") and not hashes.get("sha256"):
            raise LockError(f"{where}: no md5 or sha256; envpack cannot verify it")
        try:
            record = record_from_url(
                str(entry["url"]),
                name=str(entry["name"]),
                version=str(entry["version"]),
                md5=str(hashes.get("md5") or ""),
                sha256=str(hashes.get("sha256") or ""),
                depends=tuple(f"{k} {v}".strip() for k, v in sorted(deps.items())),
                where=where,
            )
        except KeyError as exc:
            raise LockError(f"{where}: no {exc.args[0]!r}") from None
        by_platform.setdefault(plat, []).append(record)
    if platform is not None and platform not in by_platform:
        have = ", ".join(sorted(by_platform)) or "none"
        raise LockError(f"{path}: no {platform} packages in this conda-lock file (it has: {have})")
    # Only the platforms asked for: another platform's sdist must not refuse this one.
    wanted = [platform] if platform is not None else list(by_platform)
    wheels = {plat: conda_lock_wheels({"package": pip_entries}, plat, path) for plat in wanted}
    return _lock(path, "conda-lock", name, by_platform, channels, skipped, wheels)


def _yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LockError(f"{path}: cannot read ({exc})") from None
    data = parse_yaml(text, str(path))
    if not isinstance(data, dict):
        raise LockError(f"{path}: not a YAML mapping")
    return data


# --------------------------------------------------------------------------- pixi


def _pixi(path: Path, platform: str | None, name: str | None) -> Lock:
    import rattler
    from rattler.lock import CondaLockedBinaryPackage, PypiLockedPackage

    from envpack.lock.record import make_record, rattler_record_dict

    try:
        lock_file = rattler.LockFile.from_path(path)
        env = lock_file.default_environment()
        env_name = "default"
        if env is None:
            envs = lock_file.environments()
            if len(envs) != 1:
                names = ", ".join(n for n, _ in envs) or "none"
                raise LockError(f"{path}: no 'default' environment (it has: {names})")
            env_name, env = envs[0]
        lock_platforms = env.platforms()
    except LockError:
        raise
    except Exception as exc:  # rattler raises its own exception types for a bad lock file
        raise LockError(f"{path}: not a pixi lock envpack can read ({first_line(exc)})") from None
    channels = tuple(strip_token(str(c).rstrip("/")) for c in env.channels())
    by_platform: dict[str, list[LockedPackage]] = {}
    skipped: list[str] = []
    has_pypi = False
    for lp in lock_platforms:
        plat = str(lp.name)
        if platform is not None and plat != platform:
            continue
        records: list[LockedPackage] = []
        for package in env.packages(lp) or []:
            if isinstance(package, PypiLockedPackage):
                has_pypi = True  # read below from the file by pixi_wheels
                continue
            if not isinstance(package, CondaLockedBinaryPackage):
                raise LockError(
                    f"{path}: {package.name} ({plat}) is a source package; pixi builds it, "
                    "envpack can only ship built packages"
                )
            r = package.repo_data_record()
            where = f"{path}: {r.name.normalized} ({plat})"
            if r.sha256 is None and r.md5 is None:
                raise LockError(f"{where}: no md5 or sha256; envpack cannot verify it")
            records.append(make_record(rattler_record_dict(r)))
        by_platform[plat] = records
    if platform is not None and platform not in by_platform:
        have = ", ".join(sorted(str(p.name) for p in lock_platforms)) or "none"
        raise LockError(f"{path}: no {platform} environment in this pixi lock (it has: {have})")
    wheels: dict[str, list[WheelRecord]] = {}
    if has_pypi:
        # rattler gives a pypi package's name, version and URL but not its sha256: the file's
        # own packages table has it.
        data = _yaml(path)
        wheels = {plat: pixi_wheels(data, plat, path, str(env_name)) for plat in by_platform}
    return _lock(path, "pixi", name, by_platform, channels, skipped, wheels)


# --------------------------------------------------------------------------- @EXPLICIT


def _explicit(path: Path, platform: str | None, name: str | None) -> Lock:
    """``url#md5``, ``url#sha256:<hex>`` or ``url#<sha256>`` lines after ``@EXPLICIT``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LockError(f"{path}: cannot read ({exc})") from None
    declared: str | None = None
    started = False
    records: list[LockedPackage] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        where = f"{path}:{number}"
        match = _PLATFORM_COMMENT.match(line)
        if match:
            declared = match.group(1)
            continue
        if not line or line.startswith("#"):
            continue
        if line == "@EXPLICIT":
            started = True
            continue
        if not started:
            raise LockError(f"{where}: a line before @EXPLICIT")
        url, _, digest = line.partition("#")
        md5 = sha256 = ""
        if digest.startswith("sha256:"):
            sha256 = digest[len("sha256:") :]
        elif len(digest) == 64:
            sha256 = digest
        elif len(digest) == 32:
            md5 = digest
        elif digest:
            raise LockError(f"{where}: unrecognised hash {digest!r} (want md5 or sha256)")
        else:
            raise LockError(
                f"{where}: no hash; envpack needs one to verify the package "
                "(write the file with 'conda list --explicit --md5')"
            )
        records.append(record_from_url(url, md5=md5, sha256=sha256, where=where))
    if not started:
        raise LockError(f"{path}: no @EXPLICIT line")
    if not records:
        raise LockError(f"{path}: an @EXPLICIT file with no packages")
    subdirs = sorted({r.subdir for r in records} - {"noarch"})
    if len(subdirs) > 1:
        raise LockError(f"{path}: packages of several platforms ({', '.join(subdirs)})")
    found = declared or (subdirs[0] if subdirs else None) or platform
    if found is None:
        raise LockError(f"{path}: only noarch packages and no '# platform:' line; name a platform")
    if subdirs and subdirs[0] != found:
        raise LockError(f"{path}: says platform {found} but holds {subdirs[0]} packages")
    if platform is not None and platform != found:
        raise LockError(f"{path}: is for {found}, not {platform}")
    return _lock(path, "explicit", name, {found: records}, (), [])


# A URL in any lock format's text (YAML values, @EXPLICIT lines): up to a quote, space or "#".
_URL = re.compile(r"""[A-Za-z][A-Za-z0-9+.-]*://[^\s'"#<>]+""")
_PACKAGE_SUFFIXES = (".conda", ".tar.bz2")


def secret_channels(path: Path) -> list[Channel]:
    """Channels carrying the credentials (``/t/TOKEN/``, ``user:pass@``) that a lock file's URLs
    hold, so the fetcher can use them while the lock itself stays free of secrets.

    Every format names its packages by URL, so the file's text is scanned rather than parsed: a
    package URL's channel is all but its last two segments (``<subdir>/<fn>``); a channel URL
    (conda-lock's ``metadata.channels``, pixi's ``channels``) is used as it is.
    :func:`channels.credentialed_url` then maps each credential-free package URL of the lock back
    onto the channel with its credentials. The secrets go nowhere else.
    """
    try:
        with Path(path).open("r", encoding="utf-8", errors="replace") as fh:
            text = fh.read(MAX_LOCK)
    except OSError as exc:
        raise LockError(f"{path}: cannot read ({exc.strerror})") from None
    found: dict[str, Channel] = {}
    for match in _URL.finditer(text):
        url = match.group(0).rstrip("/,;)]}")
        if strip_token(url) == url:
            continue  # no credentials
        parts = urllib.parse.urlsplit(url)
        segments = parts.path.rstrip("/")
        if segments.endswith(_PACKAGE_SUFFIXES) and segments.count("/") >= 2:
            segments = segments.rsplit("/", 2)[0]
        # Quoted as the records' URLs are (solve.normalize_url), so the prefixes meet.
        quoted = urllib.parse.quote(urllib.parse.unquote(segments), safe="/:@!$&'()*+,;=~")
        channel_url = urllib.parse.urlunsplit(parts._replace(path=quoted, query="", fragment=""))
        found.setdefault(channel_url, Channel(given=redact(channel_url), url=channel_url))
    # The longest channel first: "host/t/A/org/label" before "host/t/B/org".
    return sorted(found.values(), key=lambda c: (-len(strip_token(c.url)), c.url))
