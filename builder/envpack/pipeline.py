"""envpack's operations, one function each; the CLI builds an options object and calls one.

Nothing here prints or exits: progress goes to a :class:`Reporter`, failures are
:class:`~envpack.errors.EnvpackError` subclasses.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from envpack.assemble import build_platform
from envpack.bundle.layout import (
    BundleSettings,
    default_prefix,
)
from envpack.bundle.shstubs import is_posix_platform
from envpack.channels import Channel
from envpack.errors import EnvpackError, LockError, SolveError
from envpack.fetch.cache import private_cache
from envpack.fetch.download import FetchOptions
from envpack.fetch.micromamba_exe import (
    artifact_from_file,
    artifact_from_solve,
    tool_specs,
)
from envpack.limits import parse_size
from envpack.lock.lockfile import Lock, PlatformLock, lock_path_for, read_lock, write_lock
from envpack.lock.record import MicromambaArtifact
from envpack.lock.wheel import WheelRecord
from envpack.options import LOCK_MODES, BuildOptions, LockOptions, NullReporter, Reporter
from envpack.platforms import virtual_packages
from envpack.resolve.recipe import (
    DEFAULT_MICROMAMBA_SPEC,
    POST_INSTALL_SUFFIXES,
    Recipe,
    load_recipe,
)

# The solvers (rattler, asyncio) and envpack.pypi (packaging, uv) are imported in the functions
# that solve or handle pip entries: a build from an up-to-date lock without wheels needs neither
# (issue 18: they were a sixth of a warm build's start-up).
if TYPE_CHECKING:
    from envpack.resolve.solver import SolveRequest


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
    from envpack.resolve.solver import SolveRequest
    from envpack.resolve.solvers import get_solver

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
        from envpack.pypi.plan import lock_pip

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
        from envpack.resolve.solver import specs_text

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
        indexes = _pip_indexes(locked.recipe)
        result.outputs.extend(
            build_platform(
                pl, settings, options, rep, locked.recipe.channels, None, container, indexes
            )
        )
        result.packages += len(pl.packages)
        result.total_bytes += sum(r.size for r in pl.packages)
    return result


def _pip_indexes(recipe: Recipe) -> list[str]:
    """The package indexes the recipe's ``pip:`` list names; none without one (and then no
    envpack.pypi to import)."""
    if not recipe.pip:
        return []
    from envpack.pypi.plan import index_urls
    from envpack.pypi.requirements import parse_pip_list

    return index_urls(parse_pip_list(list(recipe.pip), recipe.path))


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
    from envpack.pypi.credentials import lock_file_indexes

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
    from envpack.resolve.solver import SolveRequest
    from envpack.resolve.solvers import get_solver

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
