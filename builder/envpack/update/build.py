"""``envpack build NEW --update-from OLD``: the update bundle, written like a full bundle.

NEW is what ``envpack build`` takes (a recipe, locked as usual, or a lock file of any kind);
OLD is read by :func:`plan.read_base`. Only the carried packages are fetched (and micromamba's,
when the bundle must carry a new micromamba). Nothing is written when the plan is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from envpack.archive import stage_bundle
from envpack.assemble import make_fetcher
from envpack.bundle.layout import BundleSettings, default_prefix
from envpack.bundle.manifest import source_date_epoch
from envpack.channels import Channel
from envpack.errors import UpdateError
from envpack.fetch.micromamba_exe import extract_micromamba
from envpack.lock.lockfile import Lock, PlatformLock
from envpack.lock.record import LockedPackage
from envpack.options import BuildOptions, NullReporter, Reporter
from envpack.pipeline import BuildResult, bundle_settings, lock

from .layout import update_entries
from .plan import Base, UpdatePlan, _micromamba_id, plan_update, read_base


def build_update(options: BuildOptions, old: Path, reporter: Reporter | None = None) -> BuildResult:
    rep = reporter or NullReporter()
    new_lock, settings_for, channels = _target(options, rep)
    base = read_base(old, options.lock.platform)
    if base.platform not in new_lock.platforms:
        have = ", ".join(sorted(new_lock.platforms)) or "none"
        raise UpdateError(
            f"{old}: the base environment is for {base.platform}; the new lock has {have}. "
            "An update cannot change the platform (build a full bundle)"
        )
    target = new_lock.for_platform(base.platform)
    settings = settings_for(base.platform)
    plan = plan_update(settings.name, base, target)
    rep.info(
        f"{plan.platform}: update {plan.base_sha256[:8]} -> {plan.target_sha256[:8]}: "
        f"{len(plan.added)} added, {len(plan.changed)} changed, {len(plan.removed)} removed"
    )
    outputs, carried_bytes = _write(plan, target, base, settings, options, rep, channels)
    return BuildResult(outputs=outputs, packages=len(plan.carried), total_bytes=carried_bytes)


def _target(
    options: BuildOptions, rep: Reporter
) -> tuple[Lock, Callable[[str], BundleSettings], Sequence[Channel]]:
    """NEW's lock, its bundle settings per platform, and the channels holding credentials."""
    path = options.lock.recipe
    if path is None:
        raise UpdateError("--update-from needs the new recipe or lock file")
    from envpack.lock.importers import detect_lock_kind, load_lock_file, secret_channels

    if path.is_file() and detect_lock_kind(path) is not None:
        imported = load_lock_file(path, options.lock.platform)

        def from_lock(platform: str) -> BundleSettings:
            return BundleSettings(
                name=imported.name, default_prefix=default_prefix(None, imported.name, platform)
            )

        return imported, from_lock, secret_channels(path)
    locked = lock(options.lock, rep)

    def from_recipe(platform: str) -> BundleSettings:
        return bundle_settings(locked.recipe, platform)

    return locked.lock, from_recipe, locked.recipe.channels


def _carry_micromamba(base: Base, target: PlatformLock, options: BuildOptions) -> bool:
    """A new micromamba travels only when OLD's is known and differs; otherwise update.bat
    uses the environment's own ``Scripts\\micromamba.exe`` (setup.bat always installs it)."""
    if target.micromamba is None and options.lock.micromamba_exe is None:
        return False
    if base.micromamba_sha256 is None:
        return False
    if options.lock.micromamba_exe is not None:
        from envpack.fetch.micromamba_exe import artifact_from_file

        return artifact_from_file(options.lock.micromamba_exe).file_sha256 != base.micromamba_sha256
    return _micromamba_id(target.micromamba) != base.micromamba_sha256


def _write(
    plan: UpdatePlan,
    target: PlatformLock,
    base: Base,
    settings: BundleSettings,
    options: BuildOptions,
    rep: Reporter,
    channels: Sequence[Channel],
) -> tuple[list[Path], int]:
    carry_mm = _carry_micromamba(base, target, options)
    records: list[LockedPackage] = list(plan.carried)
    if carry_mm and target.micromamba is not None and options.lock.micromamba_exe is None:
        mm = target.micromamba
        records += [r for r in (mm.record, *mm.runtime) if r is not None]
    fetcher = make_fetcher(options, channels, rep)
    rep.info(f"{plan.platform}: fetching {len(set(records))} packages")
    paths = fetcher.fetch_all(sorted(set(records)))
    if fetcher.completed:
        # Imported records without size/sha256, completed from what was downloaded.
        paths = {fetcher.completed.get(r, r): p for r, p in paths.items()}
        target = replace(
            target, packages=tuple(sorted(fetcher.completed.get(r, r) for r in target.packages))
        )
        plan = plan_update(plan.name, base, target)
    tools: list[tuple[str, bytes]] = []
    if carry_mm:
        artifact = target.micromamba
        if options.lock.micromamba_exe is not None:
            from envpack.fetch.micromamba_exe import artifact_from_file

            artifact = artifact_from_file(options.lock.micromamba_exe)
        assert artifact is not None
        found = extract_micromamba(artifact, plan.platform, paths, options.lock.micromamba_exe)
        tools = [(t.name, t.data) for t in found]
    newest = max((r.timestamp or 0 for r in target.packages), default=0) // 1000
    epoch = settings.epoch if settings.epoch is not None else source_date_epoch(newest or None)
    entries = update_entries(plan, target, settings, paths, tools, epoch, base.kind)
    if options.sfx:
        # update.bat runs from the unpacked folder; there is no self-extracting update.
        rep.info("note: an update bundle has no self-extracting -setup.bat")
    fmt = options.format or "zip"
    folder = options.output_dir / plan.stem if options.split else options.output_dir
    rep.info(f"{plan.platform}: writing {folder / plan.stem}.{fmt}")
    staged = stage_bundle(
        folder, plan.stem, f"{plan.name}-update", entries, epoch, fmt=fmt, split=options.split
    )
    try:
        return staged.commit(), sum(r.size for r in plan.carried)
    finally:
        staged.discard()
