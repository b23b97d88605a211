"""The CPU floor of the fetch and the cold build: what the checks envpack must make cost in CPU,
measured in the same run, so the table shows how much of the gap to curl no fetcher can close.

The fetch must check md5 and sha256 of every byte (issue 13: micromamba on the offline PC checks
every recorded hash) and computes its CRC-32 for the zip writer. curl checks nothing, and on a
2-core machine that shares its cores with nginx the hashing alone is more CPU than curl's whole
run. So beside each ratio to curl, a floor: per pair,

    floor = max(reference's wall, (reference's CPU + nginx's CPU during it + hashing CPU) / cores)

the time a fetcher that received and wrote like curl, and hashed like hashlib and zlib, would take
if it kept every core busy: neither less than curl's wall nor less than its CPU spread over the
cores.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench_common import Row, Sample
from make_channel import MB

CHUNK = 64 * 1024  # what envpack's fetcher hands its hashes: one 64 KiB buffer at a time
BATCH = 256  # chunks read before timing their updates, so the clock reads cost nothing


@dataclass(frozen=True)
class HashCpu:
    """CPU seconds of each check over the same bytes, in the benchmark's own process."""

    md5: float
    sha256: float
    crc32: float
    size: int

    @property
    def total(self) -> float:
        return self.md5 + self.sha256 + self.crc32

    def text(self) -> str:
        return (
            f"hashing the same {self.size / MB:.0f} MB here: md5 {self.md5:.2f} s, "
            f"sha256 {self.sha256:.2f} s, CRC-32 {self.crc32:.2f} s of CPU"
        )


def hash_cpu(files: Iterable[Path]) -> HashCpu:
    """md5, sha256 and CRC-32 of ``files`` in 64 KiB updates, as envpack's fetcher makes them,
    each timed on its own by the process's CPU clock. Reading the files is not timed: the fetcher
    hashes bytes it already has, and receiving them is in the reference's CPU."""
    buf = bytearray(BATCH * CHUNK)
    view = memoryview(buf)
    t_md5 = t_sha = t_crc = 0.0
    size = 0
    for path in files:
        md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
        crc = 0
        with open(path, "rb", buffering=0) as fh:
            while got := fh.readinto(buf):
                size += got
                chunks = [view[i : min(i + CHUNK, got)] for i in range(0, got, CHUNK)]
                t0 = time.process_time()
                for c in chunks:
                    md5.update(c)
                t1 = time.process_time()
                for c in chunks:
                    sha.update(c)
                t2 = time.process_time()
                for c in chunks:
                    crc = zlib.crc32(c, crc)
                t3 = time.process_time()
                t_md5, t_sha, t_crc = t_md5 + t1 - t0, t_sha + t2 - t1, t_crc + t3 - t2
                for c in chunks:
                    c.release()
    return HashCpu(t_md5, t_sha, t_crc, size)


def cores() -> int:
    """The cores this process (and so every command it runs) may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cpu_floor(wall: float, cpu: float, n_cores: int) -> float:
    """Neither faster than the reference ran, nor faster than its CPU spread over every core."""
    return max(wall, cpu / n_cores)


def _cpu(s: Sample) -> float:
    """The command's user + system CPU and nginx's during it."""
    if s.cpu is None or s.server_cpu is None:
        raise ValueError("a sample without its CPU times")
    return s.cpu + s.server_cpu


def _median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def _spread(values: Sequence[float]) -> str:
    text = f"{statistics.median(values):.2f} s"
    if len(values) > 1:
        text += f" ({min(values):.2f}–{max(values):.2f})"
    return text


def cpu_note(
    envpack: Sequence[Sample], ref: Sequence[Sample], ref_name: str, hashes: HashCpu, n: int
) -> str:
    """The CPU figures behind a row, so a reader can redo the floor's arithmetic."""

    def who(name: str, samples: Sequence[Sample]) -> str:
        user = _median(s.user_cpu or 0.0 for s in samples)
        system = _median(s.sys_cpu or 0.0 for s in samples)
        nginx = _median(s.server_cpu or 0.0 for s in samples)
        return f"{name} {user:.2f} + {system:.2f} s, nginx {nginx:.2f} s during it"

    return (
        f"CPU (user + system, medians): {who('envpack', envpack)}; {who(ref_name, ref)}; "
        f"{hashes.text()}; {n} cores"
    )


def floor_row(
    key: str,
    measure: str,
    envpack: Sequence[Sample],
    ref: Sequence[Sample],
    ref_name: str,
    hashes: HashCpu,
    n: int,
) -> Row:
    """envpack's wall against the floor of the same pair (see the module's docstring)."""
    floors = [cpu_floor(r.seconds, _cpu(r) + hashes.total, n) for r in ref]
    ratio = _median(e.seconds / f for e, f in zip(envpack, floors, strict=True))
    bound = [(_cpu(r) + hashes.total) / n for r in ref]
    by_cpu = sum(b >= r.seconds for b, r in zip(bound, ref, strict=True))
    ref_cpu = _median(r.cpu or 0.0 for r in ref)
    nginx = _median(r.server_cpu or 0.0 for r in ref)
    floor_cpu = _median(_cpu(r) + hashes.total for r in ref)
    used = _median(_cpu(e) for e in envpack)
    note = (
        f"floor, pair by pair: max({ref_name} wall, ({ref_name} CPU + nginx CPU during it + "
        f"md5, sha256 and CRC-32 CPU) / {n} cores); medians: {ref_name} wall "
        f"{_median(r.seconds for r in ref):.2f} s, CPU bound ({ref_cpu:.2f} + {nginx:.2f} + "
        f"{hashes.total:.2f}) / {n} = {_median(bound):.2f} s, the CPU bound set the floor in "
        f"{by_cpu} of {len(ref)} pairs; envpack and nginx used {used:.2f} core-seconds against "
        f"the floor's {floor_cpu:.2f} ({used / floor_cpu:.2f}x)"
    )
    return Row(
        key,
        measure,
        _spread([e.seconds for e in envpack]),
        f"{_spread(floors)} CPU floor",
        f"{ratio:.2f}x",
        "— (a bound, not a goal: see README)",
        "n/a",
        note,
    )


def floor_rows(got: dict[str, list[Sample]], hashes: HashCpu, n: int) -> list[Row]:
    return [
        floor_row(
            "fetch_floor",
            "fetch phase vs its CPU floor: curl's wall, or curl + nginx + hashing CPU over the "
            "cores",
            got["fetch"],
            got["curl"],
            "curl",
            hashes,
            n,
        ),
        floor_row(
            "cold_floor",
            "cold build vs its CPU floor: curl + cat's wall, or curl + cat + nginx + hashing "
            "CPU over the cores",
            got["envpack"],
            got["floor"],
            "curl + cat",
            hashes,
            n,
        ),
    ]
