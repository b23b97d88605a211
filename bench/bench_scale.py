"""The scale mode of bench/run.py (``--scale10g``): a 10 GB channel with one 4.5 GiB package.

Run on its own (disk and time): the channel (10 GB, bigconda's streamed packages) is generated
into --work, then deleted at the end unless --keep. At most three copies of the bytes exist at
once (channel, cache, and one of: bundle, cp copy, split parts); each is removed as soon as it is
measured. Measured, with envpack's peak RSS (/usr/bin/time -v) beside each time:

- cold and warm build, ``verify`` and ``inspect`` of the bundle, each also on the smallest 15% of
  the same channel (about 1.5 GB, the default run's size), so "flat" compares like with like;
- ``bsdtar -tf`` and ``7zz l`` list the bundle (exit 0, as many members as Python's zipfile);
- ``build --split fat32``: the parts joined (``cat`` order) are the whole zip's bytes (sha256),
  and open as a zip.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from bench_common import (
    BenchError,
    Config,
    Deaths,
    Report,
    Row,
    Sample,
    clean_env,
    envpack_argv,
    med,
    rm,
    rss_mb,
    run_retrying,
    run_timed,
    secs,
    verdict,
    write_recipe,
)
from make_channel import MB, PlannedPkg, ensure_channel, plan, plan_hash, small_subset
from nginx_server import NginxServer, find_nginx

GB = 1 << 30
RSS_LIMIT_MB = 200
FLAT = 1.10

SCALE_ROW_KEYS = (
    "scale_cold",
    "scale_warm",
    "scale_verify",
    "scale_inspect",
    "scale_bsdtar",
    "scale_7zz",
    "scale_split",
)


@dataclass
class Listing:
    """The full bundle, seen by other tools (outside every envpack timing)."""

    members: int  # by Python's zipfile
    largest: int
    size: int
    sha256: str
    # tool -> (status, members listed, the run), or None when the tool is not installed
    tools: dict[str, tuple[str, int | None, Sample | None] | None] = field(default_factory=dict)


@dataclass
class SplitCheck:
    sample: Sample
    parts: int
    largest_part: int
    sha256: str
    members: int | str  # of the joined bytes read as a zip, or why they are not one
    names: str


class JoinedParts(io.RawIOBase):
    """The split parts read as one file (what ``cat NAME.001 NAME.002 ... >NAME`` would write),
    without writing it: another 10 GB of disk is not there to spare."""

    def __init__(self, parts: list[Path]) -> None:
        self._files = [p.open("rb") for p in parts]
        self._starts: list[int] = []
        offset = 0
        for p in parts:
            self._starts.append(offset)
            offset += p.stat().st_size
        self.size = offset
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._pos >= self.size:
            return 0
        i = bisect.bisect_right(self._starts, self._pos) - 1
        end = self._starts[i + 1] if i + 1 < len(self._starts) else self.size
        fh = self._files[i]
        fh.seek(self._pos - self._starts[i])
        view = memoryview(buffer)[: min(len(buffer), end - self._pos)]
        n = fh.readinto(view)
        self._pos += n
        return n

    def close(self) -> None:
        for fh in self._files:
            fh.close()
        super().close()


def sha256_of(stream: io.BufferedIOBase | io.BufferedReader) -> str:
    h = hashlib.sha256()
    for chunk in iter(lambda: stream.read(1 << 20), b""):
        h.update(chunk)
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return sha256_of(fh)


def zip_members(source: Path | IO[bytes]) -> tuple[int, int]:
    """(member count, largest member's size) from the central directory."""
    with zipfile.ZipFile(source) as zf:
        infos = zf.infolist()
    return len(infos), max((i.file_size for i in infos), default=0)


def count_7zz(text: str) -> int | None:
    """Files plus folders from the summary line of ``7zz l`` (e.g. ``... 85 files, 2 folders``)."""
    m = re.search(r"(\d+) files(?:, (\d+) folders)?\s*$", text.strip())
    if m is None:
        return None
    return int(m.group(1)) + int(m.group(2) or 0)


def run_scale(cfg: Config, log: Callable[[str], None], *, keep: bool = False) -> Report:
    if find_nginx() is None:
        raise BenchError("nginx not found; install it with: apt-get install nginx-light")
    cfg.work.mkdir(parents=True, exist_ok=True)
    pkgs = plan(cfg.scale)
    total = sum(p.size for p in pkgs)
    channel_dir = cfg.work / f"channel-{cfg.scale.name}-{plan_hash(pkgs)}"
    have = (channel_dir / ".complete").is_file()
    need = (0 if have else total) + 2 * total + GB  # channel, then cache + one more copy
    free = shutil.disk_usage(cfg.work).free
    if free < need:
        raise BenchError(
            f"the scale mode needs about {need / GB:.0f} GiB free in {cfg.work}, which has "
            f"{free / GB:.0f} GiB; free some, or give another --work"
        )
    channel, pkgs = ensure_channel(cfg.work, cfg.scale, log)
    run_dir = Path(tempfile.mkdtemp(prefix="scale-", dir=cfg.work))
    try:
        with NginxServer(channel, run_dir / "nginx") as srv:
            log(f"nginx serving {channel.name} at {srv.url}")
            report = _measure_scale(cfg, srv.url, pkgs, run_dir, log)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
        if not keep:
            shutil.rmtree(channel, ignore_errors=True)
    small = small_subset(pkgs, cfg.scale.small_fraction)
    sizes = sorted(p.size for p in pkgs)
    report.context.update(
        scale=(
            f"{cfg.scale.name}: {len(pkgs)} generated .conda packages (bench/bigconda.py), "
            f"{total / MB:.0f} MB (largest {sizes[-1] / MB:.0f} MB, then "
            f"{sizes[-2] / MB:.0f} MB); the small build takes the {len(small)} smallest "
            f"({sum(p.size for p in small) / MB:.0f} MB)"
            + ("; channel kept" if keep else "; channel deleted after the run")
        ),
        reps=f"{cfg.reps} per measure",
        stats=(
            "times are medians (min–max); RSS is the median peak, and its ratio the 10 GB "
            "figure over the 1.5 GB one, both of this run"
        ),
    )
    return report


def _measure_scale(
    cfg: Config, url: str, pkgs: list[PlannedPkg], run: Path, log: Callable[[str], None]
) -> Report:
    ep = envpack_argv()
    dummy = run / "micromamba.exe"
    dummy.write_bytes(b"MZ envpack bench stand-in; the generated channel has no micromamba\n")
    mm = ["--micromamba-exe", str(dummy)]
    small_pkgs = small_subset(pkgs, cfg.scale.small_fraction)
    full = write_recipe(run / "scalefull.yaml", url, [p.name for p in pkgs])
    small = write_recipe(run / "scalesmall.yaml", url, [p.name for p in small_pkgs])
    t = cfg.timeout
    crashes = Deaths()
    rss = run / "rss.txt"
    for recipe in (full, small):
        env = clean_env(ENVPACK_CACHE_DIR=str(run / "lock-cache"))
        run_retrying([*ep, "lock", str(recipe), *mm, "-q"], crashes, env=env, timeout=t)
    cache = run / "cache"
    env = clean_env(ENVPACK_CACHE_DIR=str(cache))
    out = run / "out"

    def envpack(*args: str) -> Sample:
        return run_retrying([*ep, *args], crashes, env=env, timeout=t, rss_file=rss)

    def build(recipe: Path, *flags: str) -> Sample:
        rm(out)
        # --no-sfx: one container whatever the default, or 10 GB more disk than budgeted
        argv = ["build", str(recipe), "--locked", *mm, "-q", "--no-sfx", "-o", str(out)]
        return envpack(*argv, *flags)

    def bundle_of(recipe: Path) -> Path:
        path = out / f"{recipe.stem}-win-64.zip"
        if not path.is_file():
            raise BenchError(f"envpack build wrote no {path.name}")
        return path

    samples: dict[str, dict[str, list[Sample]]] = {"small": {}, "full": {}}
    listing: Listing | None = None
    cp: list[Sample] = []
    split: SplitCheck | None = None
    for size, recipe in (("small", small), ("full", full)):
        got = samples[size]
        for k in ("cold", "verify", "inspect", "warm"):
            got[k] = []
        log(f"{size}: {recipe.stem}, {cfg.reps} repetition(s)")
        for i in range(cfg.reps):
            rm(cache)
            got["cold"].append(build(recipe))
            bundle = bundle_of(recipe)
            got["verify"].append(envpack("verify", str(bundle)))
            got["inspect"].append(envpack("inspect", str(bundle)))
            if size == "full" and i == 0:
                listing = _listing(bundle, t, log)
            rm(out)
            got["warm"].append(build(recipe))
            log(
                f"  {size} {i + 1}/{cfg.reps}: "
                + ", ".join(f"{k} {v[-1].seconds:.1f} s" for k, v in got.items())
            )
            rm(out)
        if size == "full":
            cp = _cp_reference(cache, run, cfg.reps, t)
            split = _split_check(build, full, out, cfg.scale.split, log)
            rm(out)
        rm(cache)
    assert listing is not None and split is not None
    rows = _scale_rows(samples, listing, cp, split, pkgs, small_pkgs)
    died = len(crashes.signals)
    deaths = f"{died} of {crashes.runs} envpack runs died of a signal and were run again"
    return Report(rows, {"deaths": deaths}, crashes.signals)


def _listing(bundle: Path, timeout: float, log: Callable[[str], None]) -> Listing:
    """Outside any envpack timing: the bundle's members by Python's zipfile, its sha256 (for
    the split check), and what bsdtar and 7zz list."""
    log(f"  listing {bundle.name} ({bundle.stat().st_size / MB:.0f} MB)")
    count, largest = zip_members(bundle)
    listing = Listing(count, largest, bundle.stat().st_size, file_sha256(bundle))
    for tool, argv in (("bsdtar", ["bsdtar", "-tf"]), ("7zz", ["7zz", "l"])):
        if shutil.which(argv[0]) is None:
            listing.tools[tool] = None
            continue
        try:
            sample = run_timed([*argv, str(bundle)], env=clean_env(), timeout=timeout)
        except BenchError as exc:
            listing.tools[tool] = (str(exc), None, None)
            continue
        listed = len(sample.stdout.splitlines()) if tool == "bsdtar" else count_7zz(sample.stdout)
        listing.tools[tool] = ("exit 0", listed, sample)
    return listing


def _cp_reference(cache: Path, run: Path, reps: int, timeout: float) -> list[Sample]:
    """cp of the cached package files: the same bytes as the warm build writes, no zip."""
    cached = [p for p in (cache / "pkgs").rglob("*.conda")]
    target = run / "ref-cp"
    samples = []
    for _ in range(reps):
        rm(target)
        target.mkdir()
        argv = ["cp", "--reflink=never", "-t", str(target), *map(str, cached)]
        samples.append(run_timed(argv, env=clean_env(), timeout=timeout))
        rm(target)
    return samples


def _split_check(
    build: Callable[..., Sample],
    recipe: Path,
    out: Path,
    split: str,
    log: Callable[[str], None],
) -> SplitCheck:
    log(f"  build --split {split}, then the parts joined against the whole zip")
    sample = build(recipe, "--split", split)
    # the split form gets a folder of its own (join.bat and README.txt have fixed names)
    parts = sorted(p for p in out.rglob("*.zip.[0-9][0-9][0-9]") if p.is_file())
    if not parts:
        wrote = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
        raise BenchError(f"build --split {split} wrote no NAME.001: {wrote}")
    joined = io.BufferedReader(JoinedParts(parts), 1 << 20)
    try:
        digest = sha256_of(joined)
        members: int | str
        try:
            members = zip_members(joined)[0]
        except zipfile.BadZipFile as exc:
            members = f"not a zip ({exc})"
    finally:
        joined.close()
    return SplitCheck(
        sample,
        len(parts),
        max(p.stat().st_size for p in parts),
        digest,
        members,
        f"{parts[0].name} … {parts[-1].name}",
    )


def _scale_rows(
    samples: dict[str, dict[str, list[Sample]]],
    listing: Listing,
    cp: list[Sample],
    split: SplitCheck,
    pkgs: list[PlannedPkg],
    small_pkgs: list[PlannedPkg],
) -> list[Row]:
    total = sum(p.size for p in pkgs)
    small_total = sum(p.size for p in small_pkgs)
    rows: list[Row] = []
    labels = {
        "cold": "cold build (`build`, empty cache)",
        "warm": "warm build (`build`, all cached)",
        "verify": "`verify` of the bundle",
        "inspect": "`inspect` of the bundle",
    }
    for kind, label in labels.items():
        big, little = samples["full"][kind], samples["small"][kind]
        big_mb, little_mb = rss_mb(big), rss_mb(little)
        # inspect does not read the package bytes: a rate would mean nothing
        note = ""
        if kind != "inspect":
            note = (
                f"{total / MB / med(big):.0f} MB/s "
                f"({small_total / MB / med(little):.0f} MB/s at {small_total / MB:.0f} MB)"
            )
        if kind == "warm":
            note += f"; `cp` of the same package files {secs(cp)} ({med(big) / med(cp):.2f}x)"
        if kind == "cold":
            zip64 = " (zip64)" if listing.largest >= 4 * GB else " (no zip64 at this scale)"
            note += (
                f"; the bundle is {listing.size / MB:.0f} MB, {listing.members} members, "
                f"the largest {listing.largest / MB:.0f} MB{zip64}"
            )
        if big_mb is None or little_mb is None:
            note += "; " if note else ""
            note += "no /usr/bin/time (apt-get install time): no memory figures"
            ref = f"{secs(little)} at {small_total / MB:.0f} MB"
            goal = f"peak RSS < {RSS_LIMIT_MB} MB, flat"
            rows.append(Row(f"scale_{kind}", label, secs(big), ref, "", goal, "n/a", note))
            continue
        growth = big_mb / little_mb
        rows.append(
            Row(
                f"scale_{kind}",
                f"{label} of {total / MB:.0f} MB",
                f"{secs(big)}, {big_mb:.0f} MB peak RSS",
                f"{secs(little)}, {little_mb:.0f} MB at {small_total / MB:.0f} MB",
                f"{growth:.2f}x RSS",
                f"peak RSS < {RSS_LIMIT_MB} MB, flat (≤ {FLAT:.2f}x)",
                verdict(big_mb < RSS_LIMIT_MB and growth <= FLAT),
                note,
            )
        )
    for tool, label in (("bsdtar", "`bsdtar -tf` lists the bundle"), ("7zz", "`7zz l` lists it")):
        got = listing.tools.get(tool)
        if got is None:
            rows.append(Row(f"scale_{tool}", label, "n/a (not installed)", "", "", "", "n/a"))
            continue
        status, listed, sample = got
        rows.append(
            Row(
                f"scale_{tool}",
                label,
                f"{status}, {listed} members" if sample else status,
                f"{listing.members} members (Python zipfile)",
                f"{sample.seconds:.2f} s" if sample else "",
                "exit 0, every member",
                verdict(status == "exit 0" and listed == listing.members),
                f"largest member {listing.largest / MB:.0f} MB",
            )
        )
    same = split.sha256 == listing.sha256
    rows.append(
        Row(
            "scale_split",
            "`build --split` parts joined (`cat` order) vs the whole zip",
            f"{split.parts} parts, sha256 {split.sha256[:12]}",
            f"sha256 {listing.sha256[:12]}",
            "same bytes" if same else "differ",
            "same bytes",
            verdict(same),
            f"{split.names}, largest part {split.largest_part / MB:.0f} MB; the joined bytes "
            f"as a zip: {split.members} members; the split build took {secs([split.sample])}",
        )
    )
    return rows
