"""bench/run.py at a tiny scale (3 packages, 3 MB; the scale mode with a 4 MB "huge" package),
so the benchmark machinery cannot rot.

It checks that every row is measured and reported, not how fast anything is.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
import re
import shutil
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"

# What each row of the table must start with, in order (the bench's ROW_KEYS).
ROW_LABELS = {
    "fetch": "fetch phase alone (envpack's Fetcher",
    "cold": "cold build, empty cache (`build`, one container) vs curl, then `cat`",
    "cold_curl": "cold build (`build`) vs curl alone",
    "warm": "warm build, all cached (`build`: one container) vs plain `cp`",
    "warm_zip": "warm build (`build`) vs Info-ZIP `zip -0`",
    "warm_bsdtar": "warm build (`build`) vs bsdtar's zip writer",
    "sfx": "second container: `build --sfx`",
    "warm_verify": "warm build, `--verify-cache`",
    "solve": "solve `python=3.9 pip` win-64",
    "update": "update bundle, one ~2 MB package changed",
    "multi": "two environments sharing most packages",
    "rss_small": "peak RSS, cold build of",
    "rss_large": "peak RSS, cold build of",
    "startup": "CLI start-up (`envpack --help`)",
}
TIME_CELL = re.compile(r"^\d+\.\d\d s( \(\d+\.\d\d–\d+\.\d\d\))?")


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
    timed = ["fetch", "cold", "cold_curl", "warm", "warm_zip", "sfx", "warm_verify", "startup"]
    if shutil.which("bsdtar"):
        timed.append("warm_bsdtar")
    for key in timed:
        assert TIME_CELL.match(by_key[key][1]), by_key[key]  # envpack's time
        assert TIME_CELL.match(by_key[key][2]), by_key[key]  # the reference's
        assert re.fullmatch(r"-?\d+\.\d\dx", by_key[key][3]), by_key[key]
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
    # the one-container build and the --sfx build say what they wrote
    assert "the default build wrote: benchfull-win-64.zip" in written
    assert re.search(r"--sfx wrote: [^;]*benchfull-win-64-setup\.bat", written)
    assert "3 generated .conda packages" in written
    # the run cleaned up after itself and kept only the generated channel for the next run
    kept = sorted(p.name for p in (tmp_path / "work").iterdir())
    assert len(kept) == 1 and kept[0].startswith("channel-tiny-"), kept


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
