"""Progress while micromamba runs (issue 14: "never minutes of silence"), under wine's cmd.exe.

setup.bat and update.bat start a second copy of themselves in the background (``start /b``) that
prints a line every few seconds while micromamba works in the foreground: packages unpacked into
the work folder's package cache, conda-meta records, seconds. The micromamba stand-in, told
STANDIN_SLOW_MS, unpacks each package where 2.8.1 does (``pkgs\\<scheme>\\<host>\\...\\<dist>``)
and, told STANDIN_PACE, pauses after the first package and after half the records until the
heartbeat has counted four times: the lines are then certain, however slow the machine, and no
test here depends on timing. The heartbeat stops when micromamba's step.log is no longer held
open (what Ctrl-C and "Y" leave behind): a stand-in holds it (tests/standin/hold_standin.c).
"""

from __future__ import annotations

import re
import shutil
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from wine import Demo, Result, Wine, build_demo, get_wine, hold_standin, shutdown, win_path

pytestmark = pytest.mark.wine

BUNDLE_DIR = "bundle & co (x86)!^ é"
PREFIX_DIR = "env & more (x86), [v1] {b} #2 é"
# setup.bat's progress line, as a user reads it
PROGRESS = re.compile(
    r"^setup: (\d+) s: (\d+) of (\d+) packages unpacked, (\d+) of (\d+) installed$", re.MULTILINE
)


@pytest.fixture(scope="session")
def wine() -> Iterator[Wine]:
    yield get_wine()
    shutdown()


@pytest.fixture(scope="session")
def demo(std_channel: Path, tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return build_demo(std_channel, tmp_path_factory.mktemp("demo-build"))


def unpack(demo: Demo, parent: Path) -> Path:
    parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(demo.zip) as zf:
        zf.extractall(parent)
    return parent / demo.name


def package_urls(bundle: Path) -> list[str]:
    """The bundle's own list of packages (env.txt), in install order."""
    return [line for line in (bundle / "env.txt").read_text().split() if "://" in line]


def run_setup(wine: Wine, bundle: Path, prefix: Path, env: dict[str, str]) -> Result:
    return wine.run_bat(
        bundle / "setup.bat", [win_path(prefix), "/S"], cwd=prefix.parent, env=env, timeout=600
    )


def progress(out: str) -> list[tuple[int, int, int]]:
    """(seconds, unpacked, installed) of each progress line, each line's totals checked."""
    lines = []
    for m in PROGRESS.finditer(out):
        seconds, unpacked, total1, installed, total2 = (int(g) for g in m.groups())
        assert total1 == total2, m.group(0)
        lines.append((seconds, unpacked, installed, total1))
    return [(s, u, i) for s, u, i, _ in lines]


def test_progress_lines_while_micromamba_works(wine: Wine, demo: Demo, tmp_path: Path) -> None:
    bundle = unpack(demo, tmp_path / BUNDLE_DIR)
    prefix = tmp_path / "target" / PREFIX_DIR
    prefix.parent.mkdir(parents=True)
    work = prefix.with_name(prefix.name + ".envpack-work")
    urls = package_urls(bundle)
    total = len(urls)
    assert total >= 3, urls  # a first package, a half, and the rest
    env = {"STANDIN_SLOW_MS": "200", "STANDIN_PACE": win_path(work / "hb-meta.txt")}
    result = run_setup(wine, bundle, prefix, env)
    out = result.out
    assert result.rc == 0, out

    lines = progress(out)
    assert len(lines) >= 2, out
    assert all(f" of {total} installed" in m.group(0) for m in PROGRESS.finditer(out)), out
    counts = [(u, i) for _, u, i in lines]
    # a line only when the counts have changed: each line further on than the one before
    assert counts == sorted(counts) and len(set(counts)) == len(counts), out
    assert [s for s, _, _ in lines] == sorted(s for s, _, _ in lines), out
    # seen while micromamba was still at work: the first package unpacked, nothing installed;
    # then a line with records written but not all of them
    assert (1, 0) in counts, out
    assert any(u == total and 0 < i < total for u, i in counts), out
    # all of them between the announcement and the result
    found = [m.start() for m in PROGRESS.finditer(out)]
    assert out.index("setup: installing into") < found[0]
    assert found[-1] < out.index("setup: installed")

    # micromamba's own output is in the log, the progress lines are not
    log = (prefix / "envpack-install.log").read_text("latin-1")
    assert log.count("Linking ") == total, log
    assert "Transaction finished" in log
    assert "micromamba exit code: 0" in log
    assert "packages unpacked" not in log
    # the heartbeat had ended before the work folder went: nothing of it is left anywhere
    assert not work.exists()
    assert not (prefix / ".envpack-incomplete").exists()
    assert sorted(p.name for p in prefix.iterdir() if p.name.startswith(("hb", "mm."))) == []


def test_failing_micromamba_after_progress_still_exits_10(
    wine: Wine, demo: Demo, tmp_path: Path
) -> None:
    bundle = unpack(demo, tmp_path / BUNDLE_DIR)
    prefix = tmp_path / "target" / PREFIX_DIR
    prefix.parent.mkdir(parents=True)
    work = prefix.with_name(prefix.name + ".envpack-work")
    last = package_urls(bundle)[-1]
    package = next(
        p for p in bundle.rglob("*.conda") if p.name == last.split("#")[0].rsplit("/", 1)[1]
    )
    damaged = bytearray(package.read_bytes())
    damaged[len(damaged) // 2] ^= 0x01  # same size: setup.bat's check passes, the md5 does not
    package.write_bytes(bytes(damaged))
    env = {"STANDIN_SLOW_MS": "200", "STANDIN_PACE": win_path(work / "hb-meta.txt")}
    result = run_setup(wine, bundle, prefix, env)
    out = result.out
    assert result.rc == 10, out
    key = f"critical libmamba Download error (7) Couldn't connect to server [{last.split('#')[0]}]"
    assert key in out
    # progress first (the first package unpacked while micromamba worked), then its messages
    counts = [(u, i) for _, u, i in progress(out)]
    assert (1, 0) in counts, out
    assert max(m.start() for m in PROGRESS.finditer(out)) < out.index(key)
    assert out.index(key) < out.index("setup: micromamba failed (exit code 1)")
    log = (prefix / "envpack-install.log").read_text("latin-1")
    assert key in log
    assert "result: FAILED, exit code 10" in log
    assert (prefix / ".envpack-incomplete").is_file()


def heartbeat_lines(script: Path, work: Path, prefix: Path, say: str, mode: str) -> list[str]:
    """Wrapper lines that run SCRIPT as its own background heartbeat would be run (the variables
    :hb_start leaves it), in the foreground."""
    return [
        'set "EP_HEARTBEAT=1"',
        f'set "EP_WORK={win_path(work)}"',
        f'set "EP_PREFIX={win_path(prefix)}"',
        f'set "EP_HB_SAY={say}"',
        f'set "EP_HB_MODE={mode}"',
    ]


def test_heartbeat_stops_at_mm_done(wine: Wine, demo: Demo, tmp_path: Path) -> None:
    """micromamba could not even be started (no step.log): setup.bat's mm.done ends it."""
    bundle = unpack(demo, tmp_path / "bundle")
    work = tmp_path / "env.envpack-work"
    (work / "pkgs").mkdir(parents=True)
    (work / "mm.done").write_bytes(b"")
    before = [
        *heartbeat_lines(bundle / "setup.bat", work, tmp_path / "env", "setup", "install"),
        'set "EP_HB_TOTAL=3"',
        'set "EP_HB_BASE=0"',
    ]
    result = wine.run_bat(bundle / "setup.bat", [], before=before, timeout=300)
    assert result.rc == 0, result.out
    assert (work / "hb.end").is_file()
    assert not (work / "hb.free").exists()
    assert "packages" not in result.out  # nothing happened: nothing to say


def update_bundle(tmp: Path) -> Path:
    """A real update bundle (tests/update_factory.py), unpacked: its update.bat is the script."""
    from update_factory import build_full, build_update, extract, make_versions

    v = make_versions(tmp / "versions")
    build_full(v, "v1")
    (zipped,) = build_update(v, "v2", v.bundles["v1"], tmp / "dist")
    return extract(zipped, tmp / "update")


def rewrites(path: Path, count: int, limit: float = 300) -> None:
    """Wait until PATH has been rewritten COUNT times (the heartbeat rewrites it once per count)."""
    seen: int | None = path.stat().st_mtime_ns if path.exists() else None
    changes = 0
    end = time.monotonic() + limit
    while changes < count:
        assert time.monotonic() < end, f"{path} was not rewritten {count} times"
        time.sleep(0.05)
        if path.exists() and path.stat().st_mtime_ns != seen:
            seen = path.stat().st_mtime_ns
            changes += 1


def test_update_heartbeat_counts_removals_and_ends_when_step_log_is_free(
    wine: Wine, tmp_path: Path
) -> None:
    """update.bat's heartbeat in its removal mode, and the end that stands for Ctrl-C: while a
    program holds step.log open (cmd.exe's redirection for micromamba does so, without write
    sharing), the heartbeat goes on; once it lets go, and without mm.done, the heartbeat ends
    and writes hb.end."""
    script = update_bundle(tmp_path) / "update.bat"
    prefix = tmp_path / "env"
    work = tmp_path / "env.envpack-update"
    meta = prefix / "conda-meta"
    meta.mkdir(parents=True)
    for name in ("a-1-0", "b-1-0", "c-1-0"):
        (meta / f"{name}.json").write_text("{}")
    (work / "pkgs").mkdir(parents=True)
    step_log = work / "step.log"
    step_log.write_bytes(b"")
    ready, stop = tmp_path / "ready", tmp_path / "stop"
    hold = hold_standin()
    before = [
        f'start "" /b "{win_path(hold)}" "{win_path(step_log)}" "{win_path(ready)}" "{win_path(stop)}"',
        f'for /l %%I in (1,1,600) do if not exist "{win_path(ready)}" ping -n 2 127.0.0.1 >nul',
        *heartbeat_lines(script, work, prefix, "update", "remove"),
        'set "EP_HB_TOTAL=3"',
        'set "EP_HB_BASE=3"',
    ]
    box: dict[str, Result] = {}
    runner = threading.Thread(
        target=lambda: box.update(r=wine.run_bat(script, [], before=before, timeout=600))
    )
    runner.start()
    try:
        listing = work / "hb-meta.txt"
        rewrites(listing, 2)
        (meta / "a-1-0.json").unlink()
        (meta / "b-1-0.json").unlink()
        rewrites(listing, 4)  # counted (and printed: changed, and 5 s on) while held
        assert not (work / "hb.end").exists()
        assert not (work / "hb.free").exists()
    finally:
        stop.write_bytes(b"")  # the holder lets go: micromamba is gone
        runner.join(timeout=600)
    result = box["r"]
    assert result.rc == 0, result.out
    assert re.search(r"^update: \d+ s: 2 of 3 packages removed$", result.out, re.MULTILINE), (
        result.out
    )
    assert (work / "hb.end").is_file()
    assert (work / "hb.free").is_file()  # it ended because step.log was free...
    assert not (work / "mm.done").exists()  # ...not because update.bat said so
    shutil.rmtree(work)


@pytest.mark.parametrize(
    ("time_value", "seconds"),
    [
        ("09:05:07.12", "32707"),  # Windows' %TIME%: H:MM:SS.cc, 24 hours
        (" 9:05:07.12", "32707"),  # before 10 o'clock the hour has a space, not a zero
        ("13.05.07,12", "47107"),  # a locale's own separators
        ("08:09:08,00", "29348"),  # "08" and "09" are no octal numbers here
        ("11:48 AM", ""),  # wine's %TIME%: not read (the heartbeat counts its waits instead)
    ],
)
def test_heartbeat_clock_reads_time(
    wine: Wine, tmp_path: Path, time_value: str, seconds: str
) -> None:
    """:hb_clock, the heartbeat's seconds, on the forms %TIME% takes (a TIME variable that is set
    hides the built-in one, in cmd.exe as in wine)."""
    fragment = (Path(__file__).parents[1] / "stubs" / "heartbeat.bat").read_bytes()
    script = tmp_path / "clock.bat"
    script.write_bytes(
        b"@echo off\r\nsetlocal EnableExtensions DisableDelayedExpansion\r\n"
        + f'set "TIME={time_value}"\r\n'.encode()
        + b"call :hb_clock\r\necho NOW=[%EP_HB_NOW%]\r\nexit /b 0\r\n"
        + fragment
    )
    result = wine.run_bat(script)
    assert result.rc == 0, result.out
    assert f"NOW=[{seconds}]" in result.out, result.out
