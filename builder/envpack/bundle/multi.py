"""A bundle of several environments for one platform, with one package pool.

Layout, under the top folder ``<name>/``::

    setup.bat                        stubs/setup-multi.bat: installs all or the named ones
    envs/<env>/setup.bat             one environment's installer (setup.bat, reading the pool)
    envs/<env>/env.txt               its @EXPLICIT file
    envs/<env>/post-install/NN-<script>
    channel/<subdir>/<fn>            every package once, however many environments use it
    channel/<subdir>/repodata.json   of the union
    env.txt  sbom.cdx.json           the pool: the union's packages (each once)
    micromamba.exe (+ DLLs)  README.txt  envpack.json

The manifest stays ``format_version`` 1: its ``lock`` is the union (so that verify's checks of
packages, repodata, env.txt, SBOM and micromamba cover the whole pool) and an ``environments``
list gives each environment's name, prefix, lock, explicit file, installer and scripts. Only
bundles of two or more environments take this form; one environment keeps bundle_entries's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from envpack import __version__
from envpack.bundle.layout import BundleSettings, explicit_file, extraction_dir, repodata_for
from envpack.bundle.manifest import Entry, json_bytes, manifest_files
from envpack.bundle.pkginfo import env_vars_d, package_info, read_package_files
from envpack.bundle.sbom import make_sbom
from envpack.bundle.stubs import StubContext, render_multi_setup, render_setup
from envpack.errors import BundleError
from envpack.lock.lockfile import PlatformLock
from envpack.lock.record import LockedPackage, lock_sha256
from envpack.names import member_problem

ENVS_DIR = "envs"


@dataclass(frozen=True)
class Environment:
    """One environment of a multi-environment bundle: its lock and its settings."""

    lock: PlatformLock
    settings: BundleSettings


def pool_lock(envs: Sequence[Environment]) -> PlatformLock:
    """The union of the environments' packages, each once; the first one's micromamba.

    Two environments may share a package only as the same file: the same name under the
    same subdir with other bytes cannot both be in ``channel/<subdir>/``.
    """
    platform = envs[0].lock.platform
    by_member: dict[str, LockedPackage] = {}
    for env in envs:
        if env.lock.platform != platform:
            raise BundleError(
                f"environment {env.settings.name!r} is for {env.lock.platform}, "
                f"{envs[0].settings.name!r} for {platform}: one bundle holds one platform"
            )
        if env.lock.pypi:
            raise BundleError(
                f"environment {env.settings.name!r} has pip: wheels; a bundle of several "
                "environments does not carry wheels yet: build it as a bundle of its own"
            )
        for r in env.lock.packages:
            key = f"{r.subdir}/{r.fn}"
            have = by_member.setdefault(key, r)
            if have.sha256 and r.sha256 and have.sha256 != r.sha256:
                raise BundleError(
                    f"{key}: two environments lock different files under this name (sha256 "
                    f"{have.sha256[:12]}... and {r.sha256[:12]}...); lock them from one channel"
                )
    vps = sorted({vp for env in envs for vp in env.lock.virtual_packages})
    return PlatformLock(
        platform=platform,
        packages=tuple(sorted(by_member.values())),
        input_hash="",
        virtual_packages=tuple(vps),
        micromamba=envs[0].lock.micromamba,
    )


def pool_explicit(records: Sequence[LockedPackage]) -> bytes:
    """The pool's env.txt: every package once, by file name (not an environment to install:
    two environments may hold two versions of one package)."""
    lines = sorted(f"{r.url}#{r.md5}\n" for r in records)
    return (
        "# the package pool of every environment in envs\\\n@EXPLICIT\n" + "".join(lines)
    ).encode()


def _facts(
    records: Sequence[LockedPackage], files: dict[str, Path]
) -> tuple[int, int, int, tuple[tuple[str, str], ...]]:
    installed = longest = extract = 0
    env_files: list[tuple[str, bytes]] = []
    for r in records:
        path = files[f"{r.subdir}/{r.fn}"]
        info = package_info(path)
        if info.env_vars_files:
            env_files.extend(read_package_files(path, info.env_vars_files))
        installed += info.installed_size
        longest = max(longest, info.longest_path)
        extract = max(extract, len(extraction_dir(r)) + 1 + info.longest_path)
    return installed, longest, extract, env_vars_d(env_files)


def multi_readme(name: str, platform: str, rows: Sequence[tuple[str, int, str]]) -> bytes:
    listing = "".join(
        f"    {env:<16} {count:>4} packages   setup.bat installs it into {prefix}\n"
        for env, count, prefix in rows
    )
    first = rows[0][0]
    text = f"""envpack bundle: {name} ({platform}), {len(rows)} environments
{"=" * (len(name) + len(platform) + 37)}

This folder installs these conda environments on a PC with no network, without administrator
rights, and without touching the registry, PATH or cmd.exe AutoRun:

{listing}
Each package is stored once in channel\\, however many environments use it.

Before you start. If the zip came by e-mail or download, right-click it first, Properties,
tick "Unblock", OK; then "Extract All..." (do not run setup.bat from inside the zip).

1. Copy the whole folder to the PC (keep every file).
2. Open a NEW cmd.exe window (no conda environment active) and run:

       setup.bat                 installs every environment, each into its folder above
       setup.bat {first:<15} installs only the environments named
       setup.bat /?              shows every option
       envs\\{first}\\setup.bat D:\\envs\\{first}
                                 installs one environment into the folder you name

3. Afterwards start an environment with "<its folder>\\envpack-shell.bat", or run
   "CALL <its folder>\\activate.bat" in a cmd.exe window; "<its folder>\\uninstall.bat"
   removes it. Never run "conda init", "mamba init" or "micromamba shell init".

envpack.json lists every file of this folder with its SHA-256 and each environment's packages;
sbom.cdx.json lists the packages and their licences. Made with envpack {__version__}.
"""
    return text.replace("\n", "\r\n").encode("utf-8")


def multi_bundle_entries(
    name: str,
    envs: Sequence[Environment],
    paths: dict[LockedPackage, Path],
    tools: list[tuple[str, bytes]],
    epoch: int,
    recipe_record: dict[str, object] | None = None,
) -> list[Entry]:
    """Every entry of a bundle of ``envs`` (two or more, all for one Windows platform)."""
    if len(envs) < 2:
        raise BundleError("a multi-environment bundle needs two or more environments")
    pool = pool_lock(envs)
    platform = pool.platform
    seen: set[str] = set()
    for env in envs:
        env_name = env.settings.name
        problem = member_problem(f"{ENVS_DIR}/{env_name}")
        if problem or "/" in env_name or "\\" in env_name:
            raise BundleError(f"environment name {env_name!r} cannot be a folder name ({problem})")
        if env_name.casefold() in seen:
            raise BundleError(
                f"two environments are named {env_name!r}; give each recipe its own name"
            )
        seen.add(env_name.casefold())
    # The pool's file of each member: an environment's record of it may name another URL
    # (the same package locked from another mirror), so records are matched by member.
    files = {f"{r.subdir}/{r.fn}": paths[r] for r in pool.packages}
    shared: list[Entry] = []
    for r in pool.packages:
        shared.append(Entry.from_file(f"channel/{r.subdir}/{r.fn}", paths[r], r.size, r.sha256))
    for subdir in sorted({platform, "noarch"}):
        recs = [r for r in pool.packages if r.subdir == subdir]
        shared.append(
            Entry.from_bytes(f"channel/{subdir}/repodata.json", repodata_for(subdir, recs))
        )
    tool_entries = [Entry.from_bytes(tool_name, data) for tool_name, data in tools]
    sizes = {e.arcname: e.size for e in shared + tool_entries}
    entries = shared + tool_entries
    entries.append(Entry.from_bytes("env.txt", pool_explicit(pool.packages)))
    entries.append(
        Entry.from_bytes(
            "sbom.cdx.json", json_bytes(make_sbom(name, platform, pool.packages, epoch))
        )
    )

    def win(rel: str) -> str:
        return rel.replace("/", "\\")

    contexts: list[StubContext] = []
    table: list[dict[str, object]] = []
    rows: list[tuple[str, int, str]] = []
    for env in envs:
        s, pl = env.settings, env.lock
        folder = f"{ENVS_DIR}/{s.name}"
        own = [Entry.from_bytes(f"{folder}/env.txt", explicit_file(pl.packages))]
        scripts = [
            Entry.from_bytes(f"{folder}/post-install/{i:02d}-{script}", content)
            for i, (script, content) in enumerate(s.post_install, 1)
        ]
        own += scripts
        installed, longest, extract, variables = _facts(pl.packages, files)
        pkg_rel = [f"channel/{r.subdir}/{r.fn}" for r in pl.packages]
        checked = {p: sizes[p] for p in pkg_rel}
        checked.update({e.arcname: e.size for e in tool_entries + own})
        checked.update(
            {
                f"channel/{d}/repodata.json": sizes[f"channel/{d}/repodata.json"]
                for d in sorted({platform, "noarch"})
            }
        )
        ctx = StubContext(
            name=s.name,
            platform=platform,
            default_prefix=s.default_prefix,
            explicit_file=win(f"{folder}/env.txt"),
            channel_dir="channel",
            micromamba_files=tuple(t for t, _ in tools),
            files=tuple((win(rel), size) for rel, size in sorted(checked.items())),
            packages=tuple(win(p) for p in pkg_rel),
            installed_size=installed,
            longest_path=longest,
            post_install=tuple(win(e.arcname) for e in scripts),
            shortcuts=s.shortcuts,
            variables=s.variables,
            envpack_version=__version__,
            longest_extract=extract,
            package_variables=variables,
            lock_sha256=lock_sha256(pl),
            env_dir=win(folder),
        )
        contexts.append(ctx)
        own.append(Entry.from_bytes(f"{folder}/setup.bat", render_setup(ctx)))
        entries += own
        rows.append((s.name, len(pl.packages), s.default_prefix))
        table.append(
            {
                "name": s.name,
                "folder": folder,
                "explicit_file": f"{folder}/env.txt",
                "setup": f"{folder}/setup.bat",
                "recipe": s.recipe_record,
                "lock": {"name": s.name, **pl.to_dict()},
                "install": {
                    "default_prefix": s.default_prefix,
                    "installed_size": installed,
                    "longest_path": longest,
                    "longest_extract_path": extract,
                    "shortcuts": s.shortcuts,
                    "variables": dict(s.variables),
                    "post_install": [e.arcname for e in scripts],
                },
            }
        )
    entries.append(Entry.from_bytes("setup.bat", render_multi_setup(name, contexts)))
    entries.append(Entry.from_bytes("README.txt", multi_readme(name, platform, rows)))
    manifest = {
        "format": "envpack-bundle",
        "format_version": 1,
        "envpack_version": __version__,
        "name": name,
        "platform": platform,
        "created": epoch,
        "recipe": recipe_record,
        "lock": {"name": name, **pool.to_dict()},
        # No post-install at the top: each environment's are in its entry below.
        "install": {"post_install": []},
        "environments": table,
        "files": manifest_files(entries),
    }
    entries.append(Entry.from_bytes("envpack.json", json_bytes(manifest)))
    return entries
