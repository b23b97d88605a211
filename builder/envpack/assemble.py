"""One platform's bundle from its lock: fetch the packages, lay the bundle out, write it.

The bundle is written while the packages arrive (:func:`build_platform`): every download starts
at once, each package is written as soon as it and those before it are in, and the files that
depend on what the packages hold are made after the last. :mod:`envpack.pipeline`,
:mod:`envpack.multibuild` and :mod:`envpack.update.build` share :func:`make_fetcher`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from envpack.archive.write import StagedBundle, remove_old_sfx, stage_bundle, stage_sfx_from_zip
from envpack.bundle.layout import BundleSettings, bundle_entries, package_member, streamed_entries
from envpack.bundle.manifest import Entry, source_date_epoch
from envpack.bundle.shstubs import is_posix_platform, render_sfx_header_sh
from envpack.bundle.stubs import StubContext, render_sfx_header
from envpack.channels import Channel
from envpack.errors import LockError
from envpack.fetch.cache import private_cache, read_crc32
from envpack.fetch.download import Fetcher, FetchOptions, wait_for
from envpack.fetch.micromamba_exe import extract_micromamba
from envpack.lock.lockfile import PlatformLock
from envpack.lock.record import LockedPackage
from envpack.lock.wheel import WheelRecord
from envpack.options import BuildOptions, Reporter


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
    # Here, not at the top: only a lock with wheels needs envpack.pypi (issue 18, start-up).
    from envpack.pypi.fetch import fetch_wheels

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
        outputs = [path for s in staged for path in s.commit()]
        if not options.sfx:
            for old in remove_old_sfx(options.output_dir, stem):
                rep.info(
                    f"removed the old {old.name} (it held the previous packages; --sfx writes it)"
                )
        return outputs
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
