"""bench/run.py at a tiny scale (3 packages, 3 MB), so the benchmark machinery cannot rot.

It checks that every row is measured and reported, not how fast anything is.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"

# What each row of the table must start with, in order (the bench's ROW_KEYS).
ROW_LABELS = {
    "cold": "cold build, empty cache",
    "cold_floor": "cold build vs curl, then `cat`",
    "cold_fetch": "cold build's fetch phase",
    "warm": "warm build, all cached",
    "warm_bsdtar": "warm build (`--no-sfx`) vs bsdtar's zip writer",
    "warm_cp": "warm build (`--no-sfx`) vs plain `cp`",
    "warm_sfx": "warm build, default",
    "warm_verify": "warm build, `--no-sfx --verify-cache`",
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
    timed = ["cold", "cold_floor", "warm", "warm_cp", "warm_sfx", "warm_verify", "startup"]
    if shutil.which("bsdtar"):
        timed.append("warm_bsdtar")
    for key in timed:
        assert TIME_CELL.match(by_key[key][1]), by_key[key]  # envpack's time
        assert TIME_CELL.match(by_key[key][2]), by_key[key]  # the reference's
        assert re.fullmatch(r"\d+\.\d\dx", by_key[key][3]), by_key[key]
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
    assert "3 generated .conda packages" in written
    # the run cleaned up after itself and kept only the generated channel for the next run
    kept = sorted(p.name for p in (tmp_path / "work").iterdir())
    assert len(kept) == 1 and kept[0].startswith("channel-tiny-"), kept
