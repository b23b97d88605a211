"""envpack's operations, one function each; the CLI builds an options object and calls one.

Nothing here prints or exits: progress goes to a :class:`Reporter`, failures are
:class:`~envpack.errors.EnvpackError` subclasses.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from envpack.archive.write import StagedBundle, stage_bundle, stage_sfx_from_zip
from envpack.bundle.layout import (
    BundleSettings,
    bundle_entries,
    default_prefix,
    package_member,
    streamed_entries,
)
from envpack.bundle.manifest import Entry, source_date_epoch
from envpack.bundle.shstubs import is_posix_platform, render_sfx_header_sh
from envpack.bundle.stubs import StubContext, render_sfx_header
from envpack.channels import Channel
from envpack.errors import EnvpackError, LockError, SolveError
from envpack.fetch.cache import private_cache, read_crc32
from envpack.fetch.download import Fetcher, FetchOptions, wait_for
from envpack.fetch.micromamba_exe import (
    artifact_from_file,
    artifact_from_solve,
    extract_micromamba,
    tool_specs,
)
from envpack.limits import parse_size
from envpack.lock.lockfile import Lock, PlatformLock, lock_path_for, read_lock, write_lock
from envpack.lock.record import LockedPackage, MicromambaArtifact
from envpack.lock.wheel import WheelRecord
from envpack.options import LOCK_MODES, BuildOptions, LockOptions, NullReporter, Reporter
from envpack.platforms import virtual_packages
from envpack.pypi.credentials import lock_file_indexes
from envpack.pypi.fetch import fetch_wheels
from envpack.pypi.plan import index_urls, lock_pip
from envpack.pypi.requirements import parse_pip_list
from envpack.resolve.recipe import (
    DEFAULT_MICROMAMBA_SPEC,
    POST_INSTALL_SUFFIXES,
    Recipe,
    load_recipe,
)
from envpack.resolve.solver import SolveRequest, specs_text
from envpack.resolve.solvers import get_solver


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
    wheels: tuple[WheelRecord, ...] = ()
    if recipe.pip:
        fetch = FetchOptions(cache_dir=cache, offline=options.offline)
        with tempfile.TemporaryDirectory(prefix="envpack-pip-") as work:
            pip_lock, _ = lock_pip(recipe.pip, recipe.path, platform, packages, fetch, Path(work))
        for note in pip_lock.notes:
            warn(f"{platform}: {note}")
        wheels = pip_lock.wheels
    return PlatformLock(
        platform=platform,
        packages=tuple(sorted(packages)),
        input_hash=recipe.input_hash(platform),
        virtual_packages=tuple(vp.as_spec() for vp in vps),
        micromamba=artifact,
        pypi=wheels,
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
    if options.recipe is None:
        raise EnvpackError("no recipe to lock")
    recipe = load_recipe(options.recipe, platform=options.platform, solver=options.solver)
    for note in recipe.notes:
        rep.info(note)
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
                f"{path}: the lock does not match {recipe.path.name} for {platform}; "
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


def bundle_settings(recipe: Recipe, platform: str) -> BundleSettings:
    """What the recipe contributes to a bundle's bytes besides the lock (the post-install
    scripts of the platform's kind: .bat/.cmd for Windows, .sh for Linux and macOS)."""
    family = "posix" if is_posix_platform(platform) else "win"
    return BundleSettings(
        name=recipe.name,
        default_prefix=default_prefix(recipe.prefix, recipe.name, platform),
        shortcuts=recipe.shortcuts,
        variables=tuple(sorted(recipe.variables.items())),
        post_install=tuple(
            (p.name, p.read_bytes())
            for p in recipe.post_install
            if POST_INSTALL_SUFFIXES[p.suffix.lower()] == family
        ),
        recipe_record={
            "file": recipe.path.name,
            "name": recipe.name,
            "channels": [c.public_url for c in recipe.channels],
            "specs": list(recipe.specs),
            "platforms": list(recipe.platforms),
            "solver": recipe.solver,
            "micromamba": recipe.micromamba_spec,
        },
    )


def build(options: BuildOptions, reporter: Reporter | None = None) -> BuildResult:
    """Build from a recipe, from a lock file of any kind, or (``from_bundle``) an old bundle."""
    rep = reporter or NullReporter()
    if options.from_bundle is not None:
        return _result(build_from_bundle(options.from_bundle, options, rep))

    from envpack.lock.importers import detect_lock_kind

    given = options.lock.recipe
    if given is not None and given.is_file() and detect_lock_kind(given) is not None:
        return build_from_lock_file(given, options, rep)
    locked = lock(options.lock, rep)
    options = with_recipe_sfx(options, locked.recipe)
    result = BuildResult(lock_file=locked.path, lock_changed=locked.changed)
    for platform in locked.recipe.platforms:
        pl = locked.lock.for_platform(platform)
        settings = bundle_settings(locked.recipe, platform)
        fmt = locked.recipe.format
        container = _platform_container(
            options, platform, None if fmt == "zip" else fmt, locked.recipe.split
        )
        indexes = index_urls(parse_pip_list(list(locked.recipe.pip), locked.recipe.path))
        result.outputs.extend(
            build_platform(
                pl, settings, options, rep, locked.recipe.channels, None, container, indexes
            )
        )
        result.packages += len(pl.packages)
        result.total_bytes += sum(r.size for r in pl.packages)
    return result


def with_recipe_sfx(options: BuildOptions, recipe: Recipe | None) -> BuildOptions:
    """The options with ``sfx`` decided: --sfx/--no-sfx, else the recipe's ``envpack.sfx``,
    else none (one container by default: the self-extracting form doubles the bytes written)."""
    if options.sfx is not None:
        return options
    return replace(options, sfx=recipe.sfx if recipe is not None else False)


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
    from envpack.snapshot.rebuild import extract_wheels, rebuild_inputs

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
    # The wheels come from the old bundle, as its tools do: no index or cache needed for them.
    with tempfile.TemporaryDirectory(prefix="envpack-wheels-") as tmp:
        wheels = extract_wheels(bundle, pl.pypi, Path(tmp))
        paths = build_platform(
            pl, settings, options, rep, (), list(inputs.tools), container, wheel_files=wheels
        )
    return paths, pl


def build_from_lock_file(path: Path, options: BuildOptions, rep: Reporter) -> BuildResult:
    """Ship an existing conda-lock / pixi / @EXPLICIT / envpack lock without re-solving."""
    from envpack.lock.importers import load_lock_file, secret_channels, skipped_note

    imported = load_lock_file(path, options.lock.platform)
    # Tokens and passwords in the file's URLs never enter the lock; they only reach the fetcher.
    secrets = secret_channels(path)
    # The wheels' index credentials: the file's own URLs, PIP_*/UV_* variables, .netrc.
    indexes = lock_file_indexes(path)
    for skipped in imported.extra.get("skipped", ()):
        rep.info(skipped_note(path, skipped))
    result = BuildResult()
    for platform in sorted(imported.platforms):
        pl = imported.platforms[platform]
        if options.lock.micromamba_exe is not None:
            pl = replace(pl, micromamba=artifact_from_file(options.lock.micromamba_exe))
        elif pl.micromamba is None:
            pl = replace(pl, micromamba=_solve_micromamba_from(pl, options, rep, secrets))
        result.outputs.extend(
            build_from_lock(
                imported.with_platform(pl), platform, options, rep, None, secrets, indexes
            )
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
    tools: list[tuple[str, bytes]] | None = None,
    channels: Sequence[Channel] = (),
    pip_indexes: Sequence[str] = (),
) -> list[Path]:
    """Build one platform's bundle from a lock alone (an imported lock, or an old bundle's)."""
    pl = lock.for_platform(platform)
    settings = BundleSettings(
        name=lock.name, default_prefix=default_prefix(None, lock.name, platform)
    )
    container = _platform_container(options, platform, None, None)
    return build_platform(
        pl, settings, options, reporter or NullReporter(), channels, tools, container, pip_indexes
    )


def _container(options: BuildOptions, fmt: str, split: str | None) -> tuple[str, int | None]:
    """The bundle's container and part size: the command line's, else the given defaults."""
    chosen_split = options.split
    if chosen_split is None and split is not None:
        chosen_split = parse_size(split)
    return options.format or fmt, chosen_split


def _platform_container(
    options: BuildOptions, platform: str, fmt: str | None, split: str | None
) -> tuple[str, int | None]:
    """Windows bundles default to zip, Linux and macOS ones to tar (every tar reads it)."""
    return _container(options, fmt or ("tar" if is_posix_platform(platform) else "zip"), split)


def make_fetcher(options: BuildOptions, channels: Sequence[Channel], rep: Reporter) -> Fetcher:
    """The one fetcher of a build: the options' cache (made private), concurrency, offline
    mode, cache verification and timeout; the channels carry the credentials."""
    return Fetcher(
        FetchOptions(
            cache_dir=private_cache(options.lock),
            concurrency=options.concurrency,
            offline=options.lock.offline,
            verify_cache=options.verify_cache,
            timeout=options.timeout,
        ),
        channels=channels,
        progress=rep.progress(),
    )


def build_platform(
    pl: PlatformLock,
    settings: BundleSettings,
    options: BuildOptions,
    rep: Reporter,
    channels: Sequence[Channel] = (),
    tools: list[tuple[str, bytes]] | None = None,
    container: tuple[str, int | None] = ("zip", None),
    pip_indexes: Sequence[str] = (),
    wheel_files: Mapping[WheelRecord, Path] | None = None,
) -> list[Path]:
    """Fetch one platform's packages and write its bundle (and the self-extracting form when
    ``options.sfx``); staged, then committed together."""
    if pl.micromamba is None and tools is None:
        raise LockError(f"the lock's {pl.platform} environment records no micromamba; lock again")
    fetcher = make_fetcher(options, channels, rep)
    records = pl.all_records() if tools is None else sorted(pl.packages)
    rep.info(f"{pl.platform}: fetching {len(records)} packages")
    if all(r.size and r.sha256 for r in records):
        return _stream_platform(
            fetcher, pl, settings, options, rep, tools, container, pip_indexes, wheel_files
        )
    # Imported records without size/sha256: the layout needs both, so fetch everything first
    # and complete the records from what was downloaded.
    paths = fetcher.fetch_all(records)
    paths = {fetcher.completed.get(r, r): p for r, p in paths.items()}
    pl = replace(pl, packages=tuple(sorted(fetcher.completed.get(r, r) for r in pl.packages)))
    if tools is None:
        tools = _tools(pl, paths, options)
    wheel_paths: dict[WheelRecord, Path] = dict(wheel_files or {})
    if pl.pypi and wheel_files is None:
        wheel_paths = _fetch_wheels(pl, fetcher, pip_indexes, rep)
    epoch = _epoch(pl, settings)
    entries, ctx = bundle_entries(pl, settings, paths, tools, epoch, wheel_paths)
    return _write(pl, settings, options, rep, entries, lambda: ctx, epoch, container)


def _stream_platform(
    fetcher: Fetcher,
    pl: PlatformLock,
    settings: BundleSettings,
    options: BuildOptions,
    rep: Reporter,
    tools: list[tuple[str, bytes]] | None,
    container: tuple[str, int | None],
    pip_indexes: Sequence[str],
    wheel_files: Mapping[WheelRecord, Path] | None,
) -> list[Path]:
    """The bundle written while its packages arrive: every download starts at once (micromamba's
    first: the tool files' names are needed up front), each package is written as soon as it and
    those before it are in, and the files that depend on what the packages hold (README.txt,
    setup.bat, envpack.json) once all are (see layout.streamed_entries)."""
    mm = _micromamba_records(pl) if tools is None else []
    members = sorted(pl.packages, key=package_member)  # the order the writers take them in
    futures = fetcher.start(list(dict.fromkeys([*mm, *members])))

    def waiter(record: LockedPackage) -> Callable[[], tuple[Path, int | None]]:
        def wait() -> tuple[Path, int | None]:
            path = wait_for(futures[record])
            return path, read_crc32(path)

        return wait

    def arrived() -> tuple[dict[LockedPackage, Path], Mapping[WheelRecord, Path]]:
        paths = {r: wait_for(futures[r]) for r in members}
        if pl.pypi and wheel_files is None:
            return paths, _fetch_wheels(pl, fetcher, pip_indexes, rep)
        return paths, wheel_files or {}

    try:
        if tools is None:
            tools = _tools(pl, {r: wait_for(futures[r]) for r in mm}, options)
        epoch = _epoch(pl, settings)
        pending = {r: waiter(r) for r in pl.packages}
        entries, late = streamed_entries(pl, settings, pending, tools, epoch, arrived)
        return _write(pl, settings, options, rep, entries, late.context, epoch, container)
    except KeyboardInterrupt:
        fetcher.halt()  # every download stopped now, part files removed
        raise
    except BaseException:
        # A failed download has failed every future already; anything else (disk full while
        # writing) stops the downloads not begun and waits for the running ones.
        fetcher.cancel()
        raise


def _micromamba_records(pl: PlatformLock) -> list[LockedPackage]:
    mm = pl.micromamba
    if mm is None:
        return []
    return [r for r in (mm.record, *mm.runtime) if r is not None]


def _tools(
    pl: PlatformLock, paths: dict[LockedPackage, Path], options: BuildOptions
) -> list[tuple[str, bytes]]:
    assert pl.micromamba is not None
    found = extract_micromamba(pl.micromamba, pl.platform, paths, options.lock.micromamba_exe)
    return [(t.name, t.data) for t in found]


def _fetch_wheels(
    pl: PlatformLock, fetcher: Fetcher, pip_indexes: Sequence[str], rep: Reporter
) -> dict[WheelRecord, Path]:
    rep.info(f"{pl.platform}: fetching {len(pl.pypi)} wheels")
    fetched = fetch_wheels(pl.pypi, fetcher.options, pip_indexes, rep.progress())
    # Keyed by the record to ship: the lock's, or when it gave no size (a wheel imported from a
    # conda-lock or pixi.lock), the downloaded file's size and requires-python.
    return {w if w.size else done: p for w, (done, p) in fetched.items()}


def _epoch(pl: PlatformLock, settings: BundleSettings) -> int:
    newest = max((r.timestamp or 0 for r in pl.packages), default=0) // 1000
    return settings.epoch if settings.epoch is not None else source_date_epoch(newest or None)


def _write(
    pl: PlatformLock,
    settings: BundleSettings,
    options: BuildOptions,
    rep: Reporter,
    entries: Sequence[Entry],
    context: Callable[[], StubContext],
    epoch: int,
    container: tuple[str, int | None],
) -> list[Path]:
    """Stage the bundle, and its self-extracting form when asked for; commit them together."""
    top = settings.name
    stem = f"{settings.name}-{pl.platform}"
    fmt, split = container
    # join.bat and README.txt have fixed names: a split form gets a folder of its own.
    folder = options.output_dir / stem if split else options.output_dir
    rep.info(f"{pl.platform}: writing {folder / stem}.{fmt}{' in parts' if split else ''}")
    staged = []
    try:
        staged.append(stage_bundle(folder, stem, top, entries, epoch, fmt=fmt, split=split))
        if options.sfx:
            # The header is rendered from what the packages hold: known once the bundle is.
            staged.append(_stage_sfx(pl, options, staged[0], entries, context(), epoch, container))
        # Both written in full before either replaces an old one: a failure in the second
        # leaves the output folder as it was, never a new zip beside an old -setup.bat.
        return [path for s in staged for path in s.commit()]
    finally:
        for s in staged:
            s.discard()


def _stage_sfx(
    pl: PlatformLock,
    options: BuildOptions,
    first: StagedBundle,
    entries: Sequence[Entry],
    ctx: StubContext,
    epoch: int,
    container: tuple[str, int | None],
) -> StagedBundle:
    """The self-extracting <stem>-setup.bat (a zip behind a batch header) or -setup.sh (a tar
    behind a shell header). From a whole zip it is the header and a kernel copy of that zip with
    its offsets shifted; otherwise (parts, 7z, tar) the entries are written again."""
    top = ctx.name
    sfx_stem = f"{ctx.name}-{pl.platform}-setup"
    fmt, split = container
    if is_posix_platform(pl.platform):
        header = render_sfx_header_sh(ctx)
        return stage_bundle(options.output_dir, sfx_stem, top, entries, epoch, "tar", header)
    header = render_sfx_header(ctx)
    if fmt == "zip" and split is None:
        return stage_sfx_from_zip(first.files[0], options.output_dir, sfx_stem, header)
    sfx_dir = options.output_dir / sfx_stem if split else options.output_dir
    return stage_bundle(sfx_dir, sfx_stem, top, entries, epoch, header=header, split=split)
