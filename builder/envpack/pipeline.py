"""envpack's operations, one function each; the CLI builds an options object and calls one.

Nothing here prints or exits: progress goes to a :class:`Reporter`, failures are
:class:`~envpack.errors.EnvpackError` subclasses.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from envpack import __version__
from envpack.archive.write import stage_bundle
from envpack.bundle.manifest import Entry, json_bytes, manifest_files, source_date_epoch
from envpack.bundle.pkginfo import package_info, read_package_files
from envpack.bundle.sbom import make_sbom
from envpack.bundle.shstubs import is_posix_platform, render_sfx_header_sh, script_entries
from envpack.bundle.shstubs import readme_text as sh_readme_text
from envpack.bundle.stubs import StubContext, env_vars_d, render_setup, render_sfx_header
from envpack.channels import Channel
from envpack.errors import EnvpackError, LockError, SolveError
from envpack.fetch.download import Fetcher, FetchOptions, NullProgress, Progress
from envpack.fetch.micromamba_exe import (
    artifact_from_file,
    artifact_from_solve,
    extract_micromamba,
    tool_specs,
)
from envpack.lock.lockfile import (
    Lock,
    LockedPackage,
    MicromambaArtifact,
    PlatformLock,
    lock_path_for,
    read_lock,
    write_lock,
)
from envpack.platforms import virtual_packages
from envpack.recipe import DEFAULT_MICROMAMBA_SPEC, Recipe, load_recipe
from envpack.resolve.solvers import SolveRequest, get_solver, specs_text

LOCK_MODES = ("auto", "locked", "frozen")


class Reporter(Protocol):
    """Where core operations send what the user may want to see (the CLI decides how)."""

    def info(self, message: str) -> None: ...
    def progress(self) -> Progress: ...


class NullReporter:
    def info(self, message: str) -> None:
        pass

    def progress(self) -> Progress:
        return NullProgress()


def default_cache_dir() -> Path:
    env = os.environ.get("ENVPACK_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("envpack", appauthor=False))


def private_cache(options: LockOptions) -> Path:
    """The cache folder, made private to this user (0700) before anything is written to it.

    rattler's repodata cache keeps each channel's full URL, credentials included, in its
    ``*.info.json`` files, and a shared machine's other users must not read them (nor swap a
    cached package before its hash is checked again).
    """
    cache = options.cache_dir or default_cache_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True, mode=0o700)
        if os.name == "posix" and (cache.stat().st_mode & 0o077):
            cache.chmod(0o700)
    except OSError as exc:
        raise EnvpackError(f"cannot prepare the cache folder {cache}: {exc.strerror}") from None
    return cache


@dataclass(frozen=True)
class LockOptions:
    recipe: Path
    platform: str | None = None
    solver: str | None = None
    solver_micromamba: Path | None = None  # the host's micromamba that solves (not the bundle's)
    micromamba_exe: Path | None = None  # the target's micromamba that goes into the bundle
    offline: bool = False
    mode: str = "auto"  # auto | locked | frozen
    cache_dir: Path | None = None
    lock_file: Path | None = None


@dataclass(frozen=True)
class BuildOptions:
    lock: LockOptions
    output_dir: Path = Path("dist")
    concurrency: int = 8
    sfx: bool = True  # the self-extracting -setup.bat of a Windows bundle
    sfx_sh: bool = False  # the self-extracting -setup.sh of a Linux/macOS one: on request
    verify_cache: bool = False
    from_bundle: Path | None = None  # rebuild from an old bundle's lock instead of a recipe
    format: str | None = None  # zip | 7z; default the recipe's, else zip
    split: int | None = None  # bytes per part; default the recipe's, else one file
    timeout: float = 60.0  # seconds without progress before a download attempt is abandoned


@dataclass
class BuildResult:
    outputs: list[Path] = field(default_factory=list)
    lock_file: Path | None = None
    packages: int = 0
    total_bytes: int = 0
    lock_changed: bool = False


@dataclass
class LockResult:
    lock: Lock
    recipe: Recipe
    path: Path
    changed: bool


# --------------------------------------------------------------------------- lock


def _solve_platform(
    recipe: Recipe, platform: str, options: LockOptions, warn: Callable[[str], None]
) -> PlatformLock:
    cache = private_cache(options)
    vps = virtual_packages(platform, recipe.virtual_packages)
    solver = get_solver(
        recipe.solver, str(options.solver_micromamba) if options.solver_micromamba else None
    )

    def request(specs: Sequence[str]) -> SolveRequest:
        return SolveRequest(
            channels=recipe.channels,
            specs=list(specs),
            platform=platform,
            virtual_packages=vps,
            offline=options.offline,
            cache_dir=cache / "repodata",
        )

    packages = solver.solve(request(recipe.specs))
    if options.micromamba_exe is not None:
        artifact = artifact_from_file(options.micromamba_exe)
    else:
        try:
            tools = solver.solve(request(tool_specs(recipe.micromamba_spec, platform)))
        except SolveError:
            # A mirror may carry micromamba without vc14_runtime: then micromamba alone, and
            # the PC must already have the VC++ runtime (mamba#2928).
            tools = solver.solve(request(tool_specs(recipe.micromamba_spec, platform, False)))
            if platform.startswith("win-"):
                warn(
                    f"{platform}: the channels have no vc14_runtime; micromamba.exe ships "
                    "without the VC++ runtime DLLs"
                )
        artifact = artifact_from_solve(tools, platform)
    return PlatformLock(
        platform=platform,
        packages=tuple(sorted(packages)),
        input_hash=recipe.input_hash(platform),
        virtual_packages=tuple(vp.as_spec() for vp in vps),
        micromamba=artifact,
    )


def _micromamba_matches(pl: PlatformLock, options: LockOptions) -> bool:
    if pl.micromamba is None:
        return False
    if options.micromamba_exe is None:
        return pl.micromamba.source != "file"
    # Another --micromamba-exe file (a newer micromamba, say) is a change of the lock.
    wanted = artifact_from_file(options.micromamba_exe).file_sha256
    return pl.micromamba.source == "file" and pl.micromamba.file_sha256 == wanted


def lock(options: LockOptions, reporter: Reporter | None = None) -> LockResult:
    """Solve the recipe (or reuse its lock) for each platform; write the lock if it changed."""
    rep = reporter or NullReporter()
    if options.mode not in LOCK_MODES:
        raise EnvpackError(f"unknown lock mode {options.mode!r}")
    recipe = load_recipe(options.recipe, platform=options.platform, solver=options.solver)
    path = options.lock_file or lock_path_for(options.recipe)
    existing = read_lock(path) if path.exists() else None
    if options.mode in ("locked", "frozen") and existing is None:
        raise LockError(
            f"--{options.mode} needs a lock, but {path} does not exist; run envpack lock"
        )
    current = existing or Lock(
        name=recipe.name,
        platforms={},
        channels=tuple(c.public_url for c in recipe.channels),
        specs=recipe.specs,
        recipe_path=recipe.path.name,
    )
    changed = False
    for platform in recipe.platforms:
        have = current.platforms.get(platform)
        if options.mode == "frozen":
            current.for_platform(platform)
            continue
        fresh = (
            have is not None
            and have.input_hash == recipe.input_hash(platform)
            and _micromamba_matches(have, options)
        )
        if fresh:
            rep.info(f"{platform}: lock is up to date ({path.name})")
            continue
        if options.mode == "locked":
            raise LockError(
                f"{path}: the lock does not match {options.recipe.name} for {platform}; "
                "run 'envpack lock' (or build without --locked)"
            )
        rep.info(f"{platform}: solving {specs_text(recipe.specs)}")
        current = current.with_platform(_solve_platform(recipe, platform, options, rep.info))
        changed = True
    if changed:
        current = Lock(
            name=recipe.name,
            platforms=current.platforms,
            channels=tuple(c.public_url for c in recipe.channels),
            specs=recipe.specs,
            recipe_path=recipe.path.name,
        )
        write_lock(current, path)
        rep.info(f"wrote {path}")
    return LockResult(lock=current, recipe=recipe, path=path, changed=changed)


# --------------------------------------------------------------------------- build


def explicit_lines(records: Sequence[LockedPackage]) -> list[str]:
    """``url#md5`` lines, dependencies first: the form both micromamba 1.x and 2.x read."""
    return [f"{r.url}#{r.md5}" for r in topological(records)]


# The package name at the start of a dependency spec: "ucrt>=10", "vc 14.*", "python_abi 3.9.* *".
_DEP_NAME = re.compile(r"[^\s=<>!~\[]*")


def topological(records: Sequence[LockedPackage]) -> list[LockedPackage]:
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

    @classmethod
    def from_recipe(cls, recipe: Recipe, platform: str) -> BundleSettings:
        return cls(
            name=recipe.name,
            default_prefix=default_prefix(recipe.prefix, recipe.name, platform),
            shortcuts=recipe.shortcuts,
            variables=tuple(sorted(recipe.variables.items())),
            post_install=tuple((p.name, p.read_bytes()) for p in recipe.post_install),
            recipe_record=_recipe_record(recipe),
        )


def bundle_entries(
    pl: PlatformLock,
    settings: BundleSettings,
    paths: dict[LockedPackage, Path],
    tools: list[tuple[str, bytes]],
    epoch: int,
) -> tuple[list[Entry], StubContext]:
    platform = pl.platform
    name = settings.name
    entries: list[Entry] = []
    pkg_rel: list[str] = []
    installed = 0
    longest = 0
    extract = 0  # the longest path micromamba extracts to, relative to its package cache
    env_files: list[tuple[str, bytes]] = []  # packages' etc/conda/env_vars.d/*.json
    for r in pl.packages:
        rel = f"channel/{r.subdir}/{r.fn}"
        entries.append(Entry.from_file(rel, paths[r], r.size, r.sha256))
        pkg_rel.append(rel)
        info = package_info(paths[r])
        if info.env_vars_files:
            env_files.extend(read_package_files(paths[r], info.env_vars_files))
        installed += info.installed_size
        longest = max(longest, info.longest_path)
        extract = max(extract, len(extraction_dir(r)) + 1 + info.longest_path)
    for subdir in sorted({platform, "noarch"}):
        recs = [r for r in pl.packages if r.subdir == subdir]
        entries.append(
            Entry.from_bytes(f"channel/{subdir}/repodata.json", repodata_for(subdir, recs))
        )
    explicit = "@EXPLICIT\n" + "".join(f"{line}\n" for line in explicit_lines(pl.packages))
    entries.append(Entry.from_bytes("env.txt", explicit.encode("utf-8")))
    for tool_name, data in tools:
        entries.append(Entry.from_bytes(tool_name, data))
    post: list[str] = []
    for i, (script_name, content) in enumerate(settings.post_install, 1):
        rel = f"post-install/{i:02d}-{script_name}"
        entries.append(Entry.from_bytes(rel, content))
        post.append(rel)
    prefix = settings.default_prefix
    sbom = make_sbom(name, platform, pl.packages, epoch)
    entries.append(Entry.from_bytes("sbom.cdx.json", json_bytes(sbom)))
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
        files=tuple((win(e.arcname), e.size) for e in sorted(entries, key=lambda e: e.arcname)),
        packages=tuple(win(p) for p in pkg_rel),
        installed_size=installed,
        longest_path=longest,
        post_install=tuple(win(p) for p in post),
        shortcuts=settings.shortcuts,
        variables=settings.variables,
        envpack_version=__version__,
        longest_extract=extract,
        package_variables=env_vars_d(env_files),
    )
    if posix:
        entries.extend(script_entries(ctx))
    else:
        entries.append(Entry.from_bytes("setup.bat", render_setup(ctx)))
    # The self-extracting form's header is code the user runs, outside the archive's members:
    # its hash here lets verify check it (the header depends only on ctx).
    header = Entry.from_bytes(
        "sfx-header", render_sfx_header_sh(ctx) if posix else render_sfx_header(ctx)
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
        "files": manifest_files(entries),
    }
    entries.append(Entry.from_bytes("envpack.json", json_bytes(manifest)))
    return entries, ctx


def _recipe_record(recipe: Recipe | None) -> dict[str, object] | None:
    if recipe is None:
        return None
    return {
        "file": recipe.path.name,
        "name": recipe.name,
        "channels": [c.public_url for c in recipe.channels],
        "specs": list(recipe.specs),
        "platforms": list(recipe.platforms),
        "solver": recipe.solver,
        "micromamba": recipe.micromamba_spec,
    }


def build(options: BuildOptions, reporter: Reporter | None = None) -> BuildResult:
    """Build from a recipe, from a lock file of any kind, or (``from_bundle``) an old bundle."""
    rep = reporter or NullReporter()
    if options.from_bundle is not None:
        return _result(build_from_bundle(options.from_bundle, options, rep))
    from envpack.lock.importers import detect_lock_kind

    if options.lock.recipe.is_file() and detect_lock_kind(options.lock.recipe) is not None:
        return build_from_lock_file(options.lock.recipe, options, rep)
    locked = lock(options.lock, rep)
    result = BuildResult(lock_file=locked.path, lock_changed=locked.changed)
    for platform in locked.recipe.platforms:
        pl = locked.lock.for_platform(platform)
        settings = BundleSettings.from_recipe(locked.recipe, platform)
        fmt = locked.recipe.format
        container = _platform_container(
            options, platform, None if fmt == "zip" else fmt, locked.recipe.split
        )
        result.outputs.extend(
            build_platform(pl, settings, options, rep, locked.recipe.channels, None, container)
        )
        result.packages += len(pl.packages)
        result.total_bytes += sum(r.size for r in pl.packages)
    return result


def _result(outputs: tuple[list[Path], PlatformLock]) -> BuildResult:
    paths, pl = outputs
    return BuildResult(
        outputs=paths, packages=len(pl.packages), total_bytes=sum(r.size for r in pl.packages)
    )


def build_from_bundle(
    bundle: Path, options: BuildOptions, rep: Reporter
) -> tuple[list[Path], PlatformLock]:
    """Rebuild an old bundle from its own lock and settings: byte-identical when the packages
    are still cached or reachable (its micromamba and scripts come from the old bundle)."""
    from envpack.snapshot import rebuild_inputs

    inputs = rebuild_inputs(bundle)
    manifest = inputs.manifest
    platform = str(manifest.get("platform"))
    install = manifest.get("install") or {}
    settings = BundleSettings(
        name=str(manifest.get("name")),
        default_prefix=str(
            install.get("default_prefix")
            or default_prefix(None, str(manifest.get("name")), platform)
        ),
        shortcuts=bool(install.get("shortcuts", False)),
        variables=tuple(sorted((install.get("variables") or {}).items())),
        post_install=inputs.post_install,
        recipe_record=manifest.get("recipe"),
        epoch=int(manifest["created"]) if manifest.get("created") is not None else None,
    )
    rep.info(f"{platform}: rebuilding {settings.name} from {bundle}")
    pl = inputs.lock.for_platform(platform)
    container = _container(options, inputs.format, None)
    paths = build_platform(pl, settings, options, rep, (), list(inputs.tools), container)
    return paths, pl


def build_from_lock_file(path: Path, options: BuildOptions, rep: Reporter) -> BuildResult:
    """Ship an existing conda-lock / pixi / @EXPLICIT / envpack lock without re-solving."""
    from envpack.lock.importers import load_lock_file, secret_channels

    imported = load_lock_file(path, options.lock.platform)
    # Tokens and passwords in the file's URLs never enter the lock; they only reach the fetcher.
    secrets = secret_channels(path)
    for skipped in imported.extra.get("skipped", ()):
        rep.info(f"warning: {path.name}: skipped {skipped} (not a conda package)")
    result = BuildResult()
    for platform in sorted(imported.platforms):
        pl = imported.platforms[platform]
        if options.lock.micromamba_exe is not None:
            pl = replace(pl, micromamba=artifact_from_file(options.lock.micromamba_exe))
        elif pl.micromamba is None:
            pl = replace(pl, micromamba=_solve_micromamba_from(pl, options, rep, secrets))
        result.outputs.extend(
            build_from_lock(imported.with_platform(pl), platform, options, rep, channels=secrets)
        )
        result.packages += len(pl.packages)
        result.total_bytes += sum(r.size for r in pl.packages)
    return result


def _solve_micromamba_from(
    pl: PlatformLock, options: BuildOptions, rep: Reporter, secrets: Sequence[Channel] = ()
) -> MicromambaArtifact:
    """A lock from another tool names no micromamba: take it from the channels it uses (with
    the credentials the lock file's URLs carried, for a private channel)."""
    from envpack.channels import resolve_channel, strip_token

    def channel(name: str) -> Channel:
        for secret in secrets:
            if strip_token(secret.url).rstrip("/") == name.rstrip("/"):
                return secret
        return resolve_channel(name, Path.cwd())

    channels = sorted({r.channel for r in pl.packages if r.channel})
    if not channels:
        raise LockError("the lock names no channel to take micromamba from; pass --micromamba-exe")
    solver = get_solver("rattler")
    cache = private_cache(options.lock)
    rep.info(f"{pl.platform}: solving micromamba from {', '.join(channels)}")
    request = SolveRequest(
        channels=[channel(c) for c in channels],
        specs=tool_specs(DEFAULT_MICROMAMBA_SPEC, pl.platform),
        platform=pl.platform,
        virtual_packages=virtual_packages(pl.platform, {}),
        offline=options.lock.offline,
        cache_dir=cache / "repodata",
    )
    return artifact_from_solve(solver.solve(request), pl.platform)


def build_from_lock(
    lock: Lock,
    platform: str,
    options: BuildOptions,
    reporter: Reporter | None = None,
    settings: BundleSettings | None = None,
    tools: list[tuple[str, bytes]] | None = None,
    channels: Sequence[Channel] = (),
) -> list[Path]:
    """Build one platform's bundle from a lock alone (an imported lock, or an old bundle's)."""
    pl = lock.for_platform(platform)
    chosen = settings or BundleSettings(
        name=lock.name, default_prefix=default_prefix(None, lock.name, platform)
    )
    container = _platform_container(options, platform, None, None)
    return build_platform(
        pl, chosen, options, reporter or NullReporter(), channels, tools, container
    )


def _container(options: BuildOptions, fmt: str, split: str | None) -> tuple[str, int | None]:
    """The bundle's container and part size: the command line's, else the given defaults."""
    from envpack.archive.split import parse_size

    chosen_split = options.split
    if chosen_split is None and split is not None:
        chosen_split = parse_size(split)
    return options.format or fmt, chosen_split


def _platform_container(
    options: BuildOptions, platform: str, fmt: str | None, split: str | None
) -> tuple[str, int | None]:
    """Windows bundles default to zip, Linux and macOS ones to tar (every tar reads it)."""
    return _container(options, fmt or ("tar" if is_posix_platform(platform) else "zip"), split)


def build_platform(
    pl: PlatformLock,
    settings: BundleSettings,
    options: BuildOptions,
    rep: Reporter,
    channels: Sequence[Channel] = (),
    tools: list[tuple[str, bytes]] | None = None,
    container: tuple[str, int | None] = ("zip", None),
) -> list[Path]:
    if pl.micromamba is None and tools is None:
        raise LockError(f"the lock's {pl.platform} environment records no micromamba; lock again")
    cache = private_cache(options.lock)
    fetcher = Fetcher(
        FetchOptions(
            cache_dir=cache,
            concurrency=options.concurrency,
            offline=options.lock.offline,
            verify_cache=options.verify_cache,
            timeout=options.timeout,
        ),
        channels=channels,
        progress=rep.progress(),
    )
    records = pl.all_records() if tools is None else sorted(pl.packages)
    rep.info(f"{pl.platform}: fetching {len(records)} packages")
    paths = fetcher.fetch_all(records)
    if fetcher.completed:
        # Imported records without size/sha256 are completed from what was downloaded.
        paths = {fetcher.completed.get(r, r): p for r, p in paths.items()}
        pl = replace(pl, packages=tuple(sorted(fetcher.completed.get(r, r) for r in pl.packages)))
    if tools is None:
        assert pl.micromamba is not None
        found = extract_micromamba(pl.micromamba, pl.platform, paths, options.lock.micromamba_exe)
        tools = [(t.name, t.data) for t in found]
    newest = max((r.timestamp or 0 for r in pl.packages), default=0) // 1000
    epoch = settings.epoch if settings.epoch is not None else source_date_epoch(newest or None)
    entries, ctx = bundle_entries(pl, settings, paths, tools, epoch)
    top = settings.name
    stem = f"{settings.name}-{pl.platform}"
    fmt, split = container
    # join.bat and README.txt have fixed names: a split form gets a folder of its own.
    folder = options.output_dir / stem if split else options.output_dir
    rep.info(f"{pl.platform}: writing {folder / stem}.{fmt}{' in parts' if split else ''}")
    staged = []
    try:
        staged.append(stage_bundle(folder, stem, top, entries, epoch, fmt=fmt, split=split))
        if options.sfx and not is_posix_platform(pl.platform):
            sfx_stem = f"{stem}-setup"
            sfx_dir = options.output_dir / sfx_stem if split else options.output_dir
            header = render_sfx_header(ctx)
            staged.append(
                stage_bundle(sfx_dir, sfx_stem, top, entries, epoch, header=header, split=split)
            )
        elif options.sfx_sh and is_posix_platform(pl.platform):
            header = render_sfx_header_sh(ctx)
            staged.append(
                stage_bundle(
                    options.output_dir, f"{stem}-setup", top, entries, epoch, "tar", header
                )
            )
        # Both written in full before either replaces an old one: a failure in the second
        # leaves the output folder as it was, never a new zip beside an old -setup.bat.
        return [path for s in staged for path in s.commit()]
    finally:
        for s in staged:
            s.discard()
