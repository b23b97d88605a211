"""What a bundle holds, before any container: packages, repodata, env.txt, SBOM, README,
the install scripts and the manifest, as Entries: :func:`bundle_entries` for packages in the cache,
:func:`streamed_entries` for packages still downloading (the bundle written while they arrive)."""

from __future__ import annotations

import functools
import re
import threading
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

from envpack import __version__
from envpack.bundle.manifest import Entry, json_bytes, manifest_files
from envpack.bundle.pkginfo import env_vars_d, package_info, read_package_files
from envpack.bundle.sbom import make_sbom
from envpack.bundle.shstubs import is_posix_platform, render_sfx_header_sh, script_entries
from envpack.bundle.shstubs import readme_text as sh_readme_text
from envpack.bundle.stubs import (
    StubContext,
    load_template,
    render_setup,
    render_sfx_header,
    to_crlf,
)
from envpack.errors import BundleError
from envpack.lock.lockfile import PlatformLock
from envpack.lock.record import LockedPackage, lock_sha256
from envpack.lock.wheel import WheelRecord, wheels_txt
from envpack.pypi.bundle import STEP_BAT, WHEELS_DIR, WHEELS_TXT, sbom_components


def explicit_file(records: Sequence[LockedPackage]) -> bytes:
    """An ``@EXPLICIT`` file of ``records`` (env.txt), in install order."""
    return ("@EXPLICIT\n" + "".join(f"{line}\n" for line in explicit_lines(records))).encode()


def post_install_entries(scripts: Sequence[tuple[str, bytes]]) -> list[Entry]:
    """The recipe's post-install scripts as ``post-install/NN-<name>`` entries, in run order."""
    return [
        Entry.from_bytes(f"post-install/{i:02d}-{name}", content)
        for i, (name, content) in enumerate(scripts, 1)
    ]


def explicit_lines(records: Sequence[LockedPackage]) -> list[str]:
    """``url#md5`` lines, dependencies first: the form both micromamba 1.x and 2.x read."""
    return [f"{r.url}#{r.md5}" for r in topological(records)]


# The package name at the start of a dependency spec: "ucrt>=10", "vc 14.*", "python_abi 3.9.* *".
_DEP_NAME = re.compile(r"[^\s=<>!~\[]*")


def topological(records: Sequence[LockedPackage]) -> list[LockedPackage]:
    """Dependencies first; ties and cycles broken by name, so env.txt's bytes are fixed.

    Not rattler's ``PackageRecord.sort_topologically``: its order among independent packages is
    not specified, so env.txt (and the bundle's hash) would follow the rattler release; it needs
    every record rebuilt as a rattler object and it drops ``url`` and ``file_name`` (the notes),
    which explicit_lines needs and would have to map back by name. This is 15 lines.
    """
    by_name = {r.name: r for r in records}
    done: set[str] = set()
    order: list[LockedPackage] = []

    def visit(name: str, stack: tuple[str, ...]) -> None:
        if name in done or name not in by_name or name in stack:
            return
        for dep in sorted(by_name[name].depends):
            visit(_DEP_NAME.match(dep).group(0), (*stack, name))  # type: ignore[union-attr]
        done.add(name)
        order.append(by_name[name])

    for name in sorted(by_name):
        visit(name, ())
    return order


def repodata_for(subdir: str, records: Sequence[LockedPackage]) -> bytes:
    data: dict[str, object] = {
        "info": {"subdir": subdir},
        "packages": {r.fn: r.repodata_entry() for r in records if r.fn.endswith(".tar.bz2")},
        "packages.conda": {r.fn: r.repodata_entry() for r in records if r.fn.endswith(".conda")},
        "repodata_version": 1,
    }
    return json_bytes(data)


def extraction_dir(record: LockedPackage) -> str:
    """Where micromamba extracts a package, relative to its package cache, Windows-style.

    micromamba >= 2.6 extracts to ``<scheme>\\<host or path>\\<subdir>\\<dist>`` derived from
    the package's URL (mamba#4163; ``:`` becomes ``_``), older ones to ``<dist>``: the longer of the
    two is what the long-path check must allow for.
    """
    parts = urllib.parse.urlsplit(record.url)
    where = urllib.parse.unquote(parts.netloc + parts.path).replace(":", "_").strip("/")
    folder = where.rsplit("/", 1)[0].replace("/", "\\")
    return f"{parts.scheme}\\{folder}\\{record.dist}"


def default_prefix(recipe_prefix: str | None, name: str, platform: str) -> str:
    if recipe_prefix:
        return recipe_prefix.replace("{name}", name)
    if platform.startswith("win-"):
        return f"%LOCALAPPDATA%\\envs\\{name}"
    return f"$HOME/envs/{name}"


def readme_text(name: str, platform: str, packages: int, size: int, prefix: str) -> str:
    return f"""envpack bundle: {name} ({platform})
{"=" * (len(name) + len(platform) + 19)}

This folder installs the conda environment "{name}" ({packages} packages, about
{size // (1 << 20)} MB once installed) on a PC with no network, without administrator
rights, and without touching the registry, PATH or cmd.exe AutoRun.

Before you start. If the zip came by e-mail or download, right-click it first, Properties,
tick "Unblock", OK; then "Extract All..." (do not run setup.bat from inside the zip).
Otherwise SmartScreen or Office policies may block the scripts.

1. Copy the whole folder to the PC (keep every file).
2. Open a NEW cmd.exe window (no conda environment active) and run:

       setup.bat                 installs into {prefix}
       setup.bat D:\\envs\\{name}   installs into the folder you name
       setup.bat /?              shows every option

   Install folder: spaces, "&", "(x86)" and non-English letters are fine; "!", "%" and "^"
   are not (setup.bat refuses them: micromamba's own helper scripts break on them without
   saying so). Do not move the folder afterwards: conda environments contain their path, so
   install again into the new place instead.
3. Afterwards, start the environment with "<prefix>\\envpack-shell.bat", or run
   "CALL <prefix>\\activate.bat" inside an existing cmd.exe window. Never run "conda init",
   "mamba init" or "micromamba shell init": they write an AutoRun hook into the registry that
   runs in every cmd.exe window, and envpack needs none. "<prefix>\\uninstall.bat" removes
   everything.

envpack.json lists every file of this folder with its SHA-256; sbom.cdx.json lists the packages
and their licences. Made with envpack {__version__}.
"""


@dataclass(frozen=True)
class BundleSettings:
    """Everything besides the lock that shapes a bundle's bytes.

    Taken from the recipe on a normal build, and from an old bundle's manifest on
    ``build --from``, which is what lets a rebuild come out byte-identical.
    """

    name: str
    default_prefix: str
    shortcuts: bool = False
    variables: tuple[tuple[str, str], ...] = ()
    post_install: tuple[tuple[str, bytes], ...] = ()  # (file name, content), in run order
    recipe_record: dict[str, object] | None = None
    epoch: int | None = None


@dataclass(frozen=True)
class PackageFacts:
    """What the bundle's other files need from inside the packages (read once all are in)."""

    installed: int = 0  # bytes once installed (README.txt, setup.bat's free-space check)
    longest: int = 0  # the longest path a package installs
    extract: int = 0  # the longest path micromamba extracts to, relative to its package cache
    env_files: tuple[tuple[str, bytes], ...] = ()  # packages' etc/conda/env_vars.d/*.json


def package_facts(
    records: Sequence[LockedPackage], paths: Mapping[LockedPackage, Path]
) -> PackageFacts:
    installed = longest = extract = 0
    env_files: list[tuple[str, bytes]] = []
    for r in records:
        info = package_info(paths[r])
        if info.env_vars_files:
            env_files.extend(read_package_files(paths[r], info.env_vars_files))
        installed += info.installed_size
        longest = max(longest, info.longest_path)
        extract = max(extract, len(extraction_dir(r)) + 1 + info.longest_path)
    return PackageFacts(installed, longest, extract, tuple(env_files))


def package_member(record: LockedPackage) -> str:
    return f"channel/{record.subdir}/{record.fn}"


def bundle_entries(
    pl: PlatformLock,
    settings: BundleSettings,
    paths: Mapping[LockedPackage, Path],
    tools: list[tuple[str, bytes]],
    epoch: int,
    wheel_paths: Mapping[WheelRecord, Path] | None = None,
) -> tuple[list[Entry], StubContext]:
    """Every file of the bundle, its packages already in the cache (``paths``)."""
    pl = with_wheels(pl, wheel_paths or {})
    packages = [Entry.from_file(package_member(r), paths[r], r.size, r.sha256) for r in pl.packages]
    facts = package_facts(pl.packages, paths)
    rest, ctx = other_entries(pl, settings, packages, facts, tools, epoch, wheel_paths or {})
    return packages + rest, ctx


def with_wheels(pl: PlatformLock, wheel_paths: Mapping[WheelRecord, Path]) -> PlatformLock:
    """``pl`` with its wheels as shipped (``wheel_paths``'s records, by file name): a lock may
    give a wheel no size (an index need not announce it); the download then did."""
    shipped = {w.filename: w for w in wheel_paths}
    return replace(pl, pypi=tuple(shipped.get(w.filename, w) for w in pl.pypi))


def other_entries(
    pl: PlatformLock,
    settings: BundleSettings,
    packages: list[Entry],
    facts: PackageFacts,
    tools: list[tuple[str, bytes]],
    epoch: int,
    wheel_paths: Mapping[WheelRecord, Path],
    names_only: bool = False,
) -> tuple[list[Entry], StubContext]:
    """Every file of the bundle but its packages (``packages``, in ``pl.packages`` order):
    repodata, env.txt, tools, scripts, wheels, SBOM, README.txt, setup.bat and the manifest.

    ``names_only``: only the entries' names are wanted (:func:`streamed_entries`' dry run, on a
    warm build's path before the first package is copied), so the repodata, the SBOM, the sfx
    header and the manifest are left empty instead of rendered (setup.bat is still rendered:
    that checks the settings).
    """

    def made(make: Callable[[], bytes]) -> bytes:
        return b"" if names_only else make()

    platform = pl.platform
    name = settings.name
    entries: list[Entry] = []
    pkg_rel = [e.arcname for e in packages]
    installed, longest, extract = facts.installed, facts.longest, facts.extract
    for subdir in sorted({platform, "noarch"}):
        recs = [r for r in pl.packages if r.subdir == subdir]
        repodata = made(functools.partial(repodata_for, subdir, recs))
        entries.append(Entry.from_bytes(f"channel/{subdir}/repodata.json", repodata))
    entries.append(Entry.from_bytes("env.txt", explicit_file(pl.packages)))
    for tool_name, data in tools:
        entries.append(Entry.from_bytes(tool_name, data))
    scripts = post_install_entries(settings.post_install)
    entries += scripts
    post = [e.arcname for e in scripts]
    for w in sorted(pl.pypi):
        src = wheel_paths[w]
        entries.append(Entry.from_file(f"{WHEELS_DIR}/{w.filename}", src, w.size, w.sha256))
    if pl.pypi:
        entries.append(Entry.from_bytes(WHEELS_TXT, wheels_txt(list(pl.pypi)).encode("ascii")))
    if pl.pypi and not is_posix_platform(platform):
        entries.append(Entry.from_bytes(STEP_BAT, to_crlf(load_template(STEP_BAT))))
    prefix = settings.default_prefix

    def sbom() -> bytes:
        made_sbom = make_sbom(name, platform, pl.packages, epoch)
        made_sbom["components"].extend(sbom_components(list(pl.pypi)))
        return json_bytes(made_sbom)

    entries.append(Entry.from_bytes("sbom.cdx.json", made(sbom)))
    posix = is_posix_platform(platform)
    readme = (
        sh_readme_text(name, platform, len(pl.packages), installed, prefix).encode("utf-8")
        if posix
        else readme_text(name, platform, len(pl.packages), installed, prefix)
        .replace("\n", "\r\n")
        .encode("utf-8")
    )
    entries.append(Entry.from_bytes("README.txt", readme))

    def win(rel: str) -> str:
        return rel.replace("/", "\\")

    ctx = StubContext(
        name=name,
        platform=platform,
        default_prefix=prefix,
        explicit_file="env.txt",
        channel_dir="channel",
        micromamba_files=tuple(t for t, _ in tools),
        files=tuple(
            (win(e.arcname), e.size) for e in sorted([*packages, *entries], key=lambda e: e.arcname)
        ),
        packages=tuple(win(p) for p in pkg_rel),
        installed_size=installed,
        longest_path=longest,
        post_install=tuple(win(p) for p in post),
        wheels=len(pl.pypi),
        shortcuts=settings.shortcuts,
        variables=settings.variables,
        envpack_version=__version__,
        longest_extract=extract,
        package_variables=env_vars_d(list(facts.env_files)),
        lock_sha256=lock_sha256(pl),
    )
    if posix:
        entries.extend(script_entries(ctx))
    else:
        # Rendered even for names only: rendering checks the recipe's settings (shortcuts,
        # variable names, unsafe characters), which must fail before any package is fetched.
        entries.append(Entry.from_bytes("setup.bat", render_setup(ctx)))
    # The self-extracting form's header is code the user runs, outside the archive's members:
    # its hash here lets verify check it (the header depends only on ctx).
    header = Entry.from_bytes(
        "sfx-header",
        made(lambda: render_sfx_header_sh(ctx) if posix else render_sfx_header(ctx)),
    )
    extra: dict[str, object] = {"sfx_header": {"sha256": header.sha256, "size": header.size}}
    manifest = {
        "format": "envpack-bundle",
        "format_version": 1,
        "envpack_version": __version__,
        "name": name,
        "platform": platform,
        "created": epoch,
        "recipe": settings.recipe_record,
        "lock": {"name": name, **pl.to_dict()},
        "install": {
            "default_prefix": prefix,
            "installed_size": installed,
            "longest_path": longest,
            "longest_extract_path": extract,
            "shortcuts": settings.shortcuts,
            "variables": dict(settings.variables),
            "post_install": post,
        },
        **extra,
        "files": manifest_files([*packages, *entries]),
    }
    entries.append(Entry.from_bytes("envpack.json", made(lambda: json_bytes(manifest))))
    return entries, ctx


# --------------------------------------------------------------------------- streamed layout


class LateFiles:
    """The bundle's files besides its packages, made once, when first asked for: after every
    package has arrived (``make`` waits for them), which is when the writers reach the first of
    these files, since every container writes the packages first (``arcname_key``)."""

    def __init__(self, names: list[str], make: Callable[[], tuple[list[Entry], StubContext]]):
        self.names = names
        self._make = make
        self._lock = threading.Lock()
        self._made: tuple[dict[str, Entry], StubContext] | None = None

    def _result(self) -> tuple[dict[str, Entry], StubContext]:
        with self._lock:
            if self._made is None:
                entries, ctx = self._make()
                made = {e.arcname: e for e in entries}
                if sorted(made) != sorted(self.names):
                    # The names come from a dry run of the same layout: a difference is a bug.
                    raise BundleError(
                        "internal error: the bundle's files changed once the packages arrived "
                        f"({', '.join(sorted(set(made) ^ set(self.names)))})"
                    )
                self._made = (made, ctx)
            return self._made

    def entry(self, arcname: str) -> Entry:
        return self._result()[0][arcname]

    def context(self) -> StubContext:
        return self._result()[1]


@dataclass(frozen=True)
class LateEntry(Entry):
    """A file of the bundle other than a package, made with all the others once every package
    is in (README.txt's installed size, setup.bat and envpack.json depend on what the packages
    hold). Only its name is known up front: ``size`` and ``sha256`` are 0 and "" until
    :meth:`ready`, which the writers call just before writing it (they read nothing else of an
    entry before that, and write every package first)."""

    late: LateFiles | None = field(default=None, compare=False, repr=False)

    def ready(self) -> Entry:
        assert self.late is not None
        return self.late.entry(self.arcname)

    def open(self) -> IO[bytes]:
        return self.ready().open()


def streamed_entries(
    pl: PlatformLock,
    settings: BundleSettings,
    pending: Mapping[LockedPackage, Callable[[], tuple[Path, int | None]]],
    tools: list[tuple[str, bytes]],
    epoch: int,
    arrived: Callable[[], tuple[Mapping[LockedPackage, Path], Mapping[WheelRecord, Path]]],
) -> tuple[list[Entry], LateFiles]:
    """The entries of :func:`bundle_entries` for packages still downloading: each package a
    pending Entry (``pending[record]`` waits for it), every other file a :class:`LateEntry`
    made once ``arrived()`` returns every package's and wheel's file (the wheels keyed by the
    records to ship, see :func:`with_wheels`). The writers write each package as soon as it and
    those before it are in; the bytes are bundle_entries's."""

    def read_early(record: LockedPackage) -> Callable[[], tuple[Path, int | None]]:
        def wait() -> tuple[Path, int | None]:
            path, crc = pending[record]()
            # Read its info/ now, while later packages still arrive: package_info keeps it
            # beside the package, so the facts cost little once the last one is in.
            package_info(path)
            return path, crc

        return wait

    packages = [
        Entry(package_member(r), r.size, r.sha256, pending=read_early(r)) for r in pl.packages
    ]
    # The other files' names do not depend on what the packages hold: a dry run finds them.
    dry_wheels = {w: Path(w.filename) for w in pl.pypi}
    dry, _ = other_entries(
        pl, settings, packages, PackageFacts(), tools, epoch, dry_wheels, names_only=True
    )

    def make() -> tuple[list[Entry], StubContext]:
        paths, wheel_paths = arrived()
        facts = package_facts(pl.packages, paths)
        done = with_wheels(pl, wheel_paths)
        return other_entries(done, settings, packages, facts, tools, epoch, wheel_paths)

    late = LateFiles([e.arcname for e in dry], make)
    return [*packages, *(LateEntry(e.arcname, 0, "", late=late) for e in dry)], late
