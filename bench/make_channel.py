"""A generated conda channel with the size profile of a scientific stack, cached between runs.

Packages are real ``.conda`` files made by the test suite's ``channel_factory`` (incompressible
payloads, so the sizes on the wire are the sizes planned) and indexed with rattler. A channel is
built once into ``<work>/channel-<scale>-<plan hash>/`` and reused by every later run with the
same plan. The scale channels (10 GB, one package over 4 GiB; and its tiny twin for the smoke
test) are written by ``bigconda.write_streamed_conda`` instead, which never holds a payload in
memory.

Dependencies only ever point from a package to a smaller one, so the smallest N packages are a
closed set: that is how the "small" build of the memory measurement is chosen.

Run it alone to build (or find) a channel: ``python bench/make_channel.py --work DIR [--quick]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from bigconda import repodata_record, write_repodata, write_streamed_conda  # noqa: E402

from channel_factory import Pkg, build_package, index_channel  # noqa: E402

MB = 1 << 20
PLAN_VERSION = 1  # bump when the shape of generated packages changes


@dataclass(frozen=True)
class Scale:
    name: str
    packages: int
    total_bytes: int
    large: tuple[int, ...]  # the few big packages, in bytes; the rest share what is left
    small_fraction: float  # share of the bytes that the "small" build (memory row) takes
    min_size: int = 8 << 10
    max_rest: int = 45 * MB  # no package outside ``large`` grows past this
    streamed: bool = False  # written by bigconda (any size, constant memory), not channel_factory
    split: str = "fat32"  # the --split size of the scale mode


SCALES = {
    "full": Scale("full", 150, 1536 * MB, (150 * MB, 120 * MB, 95 * MB, 70 * MB, 55 * MB), 0.2),
    "quick": Scale("quick", 40, 160 * MB, (40 * MB, 25 * MB), 0.25, max_rest=12 * MB),
    # the smoke test's: three packages, a few MB, generated in about a second
    "tiny": Scale("tiny", 3, 3 * MB, (2 * MB,), 0.34, min_size=16 << 10, max_rest=1 * MB),
    # --scale10g: 10 GiB, one package of 4.5 GiB (a zip64 member of the bundle); the memory rows
    # compare it with the smallest 15% of the same channel (about 1.5 GB, the full run's size)
    "scale10g": Scale(
        "scale10g",
        80,
        10240 * MB,
        (4608 * MB, 1024 * MB, 512 * MB, 256 * MB),
        0.15,
        max_rest=100 * MB,
        streamed=True,
    ),
    # the smoke test's scale mode: a "huge" package of 4 MB, split into 1 MiB parts
    "scale-tiny": Scale(
        "scale-tiny",
        5,
        6 * MB,
        (4 * MB,),
        0.2,
        min_size=16 << 10,
        max_rest=1 * MB,
        streamed=True,
        split="1M",
    ),
}


@dataclass(frozen=True)
class PlannedPkg:
    name: str
    subdir: str
    size: int
    depends: tuple[str, ...]

    def pkg(self) -> Pkg:
        return Pkg(
            self.name,
            "1.0",
            "h0_0" if self.subdir != "noarch" else "pyh0_0",
            subdir=self.subdir,
            depends=list(self.depends),
            random_bytes=self.size,
        )

    @property
    def fn(self) -> str:
        return self.pkg().fn


def plan(scale: Scale, seed: int = 6) -> list[PlannedPkg]:
    """The packages of ``scale``, smallest first; deterministic for a given seed."""
    rng = random.Random(f"{scale.name}-{seed}")
    rest = scale.packages - len(scale.large)
    remaining = max(scale.total_bytes - sum(scale.large), rest * scale.min_size)
    # Log-normal, as package sizes are: many of tens of KB to a few MB, a handful of tens of MB.
    weights = [rng.lognormvariate(0.0, 2.0) for _ in range(rest)]
    sizes: list[int] = []
    for _ in range(5):  # rescale after clamping until the total settles
        factor = remaining / sum(weights)
        sizes = [min(max(int(w * factor), scale.min_size), scale.max_rest) for w in weights]
        weights = [float(s) for s in sizes]
        if abs(sum(sizes) - remaining) < remaining * 0.01:
            break
    all_sizes = sorted(sizes + list(scale.large))
    out: list[PlannedPkg] = []
    for i, size in enumerate(all_sizes):
        name = f"bench-{i:03d}"
        # small pure-python packages are noarch in a real stack; keep about one in four of them
        subdir = "noarch" if size < MB and i % 4 == 1 else "win-64"
        lower = range(max(0, i - 40), i)
        count = min(len(lower), rng.randint(0, 3))
        deps = tuple(sorted(f"bench-{j:03d}" for j in rng.sample(list(lower), count)))
        out.append(PlannedPkg(name, subdir, size, deps))
    return out


def small_subset(pkgs: list[PlannedPkg], fraction: float) -> list[PlannedPkg]:
    """The smallest packages whose sizes add up to ``fraction`` of the whole (closed under deps)."""
    limit = sum(p.size for p in pkgs) * fraction
    chosen: list[PlannedPkg] = []
    total = 0
    for p in pkgs:
        if chosen and total + p.size > limit:
            break
        chosen.append(p)
        total += p.size
    return chosen


def plan_hash(pkgs: list[PlannedPkg]) -> str:
    blob = json.dumps([PLAN_VERSION, [asdict(p) for p in pkgs]], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _build_one(pkg: PlannedPkg, channel: str, streamed: bool = False) -> str:
    target = Path(channel) / pkg.subdir / pkg.fn
    if target.is_file():
        return pkg.fn
    # Built aside and renamed in, so a file present in the channel is always a complete one.
    with tempfile.TemporaryDirectory(dir=channel, prefix=".build-") as tmp:
        if streamed:
            p = pkg.pkg()
            made = write_streamed_conda(
                Path(tmp) / pkg.fn,
                name=p.name,
                version=p.version,
                build=p.build,
                subdir=p.subdir,
                depends=list(p.depends),
                payload_size=pkg.size,
            )
        else:
            made = build_package(pkg.pkg(), Path(tmp))
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(made, target)
    return pkg.fn


def _record(path: str) -> dict[str, object]:
    return repodata_record(Path(path))


def ensure_channel(
    work: Path,
    scale: Scale,
    log: Callable[[str], None] = print,
    jobs: int | None = None,
) -> tuple[Path, list[PlannedPkg]]:
    """Return the channel folder for ``scale`` under ``work`` (building what is missing)."""
    pkgs = plan(scale)
    channel = work / f"channel-{scale.name}-{plan_hash(pkgs)}"
    done = channel / ".complete"
    if done.is_file():
        return channel, pkgs
    channel.mkdir(parents=True, exist_ok=True)
    for stale in channel.glob(".build-*"):
        shutil.rmtree(stale, ignore_errors=True)
    missing = [p for p in pkgs if not (channel / p.subdir / p.fn).is_file()]
    total = sum(p.size for p in missing)
    if missing:
        log(
            f"generating {len(missing)} packages ({total / MB:.0f} MB) into {channel}; "
            "this is done once per --work folder"
        )
    start = time.perf_counter()
    workers = jobs or os.cpu_count() or 1
    # largest first, so that one big package does not start last and run alone
    ordered = sorted(missing, key=lambda p: -p.size)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_build_one, p, str(channel), scale.streamed) for p in ordered]
        for n, fut in enumerate(futures, 1):
            fut.result()
            if n % 25 == 0:
                log(f"  {n}/{len(ordered)} packages ({time.perf_counter() - start:.0f} s)")
        if scale.streamed:
            # bigconda's own index: rattler's held a 4.5 GiB package in memory
            paths = [str(channel / p.subdir / p.fn) for p in pkgs]
            records = dict(zip((p.fn for p in pkgs), pool.map(_record, paths), strict=True))
    if scale.streamed:
        write_repodata(channel, records)
    else:
        (channel / "win-64").mkdir(exist_ok=True)
        index_channel(channel)
    done.write_text(json.dumps({"scale": scale.name, "packages": len(pkgs)}) + "\n")
    if missing:
        log(f"channel ready in {time.perf_counter() - start:.0f} s")
    return channel, pkgs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--work", type=Path, required=True, help="Folder that caches channels.")
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--quick", action="store_true", help="Same as --scale quick.")
    args = parser.parse_args(argv)
    scale = SCALES["quick" if args.quick else args.scale]
    channel, pkgs = ensure_channel(args.work, scale)
    total = sum(p.size for p in pkgs)
    print(f"{channel}: {len(pkgs)} packages, {total / MB:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
