"""envpack's benchmarks: each figure is envpack against the best this machine can do, same run.

    python bench/run.py [--quick] [--work DIR] [--reps N]

Prints a table and writes it, with the machine, the date and the command, to bench/RESULTS.md.
Every ratio is the median of ratios of pairs measured back to back (the order alternating), since
these machines are noisy; absolute times are medians too, with the min-max spread.

What is compared (details in bench/README.md):
- cold build (empty cache, --no-sfx) vs curl --parallel --parallel-max 8 fetching the same URLs
  from the same nginx on 127.0.0.1;
- warm build (everything cached) vs zip -0 of the cached package files (and vs cp);
- envpack lock vs py-rattler called directly in a fresh process, on the real conda-forge subset;
- peak RSS (/usr/bin/time -v) of a build at two channel sizes;
- envpack --help vs python -c pass.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from make_channel import MB, SCALES, PlannedPkg, Scale, ensure_channel, small_subset  # noqa: E402
from nginx_server import NginxServer, find_nginx  # noqa: E402

SHARED_SUBSET = ROOT.parent / "shared" / "data" / "conda-forge-py39-subset"
SOLVE_SPECS = ("python=3.9", "pip")
RESULTS = BENCH / "RESULTS.md"
TIME = "/usr/bin/time"

# Every row the table has, in order; the smoke test holds the table to this list.
ROW_KEYS = (
    "cold",
    "cold_floor",
    "cold_fetch",
    "warm",
    "warm_bsdtar",
    "warm_cp",
    "warm_sfx",
    "warm_verify",
    "solve",
    "update",
    "multi",
    "rss_small",
    "rss_large",
    "startup",
)

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


class BenchError(Exception):
    pass


class Crashed(BenchError):
    """The process died of a signal (envpack: py-rattler at interpreter exit, see README)."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


@dataclass(frozen=True)
class Config:
    scale: Scale
    work: Path
    reps: int
    startup_reps: int
    timeout: float


@dataclass(frozen=True)
class Sample:
    seconds: float
    rss_kb: int | None
    stdout: str = ""
    user_cpu: float | None = None  # seconds, from /usr/bin/time: immune to the wall clock's noise


@dataclass
class Row:
    key: str
    measure: str
    envpack: str
    reference: str
    ratio: str
    goal: str
    met: str  # "yes", "NO" or "n/a"
    note: str = ""


@dataclass
class Report:
    rows: list[Row]
    context: dict[str, str] = field(default_factory=dict)
    crashes: list[int] = field(default_factory=list)


# --------------------------------------------------------------------------- running things


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in {"http_proxy", "https_proxy", "all_proxy"}
        and k not in {"SOURCE_DATE_EPOCH", "ENVPACK_CACHE_DIR"}
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


def run_timed(
    argv: Sequence[str],
    *,
    env: dict[str, str],
    timeout: float,
    cwd: Path | None = None,
    stdin: bytes | None = None,
    rss_file: Path | None = None,
) -> Sample:
    """Run ``argv`` to completion and time it; with ``rss_file``, also take its peak RSS."""
    wrapped = list(argv)
    if rss_file is not None and Path(TIME).is_file():
        rss_file.unlink(missing_ok=True)
        wrapped = [TIME, "-v", "-o", str(rss_file), *wrapped]
    # Earlier runs' dirty pages must not be flushed on this run's clock.
    os.sync()
    start = time.perf_counter()
    # A session of its own, so a timeout can end the whole tree (time -> envpack, nginx aside).
    proc = subprocess.Popen(
        wrapped,
        env=env,
        cwd=cwd,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise BenchError(f"{shlex.join(argv[:3])}... took more than {timeout:.0f} s") from None
    elapsed = time.perf_counter() - start
    if proc.returncode < 0:
        what = f"{shlex.join(list(argv)[:3])}... died of signal {-proc.returncode}"
        raise Crashed(what, -proc.returncode)
    if proc.returncode != 0:
        tail = err.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise BenchError(
            f"{shlex.join(list(argv)[:4])}... failed (exit {proc.returncode}): {' | '.join(tail)}"
        )
    rss = user = None
    if rss_file is not None and rss_file.is_file():
        text = rss_file.read_text()
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
        rss = int(m.group(1)) if m else None
        m = re.search(r"User time \(seconds\): ([\d.]+)", text)
        user = float(m.group(1)) if m else None
    return Sample(elapsed, rss, out.decode("utf-8", "replace"), user)


@dataclass
class Deaths:
    """envpack runs, and those that died of a signal (each was run again, and is reported)."""

    runs: int = 0
    signals: list[int] = field(default_factory=list)


def run_retrying(argv: Sequence[str], deaths: Deaths, **kw: Any) -> Sample:
    for _ in range(4):
        deaths.runs += 1
        try:
            return run_timed(argv, **kw)
        except Crashed as exc:
            deaths.signals.append(exc.signum)
    deaths.runs += 1
    return run_timed(argv, **kw)


def envpack_argv() -> list[str]:
    """The console script beside this interpreter (not a pyenv shim), else ``-m envpack.cli``."""
    script = Path(sys.executable).with_name("envpack")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "envpack.cli"]


def paired(
    reps: int,
    variants: dict[str, Callable[[], Sample]],
    log: Callable[[str], None],
    label: str,
) -> dict[str, list[Sample]]:
    """Run every variant once per repetition, rotating the order so drift hits all alike."""
    names = list(variants)
    out: dict[str, list[Sample]] = {n: [] for n in names}
    for i in range(reps):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            out[name].append(variants[name]())
        summary = ", ".join(f"{n} {out[n][-1].seconds:.2f} s" for n in names)
        log(f"  {label} {i + 1}/{reps}: {summary}")
    return out


def rm(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- statistics


def med(samples: Sequence[Sample]) -> float:
    return statistics.median(s.seconds for s in samples)


def pair_ratio(a: Sequence[Sample], b: Sequence[Sample]) -> float:
    return statistics.median(x.seconds / y.seconds for x, y in zip(a, b, strict=True))


def secs(samples: Sequence[Sample]) -> str:
    values = [s.seconds for s in samples]
    text = f"{statistics.median(values):.2f} s"
    if len(values) > 1:
        text += f" ({min(values):.2f}–{max(values):.2f})"
    return text


def user_cpu(samples: Sequence[Sample]) -> float | None:
    values = [s.user_cpu for s in samples if s.user_cpu is not None]
    return statistics.median(values) if values else None


def rss_mb(samples: Sequence[Sample]) -> float | None:
    values = [s.rss_kb for s in samples if s.rss_kb is not None]
    return statistics.median(values) / 1024 if values else None


def verdict(ok: bool) -> str:
    return "yes" if ok else "NO"


# --------------------------------------------------------------------------- the benchmark


def write_recipe(path: Path, channel: str, specs: Sequence[str]) -> Path:
    lines = [f"name: {path.stem}", "channels:", f"  - {channel}", "dependencies:"]
    lines += [f"  - {s}" for s in specs]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def locked_records(lock_file: Path) -> list[tuple[str, str, int]]:
    """(url, fn, size) of every package the build will fetch."""
    from envpack.lock.lockfile import read_lock

    pl = read_lock(lock_file).for_platform("win-64")
    return sorted({(r.url, r.fn, r.size) for r in pl.all_records()})


def dir_bytes(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def run_bench(cfg: Config, log: Callable[[str], None]) -> Report:
    for tool in ("curl", "zip"):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} not found; install it with: apt-get install {tool}")
    if find_nginx() is None:
        raise BenchError("nginx not found; install it with: apt-get install nginx-light")
    cfg.work.mkdir(parents=True, exist_ok=True)
    channel, pkgs = ensure_channel(cfg.work, cfg.scale, log)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=cfg.work))
    try:
        with NginxServer(channel, run_dir / "nginx") as srv:
            log(f"nginx serving {channel.name} at {srv.url}")
            report = _measure(cfg, srv.url, pkgs, run_dir, log)
            report.rows.append(_update_row(srv.url, pkgs, run_dir, cfg.timeout, log))
            report.rows.append(_multi_row(cfg, srv.url, pkgs, run_dir, log))
            report.rows.sort(key=lambda r: ROW_KEYS.index(r.key))
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    total = sum(p.size for p in pkgs)
    small = small_subset(pkgs, cfg.scale.small_fraction)
    sizes = sorted(p.size for p in pkgs)
    report.context.update(
        scale=(
            f"{cfg.scale.name}: {len(pkgs)} generated .conda packages, {total / MB:.0f} MB "
            f"({sum(p.subdir == 'noarch' for p in pkgs)} noarch; largest {sizes[-1] / MB:.0f} MB, "
            f"median {statistics.median(sizes) / MB:.1f} MB, "
            f"{sum(s < MB for s in sizes)} under 1 MB); the small build takes the "
            f"{len(small)} smallest ({sum(p.size for p in small) / MB:.0f} MB)"
        ),
        reps=f"{cfg.reps} per row ({cfg.startup_reps} for start-up)",
    )
    return report


def _measure(
    cfg: Config, url: str, pkgs: list[PlannedPkg], run: Path, log: Callable[[str], None]
) -> Report:
    ep = envpack_argv()
    dummy = run / "micromamba.exe"
    dummy.write_bytes(b"MZ envpack bench stand-in; the generated channel has no micromamba\n")
    mm = ["--micromamba-exe", str(dummy)]
    full = write_recipe(run / "benchfull.yaml", url, [p.name for p in pkgs])
    small_pkgs = small_subset(pkgs, cfg.scale.small_fraction)
    small = write_recipe(run / "benchsmall.yaml", url, [p.name for p in small_pkgs])
    t = cfg.timeout
    crashes = Deaths()
    lock_env = clean_env(ENVPACK_CACHE_DIR=str(run / "lock-cache"))
    for recipe in (full, small):
        run_retrying([*ep, "lock", str(recipe), *mm, "-q"], crashes, env=lock_env, timeout=t)
    records = locked_records(full.with_name("benchfull.lock.yaml"))
    want = {p.fn for p in pkgs}
    if {fn for _, fn, _ in records} != want:
        raise BenchError("the lock of the full recipe does not hold exactly the generated packages")
    total = sum(size for _, _, size in records)
    rss = run / "rss.txt"
    cache = run / "cache"
    env = clean_env(ENVPACK_CACHE_DIR=str(cache))

    def build(
        recipe: Path, out: Path, *flags: str, e: dict[str, str] = env, size: int = total
    ) -> Sample:
        rm(out)
        argv = [*ep, "build", str(recipe), "--locked", *mm, "-q", "-o", str(out), *flags]
        sample = run_retrying(argv, crashes, env=e, timeout=t, rss_file=rss)
        bundle = out / f"{recipe.stem}-win-64.zip"
        if not bundle.is_file() or bundle.stat().st_size < size:
            raise BenchError(f"envpack build wrote no plausible {bundle.name}")
        rm(out)
        return sample

    rows: list[Row] = []

    # ---- cold build vs curl --parallel
    curl_cfg = run / "curl.cfg"
    dl = run / "curl-out"
    curl_cfg.write_text(
        "".join(f'url = "{u}"\noutput = "{dl / fn}"\n' for u, fn, _ in records), "utf-8"
    )

    curl_argv = ["curl", "--parallel", "--parallel-max", "8", "--fail", "--silent"]
    curl_argv += ["--show-error", "--noproxy", "*", "--config", str(curl_cfg)]
    joined = run / "curl-out.bin"  # "$0.bin" below

    def curl(then_join: bool = False) -> Sample:
        rm(dl)
        rm(joined)
        dl.mkdir()
        argv = curl_argv
        if then_join:
            # The floor of any cold build that keeps a cache: download, then write the same
            # bytes again into one file (what the bundle is, minus the zip headers and CRCs).
            argv = ["sh", "-c", 'set -e; "$@"; cat "$0"/* > "$0.bin"', str(dl), *curl_argv]
        sample = run_timed(argv, env=clean_env(), timeout=t)
        if dir_bytes(dl) != (len(records), total):
            raise BenchError("curl did not download every package in full")
        if then_join and joined.stat().st_size != total:
            raise BenchError("cat did not join every download")
        rm(dl)
        rm(joined)
        return sample

    def cold() -> Sample:
        rm(cache)
        return build(full, run / "out-cold", "--no-sfx")

    log(f"cold build vs curl --parallel: {len(records)} packages, {total / MB:.0f} MB")
    got = paired(
        cfg.reps, {"curl": curl, "envpack": cold, "floor": lambda: curl(True)}, log, "cold"
    )
    ratio = pair_ratio(got["envpack"], got["curl"])
    rows.append(
        Row(
            "cold",
            "cold build, empty cache (`build --no-sfx`)",
            secs(got["envpack"]),
            f"{secs(got['curl'])} curl --parallel-max 8",
            f"{ratio:.2f}x",
            "≤ 1.15x",
            verdict(ratio <= 1.15),
            f"downloads {total / MB:.0f} MB at {total / MB / med(got['envpack']):.0f} MB/s "
            f"and writes the bundle; curl only downloads "
            f"({total / MB / med(got['curl']):.0f} MB/s)",
        )
    )
    floor = pair_ratio(got["envpack"], got["floor"])
    rows.append(
        Row(
            "cold_floor",
            "cold build vs curl, then `cat` of the downloads into one file",
            secs(got["envpack"]),
            f"{secs(got['floor'])} curl + cat",
            f"{floor:.2f}x",
            "—",
            "n/a",
            "the least any cold build that keeps a cache can do: write the bytes twice",
        )
    )
    cold_rss = got["envpack"]

    # ---- warm build vs zip -0 / cp of the cached package files (the last cold run filled it)
    cached = sorted(
        p.relative_to(cache) for p in (cache / "pkgs").rglob("*") if p.suffix == ".conda"
    )
    if len(cached) != len(records):
        raise BenchError(f"the cache holds {len(cached)} packages, not {len(records)}")
    zip_out = run / "ref.zip"
    cp_out = run / "ref-cp"

    def zip0() -> Sample:
        rm(zip_out)
        names = "".join(f"{p}\n" for p in cached).encode()
        argv = ["zip", "-0", "-q", "-X", str(zip_out), "-@"]
        sample = run_timed(argv, env=clean_env(), timeout=t, cwd=cache, stdin=names)
        rm(zip_out)
        return sample

    def cp() -> Sample:
        rm(cp_out)
        cp_out.mkdir()
        # a real copy even where the file system could clone (cp 9's default is reflink=auto)
        argv = ["cp", "--reflink=never", "-t", str(cp_out), *(str(cache / p) for p in cached)]
        sample = run_timed(argv, env=clean_env(), timeout=t)
        rm(cp_out)
        return sample

    def bsdtar() -> Sample:
        # libarchive's zip writer, storing: a faster zip tool than Info-ZIP's (measured here)
        rm(zip_out)
        names = "".join(f"{p}\n" for p in cached).encode()
        argv = ["bsdtar", "-cf", str(zip_out), "--format", "zip"]
        argv += ["--options", "zip:compression=store", "-T", "-"]
        sample = run_timed(argv, env=clean_env(), timeout=t, cwd=cache, stdin=names)
        rm(zip_out)
        return sample

    variants: dict[str, Callable[[], Sample]] = {
        "zip": zip0,
        "envpack": lambda: build(full, run / "out-warm", "--no-sfx"),
        "sfx": lambda: build(full, run / "out-sfx"),
        "verify": lambda: build(full, run / "out-verify", "--no-sfx", "--verify-cache"),
        "cp": cp,
    }
    if shutil.which("bsdtar"):
        variants["bsdtar"] = bsdtar
    log(f"warm build vs {', '.join(n for n in variants if n not in {'envpack', 'sfx', 'verify'})}")
    warm = paired(cfg.reps, variants, log, "warm")

    def rate(name: str) -> str:
        return f"{name} {total / MB / med(warm[name]):.0f} MB/s"

    def vs(name: str, ref: str) -> str:
        return f"{pair_ratio(warm[name], warm[ref]):.2f}x"

    r_warm = pair_ratio(warm["envpack"], warm["zip"])
    zip_ref = f"{secs(warm['zip'])} zip -0"
    fetch = med(got["envpack"]) - med(warm["envpack"])
    rows += [
        Row(
            "cold_fetch",
            "cold build's fetch phase (cold − warm medians)",
            f"{fetch:.2f} s",
            f"{secs(got['curl'])} curl",
            f"{fetch / med(got['curl']):.2f}x",
            "—",
            "n/a",
            "what downloading and verifying alone costs, without the bundle write",
        ),
        Row(
            "warm",
            "warm build, all cached (`build --no-sfx`)",
            secs(warm["envpack"]),
            zip_ref,
            f"{r_warm:.2f}x",
            "≤ 1.3x",
            verdict(r_warm <= 1.3),
            f"{rate('envpack')} into the bundle, {rate('zip')}; the whole run, start-up included",
        ),
        Row(
            "warm_bsdtar",
            "warm build (`--no-sfx`) vs bsdtar's zip writer",
            secs(warm["envpack"]),
            f"{secs(warm['bsdtar'])} bsdtar" if "bsdtar" in warm else "n/a (no bsdtar)",
            vs("envpack", "bsdtar") if "bsdtar" in warm else "",
            "—",
            "n/a",
            (
                f"`bsdtar --format zip --options zip:compression=store`: {rate('bsdtar')}"
                if "bsdtar" in warm
                else "apt-get install libarchive-tools"
            ),
        ),
        Row(
            "warm_cp",
            "warm build (`--no-sfx`) vs plain `cp`",
            secs(warm["envpack"]),
            f"{secs(warm['cp'])} cp",
            vs("envpack", "cp"),
            "—",
            "n/a",
            f"the floor: the same bytes copied, no zip, no CRC ({rate('cp')})",
        ),
        Row(
            "warm_sfx",
            "warm build, default (`.zip` + `-setup.bat`)",
            secs(warm["sfx"]),
            zip_ref,
            vs("sfx", "zip"),
            "— (writes the bundle twice)",
            "n/a",
            f"{med(warm['sfx']) / med(warm['envpack']):.2f}x the `--no-sfx` build",
        ),
        Row(
            "warm_verify",
            "warm build, `--no-sfx --verify-cache`",
            secs(warm["verify"]),
            zip_ref,
            vs("verify", "zip"),
            "— (re-hashes on request)",
            "n/a",
            verify_note(warm["verify"], warm["envpack"], total),
        ),
    ]

    # ---- solve: envpack lock vs py-rattler in a fresh process
    rows.append(_solve_row(cfg, run, ep, mm, crashes, log))

    # ---- peak memory at two channel sizes
    small_total = sum(p.size for p in small_pkgs)
    small_cache = run / "cache-small"
    small_env = clean_env(ENVPACK_CACHE_DIR=str(small_cache))

    def cold_small() -> Sample:
        rm(small_cache)
        return build(small, run / "out-small", "--no-sfx", e=small_env, size=small_total)

    log(f"peak memory: cold build of {small_total / MB:.0f} MB")
    small_rss = paired(cfg.reps, {"small": cold_small}, log, "small")["small"]
    all_large = cold_rss + warm["envpack"] + warm["sfx"] + warm["verify"]
    large_mb, small_mb = rss_mb(cold_rss), rss_mb(small_rss)
    peak_large = max((s.rss_kb or 0 for s in all_large), default=0) / 1024
    if large_mb is None or small_mb is None:
        na = "n/a (no /usr/bin/time: apt-get install time)"
        rows.append(Row("rss_small", "peak RSS, build of the small channel", na, "", "", "", "n/a"))
        rows.append(Row("rss_large", "peak RSS, build of the full channel", na, "", "", "", "n/a"))
    else:
        growth = large_mb / small_mb
        rows += [
            Row(
                "rss_small",
                f"peak RSS, cold build of {small_total / MB:.0f} MB",
                f"{small_mb:.0f} MB",
                "",
                "",
                "< 200 MB",
                verdict(small_mb < 200),
                f"{len(small_pkgs)} packages",
            ),
            Row(
                "rss_large",
                f"peak RSS, cold build of {total / MB:.0f} MB",
                f"{large_mb:.0f} MB",
                f"{small_mb:.0f} MB at {small_total / MB:.0f} MB",
                f"{growth:.2f}x",
                "< 200 MB, flat (≤ 1.10x)",
                verdict(large_mb < 200 and growth <= 1.10),
                f"largest package {max(s for _, _, s in records) / MB:.0f} MB; highest of every "
                f"build of this channel above (warm, sfx, verify): {peak_large:.0f} MB",
            ),
        ]

    # ---- CLI start-up
    log("start-up: envpack --help vs python -c pass")
    start = paired(
        cfg.startup_reps,
        {
            "python": lambda: run_timed(
                [sys.executable, "-c", "pass"], env=clean_env(), timeout=60
            ),
            "envpack": lambda: run_retrying([*ep, "--help"], crashes, env=clean_env(), timeout=60),
        },
        log,
        "start-up",
    )
    rows.append(
        Row(
            "startup",
            "CLI start-up (`envpack --help`)",
            secs(start["envpack"]),
            f"{secs(start['python'])} python -c pass",
            f"{pair_ratio(start['envpack'], start['python']):.2f}x",
            "< 0.3 s",
            verdict(med(start["envpack"]) < 0.3),
            f"{med(start['envpack']) - med(start['python']):+.3f} s over a bare interpreter",
        )
    )
    died = len(crashes.signals)
    deaths = f"{died} of {crashes.runs} envpack runs died of a signal and were run again"
    rows.sort(key=lambda r: ROW_KEYS.index(r.key))
    return Report(rows, {"deaths": deaths}, crashes.signals)


def _update_row(
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


def _multi_row(
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


def _solve_row(
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


# --------------------------------------------------------------------------- reporting


def _first_line(argv: list[str], pattern: str) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return "absent"
    m = re.search(pattern, proc.stdout + proc.stderr)
    return m.group(1) if m else "unknown"


def machine() -> dict[str, str]:
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    with open("/proc/meminfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
                break
    import envpack

    git = _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], r"(\w+)")
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "builder"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": ram,
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "envpack": f"{envpack.__version__} (git {git}{', builder/ modified' if dirty else ''})",
        "tools": ", ".join(
            [
                "nginx " + _first_line([find_nginx() or "nginx", "-v"], r"nginx/(\S+)"),
                "curl " + _first_line(["curl", "--version"], r"curl (\S+)"),
                "zip " + _first_line(["zip", "-v"], r"This is Zip (\S+)"),
            ]
        ),
    }


def signal_names(signums: Sequence[int]) -> str:
    if not signums:
        return ""
    counts = Counter(signal.Signals(n).name for n in signums)
    return " (" + ", ".join(f"{name} x{n}" for name, n in sorted(counts.items())) + ")"


def table(rows: Sequence[Row]) -> str:
    head = ["measure", "envpack", "reference", "ratio", "goal", "met"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.measure, r.envpack, r.reference, r.ratio, r.goal, r.met]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def markdown(report: Report, command: str, when: datetime.datetime) -> str:
    c = report.context
    notes = "\n".join(f"- {r.measure}: {r.note}" for r in report.rows if r.note)
    return f"""# envpack benchmark results

Written by `bench/run.py`; see bench/README.md for what each row compares and how.

- Command: `{command}`
- Date: {when.strftime("%Y-%m-%d %H:%M UTC")}
- Machine: {c["cpu"]}, {c["cores"]} cores, {c["ram"]} RAM, {c["kernel"]}, {c["python"]}
- Tools: {c["tools"]}
- envpack: {c["envpack"]}
- Channel: {c["scale"]}, served by nginx on 127.0.0.1
- Repetitions: {c["reps"]}; times are medians (min–max), ratios the median of back-to-back pairs
- Crashes: {c["deaths"]}{signal_names(report.crashes)}

{table(report.rows)}

Notes:

{notes}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="A 160 MB channel, 3 repetitions.")
    parser.add_argument("--scale", choices=sorted(SCALES), help=argparse.SUPPRESS)
    parser.add_argument(
        "--work",
        type=Path,
        default=Path(tempfile.gettempdir()) / "envpack-bench",
        help="Folder for the generated channels (kept and reused) and each run's files.",
    )
    parser.add_argument("--reps", type=int, help="Repetitions per row (default 5, --quick 3).")
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="Where to write the markdown table (default bench/RESULTS.md).",
    )
    parser.add_argument("--no-results", action="store_true", help="Only print the table.")
    args = parser.parse_args(argv)
    scale = SCALES[args.scale or ("quick" if args.quick else "full")]
    reps = args.reps or (5 if scale.name == "full" else 3)
    cfg = Config(
        scale=scale,
        work=args.work.resolve(),
        reps=max(1, reps),
        startup_reps=max(1, reps * 2),
        timeout=1800.0 if scale.name == "full" else 600.0,
    )

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    when = datetime.datetime.now(datetime.timezone.utc)
    facts = machine()  # before the run: the commit measured is the one checked out at the start
    try:
        report = run_bench(cfg, log)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    report.context.update(facts)
    print(table(report.rows))
    if not args.no_results:
        command = shlex.join(
            ["python", "bench/run.py", *(argv if argv is not None else sys.argv[1:])]
        )
        text = markdown(report, command, when)
        tmp = args.results.with_name(args.results.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(args.results)
        log(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
