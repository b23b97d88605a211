"""bench/run.py at a tiny scale (3 packages, 3 MB; the scale mode with a 4 MB "huge" package),
so the benchmark machinery cannot rot.

It checks that every row is measured and reported, not how fast anything is.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
import os
import re
import shutil
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"

# What each row of the table must start with, in order (the bench's ROW_KEYS).
ROW_LABELS = {
    "fetch": "fetch phase alone (envpack's Fetcher",
    "fetch_floor": "fetch phase vs its CPU floor",
    "cold": "cold build, empty cache (`build`, one container) vs curl, then `cat`",
    "cold_floor": "cold build vs its CPU floor",
    "cold_curl": "cold build (`build`) vs curl alone",
    "warm": "warm build, all cached (`build`: one container) vs plain `cp`",
    "warm_zip": "warm build (`build`) vs Info-ZIP `zip -0`",
    "warm_bsdtar": "warm build (`build`) vs bsdtar's zip writer",
    "sfx": "second container: `build --sfx`",
    "warm_verify": "warm build, `--verify-cache`",
    "warm_reflink": "warm build on XFS with reflinks (`build`, cache and bundle on XFS)",
    "solve": "solve `python=3.9 pip` win-64",
    "update": "update bundle, one ~2 MB package changed",
    "multi": "two environments sharing most packages",
    "rss_small": "peak RSS, cold build of",
    "rss_large": "peak RSS, cold build of",
    "startup": "CLI start-up (`envpack --help`)",
}
TIME_CELL = re.compile(r"^\d+\.\d\d s( \(\d+\.\d\d–\d+\.\d\d\))?")
# The CPU figures the fetch and cold rows' notes give (see bench/bench_cpu.py's cpu_note).
CPU_NOTE = re.compile(
    r"CPU \(user \+ system, medians\): envpack (\d+\.\d\d) \+ (\d+\.\d\d) s, nginx "
    r"(\d+\.\d\d) s during it; (curl|curl \+ cat) (\d+\.\d\d) \+ (\d+\.\d\d) s, nginx "
    r"(\d+\.\d\d) s during it; hashing the same (\d+) MB here: md5 (\d+\.\d\d) s, sha256 "
    r"(\d+\.\d\d) s, CRC-32 (\d+\.\d\d) s of CPU; (\d+) cores"
)


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("envpack_bench_run", BENCH / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being created
    spec.loader.exec_module(module)
    return module


def table_rows(text: str) -> list[list[str]]:
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert lines and lines[0].startswith("| measure |")
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in lines[1:]]


def test_bench_tiny_scale_reports_every_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load_bench()
    missing = [t for t in ("curl", "zip") if shutil.which(t) is None]
    if bench.find_nginx() is None:
        missing.append("nginx")
    if missing:
        pytest.skip(f"the benchmark needs {', '.join(missing)} (apt-get install nginx-light)")
    assert tuple(ROW_LABELS) == bench.ROW_KEYS
    results = tmp_path / "RESULTS.md"
    argv = ["--scale", "tiny", "--reps", "1", "--work", str(tmp_path / "work")]
    assert bench.main([*argv, "--results", str(results)]) == 0
    printed = capsys.readouterr().out

    written = results.read_text(encoding="utf-8")
    for text in (printed, written):
        rows = table_rows(text)
        assert len(rows) == len(ROW_LABELS)
        for row, (key, label) in zip(rows, ROW_LABELS.items(), strict=True):
            assert len(row) == 6, row
            assert row[0].startswith(label), (key, row)
            assert row[5] in {"yes", "NO", "n/a"}, (key, row)
    by_key = dict(zip(ROW_LABELS, table_rows(written), strict=True))
    timed = [
        "fetch",
        "fetch_floor",
        "cold",
        "cold_floor",
        "cold_curl",
        "warm",
        "warm_zip",
        "sfx",
        "warm_verify",
        "startup",
    ]
    if shutil.which("bsdtar"):
        timed.append("warm_bsdtar")
    for key in timed:
        assert TIME_CELL.match(by_key[key][1]), by_key[key]  # envpack's time
        assert TIME_CELL.match(by_key[key][2]), by_key[key]  # the reference's
        assert re.fullmatch(r"-?\d+\.\d\dx", by_key[key][3]), by_key[key]
    check_cpu_floors(by_key, written)
    check_reflink_row(by_key["warm_reflink"], written)
    shared = BENCH.parents[1] / "shared" / "data" / "conda-forge-py39-subset"
    if shared.is_dir():
        assert TIME_CELL.match(by_key["solve"][1]), by_key["solve"]
        assert "17 packages" in written  # envpack and py-rattler agreed on the solve
    else:
        assert by_key["solve"][1] == "skipped"
    # The update row is sizes: MB of the update, of the full bundle, and their ratio.
    assert re.fullmatch(r"\d+\.\d\d MB", by_key["update"][1]), by_key["update"]
    assert re.fullmatch(r"\d+\.\d{4}x", by_key["update"][3]), by_key["update"]
    if Path("/usr/bin/time").is_file():
        for key in ("rss_small", "rss_large"):
            assert re.fullmatch(r"\d+ MB", by_key[key][1]), by_key[key]

    for field in ("Command: `python bench/run.py --scale tiny", "Date: ", "Machine: ", "Tools: "):
        assert field in written
    assert "--scale10g" in written and "RESULTS-scale.md" in written  # where the scale rows are
    # timed as installed: from bytecode (compile_envpack, tested below)
    assert "bytecode compiled before timing" in written
    # the one-container build and the --sfx build say what they wrote
    assert "the default build wrote: benchfull-win-64.zip" in written
    assert re.search(r"--sfx wrote: [^;]*benchfull-win-64-setup\.bat", written)
    assert "3 generated .conda packages" in written
    # the run cleaned up after itself and kept only the generated channel for the next run
    kept = sorted(p.name for p in (tmp_path / "work").iterdir())
    assert len(kept) == 1 and kept[0].startswith("channel-tiny-"), kept
    # and the XFS image it mounted there is unmounted (its loop device goes with it)
    with open("/proc/self/mounts", encoding="utf-8") as fh:
        assert str(tmp_path) not in fh.read()


def check_reflink_row(row: list[str], written: str) -> None:
    """Skipped with a reason, or timed, with the disk space taken and the bytes checked."""
    note = re.search(r"^- warm build on XFS with reflinks [^:]*: (.*)$", written, re.M)
    assert note, written
    if row[1] == "skipped":
        assert row[5] == "n/a", row
        assert re.fullmatch(r"skipped: \S.{5,}", note.group(1)), note.group(1)
        return
    m = re.fullmatch(r"(\d+\.\d\d s), (\d+\.\d) MB on disk", row[1])
    assert m and TIME_CELL.match(m.group(1)), row
    assert TIME_CELL.match(row[2]) and row[2].endswith(" cp --reflink=always"), row
    assert re.fullmatch(r"\d+\.\d\dx", row[3]), row
    assert row[5] in {"yes", "NO"}, row
    used = re.search(r"bundle (\d+\.\d) MB for (\d+) MB of packages", note.group(1))
    assert used, note.group(1)
    # The 3 MB of packages shared, not copied: the bundle took less than they hold.
    assert float(used.group(1)) < float(used.group(2)) == 3, used.groups()
    assert "same bytes as the build on " in note.group(1), note.group(1)
    frag = re.search(r"filefrag -v: (\d+\.\d) MB of the bundle's (\d+\.\d) MB in shared", written)
    if frag:  # filefrag installed: most of the bundle's extents are the cache's
        assert float(frag.group(2)) >= 3.0 and float(frag.group(1)) >= 2.0, frag.groups()


def test_filefrag_shared_extents() -> None:
    """The reflink row's second witness: bytes in extents filefrag flags "shared"."""
    load_bench()
    from bench_reflink import shared_extents

    out = (
        "Filesystem type is: 58465342\n"
        "File size of b.zip is 9000000 (2198 blocks of 4096 bytes)\n"
        " ext:     logical_offset:        physical_offset: length:   expected: flags:\n"
        "   0:        0..       0:       3000..      3000:      1:            \n"
        "   1:        1..    2196:         24..      2219:   2196:       3001: shared\n"
        "   2:     2197..    2197:       4000..      4000:      1:       2220: last,eof\n"
        "b.zip: 3 extents found\n"
    )
    assert shared_extents(out) == (2196 * 4096, 2198 * 4096)
    assert shared_extents("b.zip: FIBMAP unsupported\n") is None


def seconds(cell: str) -> float:
    """The median of a time cell: "1.23 s (1.20–1.30) ..." -> 1.23."""
    m = TIME_CELL.match(cell)
    assert m, cell
    return float(cell.split()[0])


def check_cpu_floors(by_key: dict[str, list[str]], written: str) -> None:
    """The CPU-floor rows and the CPU figures behind them are there and plausible."""
    for key, ref_key, ref_name in (
        ("fetch_floor", "fetch", "curl"),
        ("cold_floor", "cold", "curl + cat"),
    ):
        row, ref_row = by_key[key], by_key[ref_key]
        assert row[1] == ref_row[1], (row, ref_row)  # the same envpack runs
        assert row[2].endswith(" CPU floor"), row
        floor, ref_wall = seconds(row[2]), seconds(ref_row[2])
        assert floor > 0 and floor >= ref_wall, (row, ref_row)  # never below the reference's wall
        assert float(row[3].rstrip("x")) > 0, row
        assert row[4].startswith("—") and row[5] == "n/a", row  # informative, no goal
        assert f"floor, pair by pair: max({ref_name} wall, ({ref_name} CPU" in written
    notes = [m.groups() for m in CPU_NOTE.finditer(written)]
    assert [n[3] for n in notes] == ["curl", "curl + cat"], notes  # the fetch and cold notes
    for n in notes:
        env_user, env_sys, ref_user, ref_sys = (float(n[i]) for i in (0, 1, 4, 5))
        assert env_user + env_sys > 0, n  # a Python start-up at least
        # curl of 3 MB may take under 5 ms, shown as 0.00 (test_run_timed_counts_the_cpu_of_...
        # shows the reference's CPU is counted)
        assert ref_user >= 0 and ref_sys >= 0, n
        assert float(n[2]) >= 0 and float(n[6]) >= 0, n  # nginx, one clock tick's resolution
        assert int(n[7]) == 3, n  # the 3 MB of the tiny channel, hashed
        assert all(float(x) >= 0 for x in n[8:11]), n
        assert int(n[11]) >= 1, n


def test_cpu_floor_arithmetic() -> None:
    """floor = max(the reference's wall, CPU over the cores), pair by pair; the ratio a median."""
    load_bench()
    from bench_common import Sample
    from bench_cpu import HashCpu, cpu_floor, floor_row

    assert cpu_floor(1.5, 4.6, 2) == 2.3  # CPU-bound
    assert cpu_floor(1.5, 2.0, 2) == 1.5  # the wall binds
    hashes = HashCpu(md5=1.0, sha256=0.5, crc32=0.25, size=10**9)  # 1.75 s
    ref = [
        Sample(1.0, None, user_cpu=0.25, sys_cpu=1.0, server_cpu=0.5),  # (1.75 + 1.75) / 2 = 1.75
        Sample(2.0, None, user_cpu=0.5, sys_cpu=0.25, server_cpu=0.0),  # 2.5 / 2 < 2.0 wall
    ]
    ours = [
        Sample(3.5, None, user_cpu=3.0, sys_cpu=1.0, server_cpu=0.5),
        Sample(3.0, None, user_cpu=3.0, sys_cpu=1.0, server_cpu=0.5),
    ]
    row = floor_row("fetch_floor", "m", ours, ref, "curl", hashes, 2)
    assert row.envpack == "3.25 s (3.00–3.50)"
    assert row.reference == "1.88 s (1.75–2.00) CPU floor"
    assert row.ratio == "1.75x"  # median of 3.5 / 1.75 and 3.0 / 2.0
    assert "the CPU bound set the floor in 1 of 2 pairs" in row.note
    assert "envpack and nginx used 4.50 core-seconds against the floor's 3.00 (1.50x)" in row.note


def test_run_timed_counts_the_cpu_of_grandchildren(tmp_path: Path) -> None:
    """user and system CPU of a command include what its children used (sh -c runs python):
    at least what the grandchild itself saw it had used just before it exited."""
    load_bench()
    from bench_common import clean_env, run_timed

    burn = (
        "import hashlib, os, resource\n"
        "hashlib.md5(bytes(32 << 20)).hexdigest()\n"
        "with open(os.devnull, 'wb') as f:\n"
        "    for _ in range(2000): f.write(b'x')\n"
        "r = resource.getrusage(resource.RUSAGE_SELF)\n"
        "print(r.ru_utime, r.ru_stime)\n"
    )
    argv = ["sh", "-c", '"$0" -c "$1"; true', sys.executable, burn]
    for rss_file in (None, tmp_path / "rss.txt"):  # also under /usr/bin/time -v, when present
        sample = run_timed(argv, env=clean_env(), timeout=120, rss_file=rss_file)
        user, system = (float(x) for x in sample.stdout.split())
        assert sample.user_cpu is not None and sample.sys_cpu is not None
        # rusage counts microseconds; the differences may round below by a float's last bit
        assert sample.user_cpu >= user - 1e-6 and user > 0
        assert sample.sys_cpu >= system - 1e-6
        assert sample.server_cpu is None  # no server asked about


def test_process_cpu_reads_a_live_process() -> None:
    """nginx's CPU comes from /proc/PID/stat of its master and the master's children."""
    load_bench()
    import subprocess

    from nginx_server import child_pids, process_cpu

    code = (
        "import hashlib, resource, subprocess, sys\n"
        "kid = subprocess.Popen([sys.executable, '-c', 'import sys; sys.stdin.read()'],"
        " stdin=subprocess.PIPE)\n"
        "hashlib.md5(bytes(32 << 20)).hexdigest()\n"
        "r = resource.getrusage(resource.RUSAGE_SELF)\n"
        "print(kid.pid, r.ru_utime + r.ru_stime, flush=True)\n"
        "sys.stdin.read()\n"
        "kid.stdin.close(); kid.wait()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        kid, used = proc.stdout.readline().split()
        assert child_pids(proc.pid) == [int(kid)]
        # /proc counts user and system time each in whole clock ticks, rounded down: allow two
        tick = 1 / os.sysconf("SC_CLK_TCK")
        assert process_cpu(proc.pid) >= float(used) - 2 * tick - 1e-9
        assert process_cpu(proc.pid) > 0
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=60)
    assert process_cpu(proc.pid) == 0.0  # gone (and reaped): nothing to read


# What each row of the scale mode's table must start with, in order (bench_scale.SCALE_ROW_KEYS).
SCALE_LABELS = {
    "scale_cold": "cold build (`build`, empty cache) of 6 MB",
    "scale_warm": "warm build (`build`, all cached) of 6 MB",
    "scale_verify": "`verify` of the bundle of 6 MB",
    "scale_inspect": "`inspect` of the bundle of 6 MB",
    "scale_bsdtar": "`bsdtar -tf` lists the bundle",
    "scale_7zz": "`7zz l` lists it",
    "scale_split": "`build --split` parts joined (`cat` order) vs the whole zip",
}


def test_bench_scale_mode_tiny(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--scale10g's code paths on its tiny twin: 5 streamed packages, one of 4 MB, split 1M."""
    bench = load_bench()
    if bench.find_nginx() is None:
        pytest.skip("the benchmark needs nginx (apt-get install nginx-light)")
    results = tmp_path / "RESULTS-scale.md"
    work = tmp_path / "work"
    argv = ["--scale10g", "--scale", "scale-tiny", "--work", str(work), "--results", str(results)]
    assert bench.main(argv) == 0
    capsys.readouterr()
    written = results.read_text(encoding="utf-8")
    assert written.startswith("# envpack benchmark results: 10 GB scale")
    rows = table_rows(written)
    assert len(rows) == len(SCALE_LABELS)
    for row, (key, label) in zip(rows, SCALE_LABELS.items(), strict=True):
        assert len(row) == 6, row
        assert row[0].startswith(label), (key, row)
    by_key = dict(zip(SCALE_LABELS, rows, strict=True))
    if Path("/usr/bin/time").is_file():
        for key in ("scale_cold", "scale_warm", "scale_verify", "scale_inspect"):
            assert re.fullmatch(r"\d+\.\d\d s, \d+ MB peak RSS", by_key[key][1]), by_key[key]
            assert re.fullmatch(r"\d+\.\d\d s, \d+ MB at 1 MB", by_key[key][2]), by_key[key]
            assert re.fullmatch(r"\d+\.\d\dx RSS", by_key[key][3]), by_key[key]
            assert by_key[key][5] in {"yes", "NO"}, by_key[key]
    # 5 packages plus the bundle's own files: the same count from zipfile, bsdtar and 7zz
    for key, tool in (("scale_bsdtar", "bsdtar"), ("scale_7zz", "7zz")):
        if shutil.which(tool):
            assert re.fullmatch(r"exit 0, \d+ members", by_key[key][1]), by_key[key]
            assert by_key[key][5] == "yes", by_key[key]
    split = by_key["scale_split"]
    assert re.fullmatch(r"[5-9] parts, sha256 [0-9a-f]{12}", split[1]), split  # 6 MB in 1 MiB
    assert split[5] in {"yes", "NO"}
    assert "scalefull-win-64.zip.001 … scalefull-win-64.zip.0" in written
    assert "the largest 4 MB (no zip64 at this scale)" in written
    # without --keep the generated channel goes too: the scale channel is 10 GB at full size
    assert list(work.iterdir()) == []


def test_streamed_conda_is_a_valid_package(tmp_path: Path) -> None:
    """bench/bigconda.py's package: conda-package-handling extracts it, and the payload's sha256
    and size are those its info/paths.json records."""
    load_bench()  # puts bench/ on sys.path
    from bigconda import write_streamed_conda
    from conda_package_handling import api

    out = write_streamed_conda(
        tmp_path / "huge-1.0-h0_0.conda",
        name="huge",
        version="1.0",
        build="h0_0",
        subdir="win-64",
        depends=["small"],
        payload_size=3 * 1024 * 1024 + 5,
    )
    api.extract(str(out), str(tmp_path / "x"))
    payload = (tmp_path / "x" / "Library/share/huge/payload.bin").read_bytes()
    assert len(payload) == 3 * 1024 * 1024 + 5
    paths = json.loads((tmp_path / "x" / "info/paths.json").read_text())["paths"]
    assert paths == [
        {
            "_path": "Library/share/huge/payload.bin",
            "path_type": "hardlink",
            "sha256": hashlib.sha256(payload).hexdigest(),
            "size_in_bytes": 3 * 1024 * 1024 + 5,
        }
    ]
    index = json.loads((tmp_path / "x" / "info/index.json").read_text())
    assert (index["name"], index["depends"], index["subdir"]) == ("huge", ["small"], "win-64")
    # incompressible: the package is its payload plus a few KB of headers
    assert 0 < out.stat().st_size - len(payload) < 8192
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == [
            "info-huge-1.0-h0_0.tar.zst",
            "metadata.json",
            "pkg-huge-1.0-h0_0.tar.zst",
        ]


def test_streamed_channel_repodata_is_rattlers(tmp_path: Path) -> None:
    """The scale channel is indexed by bigconda (rattler's indexer held a 4.5 GiB package in
    memory): its repodata.json must say what rattler's says of the same files."""
    load_bench()
    from make_channel import SCALES, ensure_channel

    from channel_factory import index_channel

    channel, pkgs = ensure_channel(tmp_path / "work", SCALES["scale-tiny"], log=lambda _: None)
    copy = tmp_path / "copy"
    shutil.copytree(channel, copy)
    for subdir in ("win-64", "noarch"):
        (copy / subdir / "repodata.json").unlink()
    index_channel(copy)
    for subdir in ("win-64", "noarch"):
        ours = json.loads((channel / subdir / "repodata.json").read_text())
        theirs = json.loads((copy / subdir / "repodata.json").read_text())
        for record in theirs["packages.conda"].values():
            del record["indexed_timestamp"]  # when rattler ran
        assert ours == theirs, subdir
    assert (
        sum(
            len(json.loads((channel / s / "repodata.json").read_text())["packages.conda"])
            for s in ("win-64", "noarch")
        )
        == len(pkgs)
        == 5
    )


def test_joined_parts_read_as_the_whole_file(tmp_path: Path) -> None:
    """The scale mode's split check reads NAME.001, NAME.002, ... as one file without writing
    it: the bytes, seeks across part boundaries and a zip's central directory must all hold."""
    load_bench()
    import io

    from bench_scale import JoinedParts, count_7zz, sha256_of, zip_members

    whole = tmp_path / "whole.zip"
    with zipfile.ZipFile(whole, "w") as zf:
        for i in range(7):
            zf.writestr(f"pkgs/m{i}.bin", bytes([i]) * (1000 + 97 * i))
    data = whole.read_bytes()
    cuts = [0, 1, 1500, 1501, 4096, len(data)]  # a one-byte part, a boundary inside a header
    parts = []
    for n, (a, b) in enumerate(itertools.pairwise(cuts), 1):
        part = tmp_path / f"whole.zip.{n:03d}"
        part.write_bytes(data[a:b])
        parts.append(part)
    with io.BufferedReader(JoinedParts(parts), 64) as joined:
        assert joined.read() == data
        joined.seek(1499)
        assert joined.read(3) == data[1499:1502]
        joined.seek(-10, io.SEEK_END)
        assert joined.read() == data[-10:]
        assert zip_members(joined) == (7, 1000 + 97 * 6)
        joined.seek(0)
        assert sha256_of(joined) == hashlib.sha256(data).hexdigest()
    summary = "2026-11-29 11:59:00  10555000000  10555000000  85 files, 3 folders\n"
    assert count_7zz("...\n" + summary) == 88
    assert count_7zz("--- 12 files\n") == 12
    assert count_7zz("ERROR: cannot open\n") is None


def test_reflink_row_skipped_without_mkfs_xfs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No mkfs.xfs (or no root): the row says why, met n/a, and nothing is made or mounted."""
    load_bench()
    import bench_reflink
    from bench_common import Deaths

    monkeypatch.setattr(bench_reflink, "find_mkfs_xfs", lambda: None)
    monkeypatch.setattr(bench_reflink.os, "geteuid", lambda: 0)

    def row_now() -> Any:
        return bench_reflink.reflink_row(
            run=tmp_path,
            build_argv=["false"],
            bundle_name="b.zip",
            cache=tmp_path,
            cached=[],
            total=1,
            reps=1,
            timeout=60,
            crashes=Deaths(),
            log=lambda _: None,
        )

    row = row_now()
    assert (row.key, row.envpack, row.met) == ("warm_reflink", "skipped", "n/a")
    assert row.note == "skipped: mkfs.xfs not installed (Debian: apt-get install xfsprogs)"
    monkeypatch.setattr(bench_reflink.os, "geteuid", lambda: 1000)
    row = row_now()
    assert row.note == "skipped: mounting a filesystem image needs root"
    assert list(tmp_path.iterdir()) == []


def test_compile_envpack_writes_bytecode_where_writing_it_is_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The bench's first step: envpack's modules compiled even with PYTHONDONTWRITEBYTECODE set
    (as on the machine the benchmarks ran on), into the cache the timed runs read."""
    load_bench()
    from bench_common import compile_envpack

    import envpack

    prefix = tmp_path / "pycache"
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setenv("PYTHONPYCACHEPREFIX", str(prefix))  # not the checkout's __pycache__
    assert not prefix.exists()
    assert "bytecode compiled" in compile_envpack()
    package = Path(envpack.__file__).resolve().parent
    here = prefix / str(package).lstrip("/")  # the prefix mirrors the sources' folders
    compiled = {p.relative_to(here).as_posix().split(".")[0] for p in here.rglob("*.pyc")}
    assert {"cli", "assemble", "archive/kcopy", "fetch/download"} <= compiled
