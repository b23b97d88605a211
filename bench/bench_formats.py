"""Bundle formats: envpack's 7z writer against 7-Zip itself, and the memory of a split build.

    python bench/bench_formats.py --work DIR [--scale quick|full|tiny] [--reps N]

On a generated channel (bench/make_channel.py: real .conda files, incompressible payloads) plus
the bundle's text (both repodata.json, a manifest of every file) and, when ../shared/tools holds
it, the real 10 MB micromamba binary standing in for micromamba.exe:

- envpack 7z (packages stored, the rest Deflate) vs ``7zz a -mx0`` (everything stored) of the same
  tree: time and size, the ratio being the median of back-to-back pairs;
- the same with ``7zz a -mx5`` on the text alone, to show what LZMA2 would have saved;
- peak RSS (GNU time) and peak Python allocations (tracemalloc) of envpack writing the zip, the 7z,
  and both split into parts of an eighth of the bundle: memory must not follow the bundle's size.

Every envpack measurement runs in a child process of this script, so RSS is its own.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT / "builder"))

from make_channel import MB, SCALES, ensure_channel  # noqa: E402

TIME = "/usr/bin/time"
MICROMAMBA = ROOT.parent / "shared" / "tools" / "micromamba-linux" / "micromamba"
EPOCH = 1700000000


@dataclass
class Run:
    seconds: float
    rss_kb: int
    size: int
    py_peak: int = 0


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def stage(channel: Path, work: Path) -> tuple[Path, list[dict[str, object]]]:
    """The bundle's tree (hard links, no copies) and its entry list."""
    tree = work / "tree" / "bench"
    if tree.parent.exists():
        shutil.rmtree(tree.parent)
    files: list[tuple[str, Path]] = []
    for sub in ("win-64", "noarch"):
        for pkg in sorted((channel / sub).glob("*.conda")):
            files.append((f"channel/{sub}/{pkg.name}", pkg))
        files.append((f"channel/{sub}/repodata.json", channel / sub / "repodata.json"))
    if MICROMAMBA.is_file():
        files.append(("micromamba.exe", MICROMAMBA))
    entries: list[dict[str, object]] = []
    for rel, src in files:
        dest = tree / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dest)
        except OSError:
            shutil.copyfile(src, dest)
        entries.append({"arcname": rel, "path": str(dest), "size": dest.stat().st_size})
    manifest = json.dumps(
        {
            e["arcname"]: {"sha256": sha256(Path(str(e["path"]))), "size": e["size"]}
            for e in entries
        },
        indent=1,
        sort_keys=True,
    ).encode()
    (tree / "envpack.json").write_bytes(manifest)
    entries.append(
        {"arcname": "envpack.json", "path": str(tree / "envpack.json"), "size": len(manifest)}
    )
    for e in entries:
        e["sha256"] = sha256(Path(str(e["path"])))
    return tree, entries


def child(spec: Path) -> int:
    """Write one bundle as the spec says; print seconds and the tracemalloc peak as JSON."""
    from envpack import archive as formats
    from envpack.bundle.manifest import Entry

    job = json.loads(spec.read_text())
    entries = [
        Entry.from_file(e["arcname"], Path(e["path"]), e["size"], e["sha256"])
        for e in job["entries"]
    ]
    tracemalloc.start()
    start = time.perf_counter()
    out = formats.write_bundle(
        Path(job["out"]), "bench", "bench", entries, EPOCH, job["fmt"], split=job["split"]
    )
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    size = sum(p.stat().st_size for p in out if p.name.startswith("bench."))
    print(json.dumps({"seconds": seconds, "py_peak": peak, "size": size}))
    return 0


def run_measured(argv: list[str], cwd: Path | None = None) -> tuple[float, int, str]:
    """Wall time, peak RSS (KB) and stdout of one process.

    The RSS comes from GNU time: Linux keeps a process's RSS high-water mark across execve, so
    a child forked from this (large) benchmark process and measured with wait4 would report
    this process's memory, not its own.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.run(
            [TIME, "-f", "maxrss=%M", *argv], cwd=cwd, stdout=out, stderr=err, check=False
        )
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        text, errors = out.read().decode(), err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({proc.returncode}): {(text + errors)[-500:]}")
    rss = int(errors.rsplit("maxrss=", 1)[1].split()[0])
    return seconds, rss, text


def envpack_run(work: Path, entries: list[dict[str, object]], fmt: str, split: int | None) -> Run:
    out = work / f"out-{fmt}-{split or 0}"
    shutil.rmtree(out, ignore_errors=True)
    spec = work / "job.json"
    spec.write_text(json.dumps({"entries": entries, "out": str(out), "fmt": fmt, "split": split}))
    _, rss, text = run_measured([sys.executable, __file__, "--child", str(spec)])
    data = json.loads(text.strip().splitlines()[-1])
    shutil.rmtree(out, ignore_errors=True)
    return Run(data["seconds"], rss, data["size"], data["py_peak"])


def sevenzip_run(work: Path, tree: Path, args: list[str], only: list[str] | None = None) -> Run:
    archive = work / "7zz.7z"
    archive.unlink(missing_ok=True)
    targets = only or [tree.name]
    seconds, rss, _ = run_measured(
        ["7zz", "a", "-bd", "-bso0", "-bsp0", *args, str(archive), *targets], cwd=tree.parent
    )
    size = archive.stat().st_size
    archive.unlink()
    return Run(seconds, rss, size)


def sevenzip_same_layout(work: Path, tree: Path, text: list[str]) -> Run:
    """7-Zip writing what envpack writes: packages stored, then the rest Deflate (two calls)."""
    archive = work / "7zz-layout.7z"
    archive.unlink(missing_ok=True)
    base = ["7zz", "a", "-bd", "-bso0", "-bsp0"]
    text_set = set(text)
    packages = [
        p.relative_to(tree.parent).as_posix()
        for p in sorted(tree.rglob("*.conda"))
        if p.relative_to(tree).as_posix() not in text_set
    ]
    t1, rss1, _ = run_measured([*base, "-m0=Copy", str(archive), *packages], cwd=tree.parent)
    t2, rss2, _ = run_measured(
        [*base, "-m0=Deflate", str(archive), *[f"{tree.name}/{t}" for t in text]], cwd=tree.parent
    )
    size = archive.stat().st_size
    archive.unlink()
    return Run(t1 + t2, max(rss1, rss2), size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--work", type=Path, help="Folder that caches the generated channel.")
    parser.add_argument("--scale", choices=sorted(SCALES), default="quick")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child)
    if args.work is None:
        parser.error("--work is required")
    if shutil.which("7zz") is None:
        raise SystemExit("7zz not found (Debian: apt-get install 7zip)")
    if not Path(TIME).is_file():
        raise SystemExit(f"{TIME} not found (Debian: apt-get install time)")
    work: Path = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    channel, _ = ensure_channel(work, SCALES[args.scale])
    tree, entries = stage(channel, work / f"formats-{args.scale}")
    wdir = tree.parent.parent
    total = sum(int(str(e["size"])) for e in entries)
    text = [str(e["arcname"]) for e in entries if not str(e["arcname"]).endswith(".conda")]
    text_bytes = sum(int(str(e["size"])) for e in entries if str(e["arcname"]) in text)
    print(
        f"bundle: {len(entries)} files, {total / MB:.1f} MB "
        f"({text_bytes / MB:.1f} MB not packages; micromamba stand-in: {MICROMAMBA.is_file()})"
    )

    med = statistics.median
    compared = {
        "-mx0": lambda: sevenzip_run(wdir, tree, ["-mx0"]),
        "same layout": lambda: sevenzip_same_layout(wdir, tree, text),
    }
    results: dict[str, list[tuple[Run, Run]]] = {}
    for label, theirs in compared.items():
        pairs: list[tuple[Run, Run]] = []
        for i in range(args.reps):
            if i % 2:  # alternate the order: these machines are noisy
                b = theirs()
                a = envpack_run(wdir, entries, "7z", None)
            else:
                a = envpack_run(wdir, entries, "7z", None)
                b = theirs()
            pairs.append((a, b))
        results[label] = pairs
    ours_size = results["-mx0"][0][0].size
    theirs_size = results["-mx0"][0][1].size
    text_lzma = sevenzip_run(wdir, tree, ["-mx5"], [f"bench/{t}" for t in text])
    text_copy = sevenzip_run(wdir, tree, ["-mx0"], [f"bench/{t}" for t in text])

    part = max(1 << 20, -(-total // 8))
    mem = {
        "zip": envpack_run(wdir, entries, "zip", None),
        "7z": envpack_run(wdir, entries, "7z", None),
        f"zip, parts of {part / MB:.0f} MB": envpack_run(wdir, entries, "zip", part),
        f"7z, parts of {part / MB:.0f} MB": envpack_run(wdir, entries, "7z", part),
    }

    rows = [("what", "envpack", "7zz", "ratio")]
    for label, pairs in results.items():
        rows.append(
            (
                f"7z of {total / MB:.0f} MB vs 7zz {label}, time (median of {args.reps} pairs)",
                f"{med(a.seconds for a, _ in pairs):.2f} s",
                f"{med(b.seconds for _, b in pairs):.2f} s",
                f"{med(a.seconds / b.seconds for a, b in pairs):.2f}x",
            )
        )
        rows.append(
            (
                f"7z size vs 7zz {label}",
                f"{pairs[0][0].size / MB:.2f} MB",
                f"{pairs[0][1].size / MB:.2f} MB",
                f"{pairs[0][0].size / pairs[0][1].size:.4f}",
            )
        )
    rows += [
        (
            f"non-package files ({text_bytes / MB:.1f} MB) compressed",
            "Deflate: " + f"{(ours_size - (theirs_size - text_copy.size)) / MB:.2f} MB (approx.)",
            f"LZMA2 -mx5: {text_lzma.size / MB:.2f} MB",
            "",
        ),
    ]
    for label, run in mem.items():
        rows.append(
            (
                f"peak memory, {label}",
                f"{run.rss_kb / 1024:.0f} MB RSS, {run.py_peak / MB:.1f} MB Python",
                "",
                f"{run.seconds:.2f} s",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for n, row in enumerate(rows):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if n == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    shutil.rmtree(tree.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
