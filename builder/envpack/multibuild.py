"""``envpack build A B ...``: one bundle per platform holding several environments, each package
stored once (the layout is bundle/multi.py's), and ``build --from`` such a bundle.

A feature on top of the pipeline, as update/ is: the CLI dispatches here, so the pipeline never
imports this module (no import circle).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from envpack.archive.readers import open_bundle
from envpack.archive.write import stage_bundle
from envpack.assemble import make_fetcher
from envpack.bundle.layout import BundleSettings, default_prefix
from envpack.bundle.manifest import source_date_epoch
from envpack.bundle.shstubs import is_posix_platform
from envpack.channels import Channel
from envpack.errors import EnvpackError, LockError
from envpack.fetch.micromamba_exe import artifact_from_file, extract_micromamba
from envpack.lock.lockfile import PlatformLock, platform_lock_from_dict
from envpack.options import BuildOptions, Reporter
from envpack.pipeline import (
    BuildResult,
    _container,
    _platform_container,
    _solve_micromamba_from,
    build,
    bundle_settings,
    lock,
    with_recipe_sfx,
)
from envpack.resolve.recipe import Recipe

# envpack.bundle.multi is imported by the functions that make a bundle of several environments:
# the CLI's every build passes through build_any, most build one (issue 18, start-up).


def build_any(options: BuildOptions, rep: Reporter) -> BuildResult:
    """The CLI's build: several environments here, a multi-environment bundle's rebuild here,
    everything else in the pipeline."""
    if options.more_recipes:
        return build_multi(options, rep)
    if options.from_bundle is not None and _is_multi(options.from_bundle):
        paths, pl = rebuild_multi(options.from_bundle, options, rep)
        return BuildResult(
            outputs=paths, packages=len(pl.packages), total_bytes=sum(r.size for r in pl.packages)
        )
    return build(options, rep)


def _is_multi(bundle: Path) -> bool:
    with open_bundle(bundle) as reader:
        return "environments" in reader.manifest


def _environment_locks(
    path: Path, options: BuildOptions, rep: Reporter
) -> tuple[dict[str, PlatformLock], BundleSettings | None, Recipe | None, Sequence[Channel]]:
    """One environment of ``build A B ...``: its platform locks, and its recipe's settings
    (None for a lock file: settings per platform come from the lock's name)."""
    from envpack.lock.importers import detect_lock_kind, load_lock_file, secret_channels

    if path.is_file() and detect_lock_kind(path) is not None:
        imported = load_lock_file(path, options.lock.platform)
        secrets = secret_channels(path)
        out = {}
        for platform, pl in sorted(imported.platforms.items()):
            if options.lock.micromamba_exe is not None:
                pl = replace(pl, micromamba=artifact_from_file(options.lock.micromamba_exe))
            elif pl.micromamba is None:
                pl = replace(pl, micromamba=_solve_micromamba_from(pl, options, rep, secrets))
            out[platform] = pl
        return out, None, None, secrets
    # Each recipe keeps its own lock file beside it; --lock-file names one file, not several.
    locked = lock(replace(options.lock, recipe=path, lock_file=None), rep)
    pls = {p: locked.lock.for_platform(p) for p in locked.recipe.platforms}
    return pls, None, locked.recipe, tuple(locked.recipe.channels)


def build_multi(options: BuildOptions, rep: Reporter) -> BuildResult:
    """``build A B ...``: one bundle per platform holding every environment, each package once.

    The platforms are the first environment's; every other must be locked for them too."""

    from envpack.bundle.multi import Environment

    assert options.lock.recipe is not None
    paths = [options.lock.recipe, *options.more_recipes]
    loaded = [_environment_locks(p, options, rep) for p in paths]
    # --sfx, else the first recipe's envpack.sfx: only to say that no -setup.bat is written.
    options = with_recipe_sfx(options, loaded[0][2])
    result = BuildResult()
    channels = [c for _, _, _, chans in loaded for c in chans]
    for platform in loaded[0][0]:
        if is_posix_platform(platform):
            raise EnvpackError(
                f"{platform}: a bundle of several environments is Windows-only for now; "
                "build each environment as a bundle of its own"
            )
        envs = []
        for path, (pls, _, recipe, _) in zip(paths, loaded, strict=True):
            if platform not in pls:
                raise LockError(f"{path}: not locked for {platform}, which {paths[0]} is for")
            pl = pls[platform]
            if recipe is not None:
                settings = bundle_settings(recipe, platform)
            else:
                name = path.name.split(".")[0]
                settings = BundleSettings(
                    name=name, default_prefix=default_prefix(None, name, platform)
                )
            envs.append(Environment(pl, settings))
        name = options.name or "+".join(e.settings.name for e in envs)
        first = loaded[0][2]
        fmt = first.format if first is not None and first.format != "zip" else None
        container = _platform_container(
            options, platform, fmt, first.split if first is not None else None
        )
        record: dict[str, object] = {"environments": [str(p.name) for p in paths]}
        result.outputs.extend(
            build_multi_platform(name, envs, options, rep, channels, None, container, record)
        )
        pool = {r for e in envs for r in e.lock.packages}
        result.packages += len(pool)
        result.total_bytes += sum(r.size for r in pool)
    return result


def build_multi_platform(
    name: str,
    envs: Sequence[Any],
    options: BuildOptions,
    rep: Reporter,
    channels: Sequence[Channel] = (),
    tools: list[tuple[str, bytes]] | None = None,
    container: tuple[str, int | None] = ("zip", None),
    recipe_record: dict[str, object] | None = None,
    epoch: int | None = None,
) -> list[Path]:
    """Fetch the union of ``envs``' packages once and write the one bundle holding them all."""
    from envpack.bundle.multi import multi_bundle_entries, pool_lock

    pool = pool_lock(envs)
    if pool.micromamba is None and tools is None:
        raise LockError(f"the lock's {pool.platform} environment records no micromamba; lock again")
    fetcher = make_fetcher(options, channels, rep)
    records = pool.all_records() if tools is None else sorted(pool.packages)
    rep.info(f"{pool.platform}: fetching {len(records)} packages for {len(envs)} environments")
    paths = fetcher.fetch_all(records)
    if fetcher.completed:
        done = fetcher.completed
        paths = {done.get(r, r): p for r, p in paths.items()}
        envs = [
            replace(
                e,
                lock=replace(
                    e.lock, packages=tuple(sorted(done.get(r, r) for r in e.lock.packages))
                ),
            )
            for e in envs
        ]
        pool = pool_lock(envs)
    if tools is None:
        assert pool.micromamba is not None
        found = extract_micromamba(
            pool.micromamba, pool.platform, paths, options.lock.micromamba_exe
        )
        tools = [(t.name, t.data) for t in found]
    newest = max((r.timestamp or 0 for r in pool.packages), default=0) // 1000
    when = epoch if epoch is not None else source_date_epoch(newest or None)
    entries = multi_bundle_entries(name, envs, paths, tools, when, recipe_record)
    stem = f"{name}-{pool.platform}"
    fmt, split = container
    folder = options.output_dir / stem if split else options.output_dir
    rep.info(f"{pool.platform}: writing {folder / stem}.{fmt}{' in parts' if split else ''}")
    if options.sfx:
        # The self-extracting header is one environment's setup.bat; say so, not silently skip.
        rep.info("note: a bundle of several environments has no self-extracting -setup.bat")
    staged = stage_bundle(folder, stem, name, entries, when, fmt=fmt, split=split)
    try:
        return staged.commit()
    finally:
        staged.discard()


def rebuild_multi(
    bundle: Path, options: BuildOptions, rep: Reporter
) -> tuple[list[Path], PlatformLock]:
    """``build --from`` a bundle of several environments: each one's lock and settings from
    the manifest's ``environments``, its scripts and micromamba from the bundle."""
    from envpack.bundle.multi import Environment, pool_lock
    from envpack.snapshot.rebuild import rebuild_inputs

    inputs = rebuild_inputs(bundle)
    manifest = inputs.manifest
    platform = str(manifest.get("platform"))
    envs = []
    with open_bundle(bundle) as reader:
        for item in manifest["environments"]:
            install = item.get("install") or {}
            where = f"{bundle}: envpack.json environment {item.get('name')!r}"
            pl = platform_lock_from_dict(platform, item.get("lock") or {}, where, "lock")
            scripts = tuple(
                (re.sub(r"^\d+-", "", rel.rsplit("/", 1)[-1]), reader.read_bytes(rel, 1 << 30))
                for rel in install.get("post_install") or ()
            )
            settings = BundleSettings(
                name=str(item["name"]),
                default_prefix=str(install.get("default_prefix")),
                shortcuts=bool(install.get("shortcuts", False)),
                variables=tuple(sorted((install.get("variables") or {}).items())),
                post_install=scripts,
                recipe_record=item.get("recipe"),
            )
            envs.append(Environment(pl, settings))
    rep.info(f"{platform}: rebuilding {manifest.get('name')} from {bundle}")
    epoch = int(manifest["created"]) if manifest.get("created") is not None else None
    paths = build_multi_platform(
        str(manifest.get("name")),
        envs,
        options,
        rep,
        (),
        list(inputs.tools),
        _container(options, inputs.format, None),
        manifest.get("recipe"),
        epoch,
    )
    return paths, pool_lock(envs)
