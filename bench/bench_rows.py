"""The rows of bench/run.py that are not plain build timings: the solve against py-rattler, the
update bundle's size, several environments in one bundle, peak memory; and the second
container's cost."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench_common import (
    BenchError,
    Config,
    Deaths,
    Row,
    Sample,
    clean_env,
    envpack_argv,
    locked_records,
    med,
    pair_ratio,
    paired,
    rm,
    run_retrying,
    run_timed,
    secs,
    user_cpu,
    verdict,
    write_recipe,
)
from make_channel import MB, PlannedPkg

SHARED_SUBSET = Path(__file__).resolve().parents[2] / "shared" / "data" / "conda-forge-py39-subset"
SOLVE_SPECS = ("python=3.9", "pip")

# The reference solve: what envpack's RattlerSolver does, minus envpack.
REF_SOLVE = """
import asyncio, sys, time
import rattler
channel, cache, *specs = sys.argv[1:]
vps = [
    rattler.GenericVirtualPackage(
        rattler.PackageName("__archspec"), rattler.Version("1"), rattler.BuildString("x86_64")
    ),
    rattler.GenericVirtualPackage(
        rattler.PackageName("__win"), rattler.Version("10.0.19045"), rattler.BuildString("0")
    ),
]
gateway = rattler.Gateway(
    cache_dir=cache,
    default_config=rattler.SourceConfig(cache_action="cache-or-fetch", sharded_enabled=False),
)
start = time.perf_counter()
records = asyncio.run(
    rattler.solve(
        sources=[rattler.Channel(channel)],
        specs=specs,
        platforms=[rattler.Subdir("win-64"), rattler.Subdir("noarch")],
        virtual_packages=vps,
        gateway=gateway,
    )
)
print(len(records), time.perf_counter() - start)
# py-rattler 0.28's threads crash the interpreter's finalisation in some runs (SIGABRT/SIGSEGV,
# measured here in up to a third of runs under load): skip finalisation, as one would in a tool.
sys.stdout.flush()
import os
os._exit(0)
"""


def update_row(
    url: str, pkgs: list[PlannedPkg], run: Path, timeout: float, log: Callable[[str], None]
) -> Row:
    """One package of about 2 MB gets a new build; the update bundle from the full bundle to the
    new lock should be about that package's size (issue: update bundles). Sizes, not times."""
    from channel_factory import build_package, index_channel

    ep = envpack_argv()
    dummy = run / "micromamba.exe"
    mm = ["--micromamba-exe", str(dummy)]
    env = clean_env(ENVPACK_CACHE_DIR=str(run / "cache"))  # the warm builds' cache
    changed = min((p for p in pkgs if p.subdir != "noarch"), key=lambda p: abs(p.size - 2 * MB))
    # The new build lives in a folder channel listed first (strict priority), so the cached
    # benchmark channel itself is never changed.
    overlay = run / "overlay"
    new = changed.pkg()
    new.build, new.build_number = "h0_1", 1
    package = build_package(new, overlay / changed.subdir)
    (overlay / "noarch").mkdir(parents=True, exist_ok=True)
    index_channel(overlay)
    specs = [p.name for p in pkgs if p.name != changed.name] + [f"{changed.name}=1.0=h0_1"]
    base_recipe = write_recipe(run / "upbase.yaml", url, [p.name for p in pkgs])
    new_recipe = run / "upnew.yaml"
    lines = ["name: upbase", "channels:", f"  - {overlay}", f"  - {url}", "dependencies:"]
    new_recipe.write_text("\n".join(lines + [f"  - {s}" for s in specs]) + "\n", "utf-8")
    log(f"update bundle: {changed.name} ({changed.size / MB:.1f} MB) gets a new build")
    base_out, upd_out = run / "up-base", run / "up-new"
    for argv in (
        [*ep, "build", str(base_recipe), *mm, "-q", "--no-sfx", "-o", str(base_out)],
        [
            *ep,
            "build",
            str(new_recipe),
            *mm,
            "-q",
            "-o",
            str(upd_out),
            "--update-from",
            str(base_out / "upbase-win-64.zip"),
        ],
    ):
        run_timed(argv, env=env, timeout=timeout)
    full = (base_out / "upbase-win-64.zip").stat().st_size
    (update,) = list(upd_out.glob("upbase-win-64-update-*.zip"))
    size, pkg_size = update.stat().st_size, package.stat().st_size
    overhead = size - pkg_size
    rm(base_out)
    rm(upd_out)
    return Row(
        "update",
        "update bundle, one ~2 MB package changed (`build --update-from`)",
        f"{size / MB:.2f} MB",
        f"{full / MB:.0f} MB full bundle",
        f"{size / full:.4f}x",
        "≈ the package (≤ 1.25x its size)",
        verdict(size <= 1.25 * pkg_size),
        f"the changed package is {pkg_size / MB:.2f} MB; the update adds {overhead / 1024:.0f} KB "
        f"(manifest with both package lists, update.bat, SBOM) for {len(pkgs)} packages",
    )


def multi_row(
    cfg: Config, url: str, pkgs: list[PlannedPkg], run: Path, log: Callable[[str], None]
) -> Row:
    """Two environments sharing nearly all their bytes (each lacks half of the 2k smallest
    packages, the other half of which the other lacks): one bundle holding both (`build A B`,
    each package stored once) against two bundles, warm cache."""
    ep = envpack_argv()
    mm = ["--micromamba-exe", str(run / "micromamba.exe")]
    env = clean_env(ENVPACK_CACHE_DIR=str(run / "cache"))  # the warm builds' cache
    by_size = sorted(pkgs, key=lambda p: (p.size, p.name))
    k = max(1, len(pkgs) // 10)
    only_b = {p.name for p in by_size[: 2 * k : 2]}  # A lacks these
    only_a = {p.name for p in by_size[1 : 2 * k : 2]}  # B lacks these
    names = sorted(p.name for p in pkgs)
    a = write_recipe(run / "multia.yaml", url, [n for n in names if n not in only_b])
    b = write_recipe(run / "multib.yaml", url, [n for n in names if n not in only_a])
    union = sum(p.size for p in pkgs)
    shared = sum(p.size for p in pkgs if p.name not in only_a | only_b)
    out = run / "multi-out"
    for recipe in (a, b):  # lock once, outside the timing
        run_timed([*ep, "lock", str(recipe), *mm, "-q"], env=env, timeout=cfg.timeout)

    def one() -> Sample:
        rm(out)
        argv = [*ep, "build", str(a), str(b), *mm, "-q", "--no-sfx", "-o", str(out)]
        return run_timed(argv, env=env, timeout=cfg.timeout)

    def two() -> Sample:
        rm(out)
        start = time.perf_counter()
        for recipe in (a, b):
            argv = [*ep, "build", str(recipe), *mm, "-q", "--no-sfx", "-o", str(out)]
            run_timed(argv, env=env, timeout=cfg.timeout)
        return Sample(time.perf_counter() - start, None)

    log(f"several environments: {len(pkgs) - len(only_a) - len(only_b)} packages shared")
    times = paired(cfg.reps, {"one": one, "two": two}, log, "multi")
    one()
    single = (out / "multia+multib-win-64.zip").stat().st_size
    two()
    both = sum(p.stat().st_size for p in out.glob("multi?-win-64.zip"))
    rm(out)
    return Row(
        "multi",
        "two environments sharing most packages: one bundle (`build A B`) vs two bundles",
        f"{single / MB:.0f} MB, {secs(times['one'])}",
        f"{both / MB:.0f} MB, {secs(times['two'])}",
        f"{single / both:.2f}x size, {pair_ratio(times['one'], times['two']):.2f}x time",
        "each package once: ≤ 1.01x the union's bytes",
        verdict(single <= 1.01 * union),
        f"{shared / union:.0%} of the bytes shared; the union of the {len(pkgs)} packages is "
        f"{union / MB:.0f} MB, the one bundle {single / union:.4f}x that",
    )


def verify_note(verify: Sequence[Sample], plain: Sequence[Sample], total: int) -> str:
    """Hashing shows in CPU time even where two cores hide it from the wall clock."""
    wall = f"{med(verify) - med(plain):+.2f} s wall"
    cpu_v, cpu_p = user_cpu(verify), user_cpu(plain)
    if cpu_v is None or cpu_p is None:
        return f"{wall} over the plain warm build"
    extra = cpu_v - cpu_p
    text = f"{wall}, {extra:+.2f} s user CPU over the plain warm build"
    if extra > cpu_p:
        text += (
            f", whose whole user CPU ({cpu_p:.2f} s) is less than re-hashing adds: the plain "
            "warm build cannot have re-hashed the cache"
        )
    return text


def solve_row(
    cfg: Config,
    run: Path,
    ep: list[str],
    mm: list[str],
    crashes: Deaths,
    log: Callable[[str], None],
) -> Row:
    measure = f"solve `{' '.join(SOLVE_SPECS)}` win-64, conda-forge subset (`envpack lock`)"
    goal = "≤ 1.1x + 0.5 s"
    if not (SHARED_SUBSET / "win-64" / "repodata.json").is_file():
        note = f"skipped: {SHARED_SUBSET} not found (the project's shared test data)"
        return Row("solve", measure, "skipped", "", "", goal, "n/a", note)
    recipe = write_recipe(run / "benchsolve.yaml", str(SHARED_SUBSET), SOLVE_SPECS)
    lock_file = recipe.with_name("benchsolve.lock.yaml")
    ref_script = run / "rattler_solve.py"
    ref_script.write_text(REF_SOLVE, "utf-8")
    counts: dict[str, int] = {}
    inner: list[float] = []

    def envpack_lock() -> Sample:
        rm(lock_file)
        rm(run / "solve-cache-e")
        env = clean_env(ENVPACK_CACHE_DIR=str(run / "solve-cache-e"))
        argv = [*ep, "lock", str(recipe), *mm, "-q"]
        sample = run_retrying(argv, crashes, env=env, timeout=cfg.timeout)
        counts["envpack"] = len(locked_records(lock_file))  # a micromamba file adds no record
        return sample

    def rattler_direct() -> Sample:
        rm(run / "solve-cache-r")
        argv = [sys.executable, str(ref_script), SHARED_SUBSET.as_uri() + "/"]
        argv += [str(run / "solve-cache-r"), *SOLVE_SPECS]
        sample = run_timed(argv, env=clean_env(), timeout=cfg.timeout)
        n, seconds = sample.stdout.split()
        counts["rattler"] = int(n)
        inner.append(float(seconds))
        return sample

    log("solve: envpack lock vs py-rattler in a fresh process")
    got = paired(cfg.reps, {"rattler": rattler_direct, "envpack": envpack_lock}, log, "solve")
    if counts["envpack"] != counts["rattler"]:
        raise BenchError(f"the solves disagree: {counts} packages")
    e, r = med(got["envpack"]), med(got["rattler"])
    return Row(
        "solve",
        measure,
        secs(got["envpack"]),
        f"{secs(got['rattler'])} py-rattler",
        f"{pair_ratio(got['envpack'], got['rattler']):.2f}x",
        goal,
        verdict(e <= 1.1 * r + 0.5),
        f"{counts['rattler']} packages; overhead {e - r:+.2f} s; the solve itself takes "
        f"{statistics.median(inner):.2f} s inside the reference process",
    )


def second_container_cost(both: list[Sample], one: list[Sample]) -> float:
    """What the second container (-setup.bat) costs, as a multiple of writing one: the median
    over back-to-back pairs of (--sfx build - default build) / default build."""
    return statistics.median(
        (b.seconds - o.seconds) / o.seconds for b, o in zip(both, one, strict=True)
    )


def rss_rows(
    small_mb: float | None,
    large_mb: float | None,
    small_total: int,
    total: int,
    small_note: str,
    large_note: str,
) -> list[Row]:
    if large_mb is None or small_mb is None:
        na = "n/a (no /usr/bin/time: apt-get install time)"
        return [
            Row("rss_small", "peak RSS, cold build of the small channel", na, "", "", "", "n/a"),
            Row("rss_large", "peak RSS, cold build of the full channel", na, "", "", "", "n/a"),
        ]
    growth = large_mb / small_mb
    return [
        Row(
            "rss_small",
            f"peak RSS, cold build of {small_total / MB:.0f} MB",
            f"{small_mb:.0f} MB",
            "",
            "",
            "< 200 MB",
            verdict(small_mb < 200),
            small_note,
        ),
        Row(
            "rss_large",
            f"peak RSS, cold build of {total / MB:.0f} MB",
            f"{large_mb:.0f} MB",
            f"{small_mb:.0f} MB at {small_total / MB:.0f} MB",
            f"{growth:.2f}x",
            "< 200 MB, flat (≤ 1.10x)",
            verdict(large_mb < 200 and growth <= 1.10),
            large_note,
        ),
    ]
