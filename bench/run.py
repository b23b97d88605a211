"""envpack's benchmarks: each figure is envpack against the best this machine can do, same run.

    python bench/run.py [--quick] [--work DIR] [--reps N]
    python bench/run.py --scale10g [--work DIR] [--keep]     # 10 GB, run on its own

Prints a table and writes it, with the machine, the date and the command, to bench/RESULTS.md
(the scale mode: bench/RESULTS-scale.md). Every ratio is the median of ratios of pairs measured
back to back (the order rotating), since these machines are noisy; absolute times are medians
too, with the min-max spread.

What is compared (details in bench/README.md):
- the fetch phase (envpack's Fetcher alone, bench/fetch_only.py) vs curl --parallel-max 8 of the
  same URLs from the same nginx on 127.0.0.1;
- cold build (empty cache) vs curl then cat of the downloads into one file (the floor);
- both against their CPU floor (bench_cpu.py): curl's CPU, nginx's and the hashes' the fetch must
  compute, spread over the cores;
- warm build (everything cached, one container) vs cp of the cached package files (and zip -0,
  bsdtar); --sfx (zip and -setup.bat) against the one-container build;
- the same warm build on a loop-mounted XFS with reflinks (bench_reflink.py; root only) vs
  cp --reflink=always, and the disk space the bundle took;
- envpack lock vs py-rattler called directly in a fresh process, on the real conda-forge subset;
- peak RSS (/usr/bin/time -v) of a build at two channel sizes; envpack --help vs python -c pass;
- --scale10g (bench_scale.py): build, verify and inspect of a 10 GB channel with a 4.5 GiB package.
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from bench_common import (  # noqa: E402
    BenchError,
    Config,
    Deaths,
    Report,
    Row,
    Sample,
    clean_env,
    compile_envpack,
    dir_bytes,
    envpack_argv,
    locked_records,
    med,
    pair_ratio,
    paired,
    rm,
    rss_mb,
    run_retrying,
    run_timed,
    secs,
    verdict,
    write_recipe,
)
from bench_cpu import HashCpu, cores, cpu_note, floor_rows, hash_cpu  # noqa: E402
from bench_reflink import reflink_row  # noqa: E402
from bench_report import machine, markdown, table  # noqa: E402
from bench_rows import (  # noqa: E402
    multi_row,
    rss_rows,
    second_container_cost,
    solve_row,
    update_row,
    verify_note,
)
from make_channel import MB, SCALES, PlannedPkg, ensure_channel, small_subset  # noqa: E402
from nginx_server import NginxServer, find_nginx  # noqa: E402

RESULTS = BENCH / "RESULTS.md"
SCALE_RESULTS = BENCH / "RESULTS-scale.md"

# Every row the table has, in order; the smoke test holds the table to this list.
ROW_KEYS = (
    "fetch",
    "fetch_floor",
    "cold",
    "cold_floor",
    "cold_curl",
    "warm",
    "warm_zip",
    "warm_bsdtar",
    "sfx",
    "warm_verify",
    "warm_reflink",
    "solve",
    "update",
    "multi",
    "rss_small",
    "rss_large",
    "startup",
)

# Goals of issue 18 (round 2) and of round 1 where they still hold.
FETCH_GOAL = 1.3  # fetch phase / curl
COLD_GOAL = 1.1  # cold build / (curl + cat)
WARM_GOAL = 1.5  # warm one-container build / cp
SFX_GOAL = 1.3  # (sfx build - one-container build) / one-container build
ZIP_GOAL = 1.3  # warm build / zip -0 (round 1)


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
            report = _measure(cfg, srv, pkgs, run_dir, log)
            report.rows.append(update_row(srv.url, pkgs, run_dir, cfg.timeout, log))
            report.rows.append(multi_row(cfg, srv.url, pkgs, run_dir, log))
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
    cfg: Config, srv: NginxServer, pkgs: list[PlannedPkg], run: Path, log: Callable[[str], None]
) -> Report:
    url = srv.url
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
    full_lock = full.with_name("benchfull.lock.yaml")
    records = locked_records(full_lock)
    want = {p.fn for p in pkgs}
    if {fn for _, fn, _ in records} != want:
        raise BenchError("the lock of the full recipe does not hold exactly the generated packages")
    total = sum(size for _, _, size in records)
    rss = run / "rss.txt"
    cache = run / "cache"
    env = clean_env(ENVPACK_CACHE_DIR=str(cache))
    written: dict[str, list[str]] = {}  # what each kind of build left in its output folder

    def build(
        recipe: Path,
        out: Path,
        *flags: str,
        e: dict[str, str] = env,
        size: int = total,
        kind: str = "",
    ) -> Sample:
        rm(out)
        argv = [*ep, "build", str(recipe), "--locked", *mm, "-q", "-o", str(out), *flags]
        sample = run_retrying(
            argv, crashes, env=e, timeout=t, rss_file=rss, server_cpu=srv.cpu_seconds
        )
        bundle = out / f"{recipe.stem}-win-64.zip"
        if not bundle.is_file() or bundle.stat().st_size < size:
            raise BenchError(f"envpack build wrote no plausible {bundle.name}")
        if kind:
            written[kind] = sorted(p.name for p in out.iterdir())
        rm(out)
        return sample

    rows: list[Row] = []

    # ---- fetch phase and cold build vs curl --parallel (and curl + cat)
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
        sample = run_timed(argv, env=clean_env(), timeout=t, server_cpu=srv.cpu_seconds)
        if dir_bytes(dl) != (len(records), total):
            raise BenchError("curl did not download every package in full")
        if then_join and joined.stat().st_size != total:
            raise BenchError("cat did not join every download")
        rm(dl)
        rm(joined)
        return sample

    fetch_cache = run / "fetch-cache"

    def fetch_only() -> Sample:
        rm(fetch_cache)
        argv = [sys.executable, str(BENCH / "fetch_only.py"), str(full_lock), str(fetch_cache)]
        sample = run_retrying(argv, crashes, env=clean_env(), timeout=t, server_cpu=srv.cpu_seconds)
        if sample.stdout.split() != [str(len(records)), str(total)]:
            raise BenchError(f"fetch_only.py fetched {sample.stdout.strip()!r}, not every package")
        rm(fetch_cache)
        return sample

    def cold() -> Sample:
        rm(cache)
        return build(full, run / "out-cold", kind="cold")

    log(f"fetch and cold build vs curl --parallel: {len(records)} packages, {total / MB:.0f} MB")
    got = paired(
        cfg.reps,
        {"curl": curl, "fetch": fetch_only, "envpack": cold, "floor": lambda: curl(True)},
        log,
        "cold",
    )
    cold_rss = got["envpack"]

    # ---- warm builds vs cp / zip -0 / bsdtar of the cached package files (the last cold run
    # filled the cache)
    cached = sorted(
        p.relative_to(cache) for p in (cache / "pkgs").rglob("*") if p.suffix == ".conda"
    )
    if len(cached) != len(records):
        raise BenchError(f"the cache holds {len(cached)} packages, not {len(records)}")
    # What the fetch's checks cost in CPU, over the same bytes, outside any timed run.
    hashes = hash_cpu(cache / p for p in cached)
    log(f"  {hashes.text()}")
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

    def sfx() -> Sample:
        sample = build(full, run / "out-sfx", "--sfx", kind="sfx")
        if "benchfull-win-64-setup.bat" not in written["sfx"]:
            raise BenchError(f"build --sfx wrote no -setup.bat: {written['sfx']}")
        return sample

    variants: dict[str, Callable[[], Sample]] = {
        "cp": cp,
        "envpack": lambda: build(full, run / "out-warm", kind="warm"),
        "sfx": sfx,
        "zip": zip0,
        "verify": lambda: build(full, run / "out-verify", "--verify-cache"),
    }
    if shutil.which("bsdtar"):
        variants["bsdtar"] = bsdtar
    refs = ", ".join(n for n in variants if n not in {"envpack", "sfx", "verify"})
    log(f"warm build (one container, --sfx, --verify-cache) vs {refs}")
    warm = paired(cfg.reps, variants, log, "warm")
    n_cores = cores()
    rows += _build_rows(got, warm, written, total, hashes, n_cores)
    rows += floor_rows(got, hashes, n_cores)

    # ---- the same warm build on XFS with reflinks (optional: root, xfsprogs, loop devices)
    rows.append(
        reflink_row(
            run=run,
            build_argv=[*ep, "build", str(full), "--locked", *mm, "-q"],
            bundle_name="benchfull-win-64.zip",
            cache=cache,
            cached=cached,
            total=total,
            reps=cfg.reps,
            timeout=t,
            crashes=crashes,
            log=log,
        )
    )

    # ---- solve: envpack lock vs py-rattler in a fresh process
    rows.append(solve_row(cfg, run, ep, mm, crashes, log))

    # ---- peak memory at two channel sizes
    small_total = sum(p.size for p in small_pkgs)
    small_cache = run / "cache-small"
    small_env = clean_env(ENVPACK_CACHE_DIR=str(small_cache))

    def cold_small() -> Sample:
        rm(small_cache)
        return build(small, run / "out-small", e=small_env, size=small_total)

    log(f"peak memory: cold build of {small_total / MB:.0f} MB")
    small_rss = paired(cfg.reps, {"small": cold_small}, log, "small")["small"]
    all_large = cold_rss + warm["envpack"] + warm["sfx"] + warm["verify"]
    peak_large = max((s.rss_kb or 0 for s in all_large), default=0) / 1024
    rows += rss_rows(
        rss_mb(small_rss),
        rss_mb(cold_rss),
        small_total,
        total,
        f"{len(small_pkgs)} packages",
        f"largest package {max(s for _, _, s in records) / MB:.0f} MB; highest of every "
        f"build of this channel above (warm, --sfx, --verify-cache): {peak_large:.0f} MB",
    )

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


def _build_rows(
    got: dict[str, list[Sample]],
    warm: dict[str, list[Sample]],
    written: dict[str, list[str]],
    total: int,
    hashes: HashCpu,
    n_cores: int,
) -> list[Row]:
    def rate(samples: list[Sample], name: str) -> str:
        return f"{name} {total / MB / med(samples):.0f} MB/s"

    def vs(name: str, ref: str) -> str:
        return f"{pair_ratio(warm[name], warm[ref]):.2f}x"

    r_fetch = pair_ratio(got["fetch"], got["curl"])
    r_cold = pair_ratio(got["envpack"], got["floor"])
    r_curl = pair_ratio(got["envpack"], got["curl"])
    r_warm = pair_ratio(warm["envpack"], warm["cp"])
    r_zip = pair_ratio(warm["envpack"], warm["zip"])
    r_sfx = second_container_cost(warm["sfx"], warm["envpack"])
    one = written.get("warm", [])
    # The zip alone: anything else (a -setup.bat) means the default still writes two containers.
    one_container = one == ["benchfull-win-64.zip"]
    default_wrote = ", ".join(one) or "nothing"
    curl_ref = f"{secs(got['curl'])} curl --parallel-max 8"
    has_bsdtar = "bsdtar" in warm
    return [
        Row(
            "fetch",
            "fetch phase alone (envpack's Fetcher, empty cache, `bench/fetch_only.py`)",
            secs(got["fetch"]),
            curl_ref,
            f"{r_fetch:.2f}x",
            f"≤ {FETCH_GOAL}x",
            verdict(r_fetch <= FETCH_GOAL),
            f"{rate(got['fetch'], 'envpack')} downloaded, sha256+md5+size checked, into the cache "
            f"({rate(got['curl'], 'curl')}); for comparison, cold − warm build medians: "
            f"{med(got['envpack']) - med(warm['envpack']):.2f} s; "
            + cpu_note(got["fetch"], got["curl"], "curl", hashes, n_cores),
        ),
        Row(
            "cold",
            "cold build, empty cache (`build`, one container) vs curl, then `cat` into one file",
            secs(got["envpack"]),
            f"{secs(got['floor'])} curl + cat",
            f"{r_cold:.2f}x",
            f"≤ {COLD_GOAL}x",
            verdict(r_cold <= COLD_GOAL),
            "the least any cold build that keeps a cache can do: write the bytes twice; envpack "
            f"{total / MB / med(got['envpack']):.0f} MB/s; "
            + cpu_note(got["envpack"], got["floor"], "curl + cat", hashes, n_cores),
        ),
        Row(
            "cold_curl",
            "cold build (`build`) vs curl alone",
            secs(got["envpack"]),
            curl_ref,
            f"{r_curl:.2f}x",
            "— (curl writes each byte once)",
            "n/a",
            "round 1's reference; a build that keeps a cache writes every byte twice",
        ),
        Row(
            "warm",
            "warm build, all cached (`build`: one container) vs plain `cp`",
            secs(warm["envpack"]),
            f"{secs(warm['cp'])} cp",
            f"{r_warm:.2f}x",
            f"≤ {WARM_GOAL}x, one container",
            verdict(r_warm <= WARM_GOAL and one_container),
            f"`cp --reflink=never` of the cached package files: the same bytes, no zip, no CRC "
            f"({rate(warm['cp'], 'cp')}, {rate(warm['envpack'], 'envpack')}); the default build "
            f"wrote: {default_wrote}",
        ),
        Row(
            "warm_zip",
            "warm build (`build`) vs Info-ZIP `zip -0`",
            secs(warm["envpack"]),
            f"{secs(warm['zip'])} zip -0",
            f"{r_zip:.2f}x",
            f"≤ {ZIP_GOAL}x (round 1)",
            verdict(r_zip <= ZIP_GOAL),
            f"{rate(warm['zip'], 'zip')}",
        ),
        Row(
            "warm_bsdtar",
            "warm build (`build`) vs bsdtar's zip writer",
            secs(warm["envpack"]),
            f"{secs(warm['bsdtar'])} bsdtar" if has_bsdtar else "n/a (no bsdtar)",
            vs("envpack", "bsdtar") if has_bsdtar else "",
            "—",
            "n/a",
            (
                "`bsdtar --format zip --options zip:compression=store`: "
                + rate(warm["bsdtar"], "bsdtar")
                if has_bsdtar
                else "apt-get install libarchive-tools"
            ),
        ),
        Row(
            "sfx",
            "second container: `build --sfx` (`.zip` + `-setup.bat`) vs `build` (`.zip`)",
            secs(warm["sfx"]),
            f"{secs(warm['envpack'])} one container",
            f"{r_sfx:.2f}x",
            f"≤ {SFX_GOAL}x (the second costs ≤ {SFX_GOAL}x of writing one)",
            verdict(r_sfx <= SFX_GOAL),
            f"ratio = (both − one) / one, pair by pair (both/one {vs('sfx', 'envpack')}); "
            f"--sfx wrote: {', '.join(written.get('sfx', [])) or 'nothing'}",
        ),
        Row(
            "warm_verify",
            "warm build, `--verify-cache`",
            secs(warm["verify"]),
            f"{secs(warm['envpack'])} plain warm build",
            vs("verify", "envpack"),
            "— (re-hashes on request)",
            "n/a",
            verify_note(warm["verify"], warm["envpack"], total),
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="A 160 MB channel, 3 repetitions.")
    parser.add_argument(
        "--scale10g",
        action="store_true",
        help="The scale mode instead: a 10 GB channel with a 4.5 GiB package (needs ~35 GB of "
        "free disk in --work; about 15 minutes); writes bench/RESULTS-scale.md.",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="--scale10g: keep the generated 10 GB channel in --work for the next run.",
    )
    parser.add_argument("--scale", choices=sorted(SCALES), help=argparse.SUPPRESS)
    parser.add_argument(
        "--work",
        type=Path,
        default=Path(tempfile.gettempdir()) / "envpack-bench",
        help="Folder for the generated channels (kept and reused) and each run's files.",
    )
    parser.add_argument(
        "--reps", type=int, help="Repetitions per row (default 5, --quick 3, --scale10g 1)."
    )
    parser.add_argument(
        "--results",
        type=Path,
        help="Where to write the markdown table (default bench/RESULTS.md, or RESULTS-scale.md).",
    )
    parser.add_argument("--no-results", action="store_true", help="Only print the table.")
    args = parser.parse_args(argv)
    if args.scale10g:
        name = args.scale or "scale10g"
        default_reps = 1
    else:
        name = args.scale or ("quick" if args.quick else "full")
        default_reps = 5 if name == "full" else 3
    scale = SCALES[name]
    if scale.streamed != args.scale10g:
        parser.error(f"--scale {name} is {'' if scale.streamed else 'not '}a --scale10g channel")
    reps = args.reps or default_reps
    cfg = Config(
        scale=scale,
        work=args.work.resolve(),
        reps=max(1, reps),
        startup_reps=max(1, reps * 2),
        timeout=1800.0 if name in {"full", "scale10g"} else 600.0,
    )

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    when = datetime.datetime.now(datetime.timezone.utc)
    facts = machine()  # before the run: the commit measured is the one checked out at the start
    facts["envpack"] += "; " + compile_envpack()
    try:
        if args.scale10g:
            from bench_scale import run_scale

            report = run_scale(cfg, log, keep=args.keep)
        else:
            report = run_bench(cfg, log)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    report.context.update(facts)
    print(table(report.rows))
    if not args.no_results:
        results = args.results or (SCALE_RESULTS if args.scale10g else RESULTS)
        command = shlex.join(
            ["python", "bench/run.py", *(argv if argv is not None else sys.argv[1:])]
        )
        text = markdown(report, command, when, scale_mode=args.scale10g)
        tmp = results.with_name(results.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(results)
        log(f"wrote {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
