"""update.bat when micromamba.exe cannot be started from its work folder, under wine's cmd.exe.

An antivirus may quarantine micromamba.exe, or refuse to start it, after update.bat copied it
into the work folder: cmd.exe then only says that it does not recognize the command (exit code
9009). update.bat names the file and what to do, logs it, and exits 9 (as setup.bat does), not
10 ("micromamba failed"): the packages are fine. What it says about the environment stays true:
when no micromamba ran before in this update, nothing was changed and no update marker is left;
after an earlier step or an interrupted run, the marker stays and the next run finishes.

A micromamba.exe that cannot start is the stand-in with its bytes zeroed (same size); one that
vanishes while it runs (quarantined mid-run) renames itself and exits 1; one blocked between the
steps does the remove step, then leaves zeroed bytes of its size under its own name. The update
bundle and the v1 prefix are tests/test_update_bat.py's.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from test_update_bat import (
    SOURCE,
    V1,
    V2,
    compile_standin,
    meta,
    recorded,
    run,
    standin_runs,
    v1_prefix,
    v1_to_v2,
)
from wine import MINGW_GCC, Wine, get_wine, mingw_missing, win_path

pytestmark = pytest.mark.wine

Update = tuple[Path, dict[str, str]]

# Quarantined while it runs: the file leaves its folder (renamed, as a running exe can be on
# Windows), then the program fails.
VANISHING_SOURCE = r"""
#include <windows.h>
#include <wchar.h>
int wmain(void) {
    wchar_t self[4096], gone[4200];
    if (!GetModuleFileNameW(NULL, self, 4096)) return 2;
    swprintf(gone, 4200, L"%ls.quarantined", self);
    if (!MoveFileExW(self, gone, MOVEFILE_REPLACE_EXISTING)) return 3;
    return 1;
}
"""


# Blocked between the steps: the stand-in's remove, then (a running exe can be renamed, not
# rewritten) the file moves aside and as many zero bytes take its name, so cmd.exe cannot start
# the install step; exit 0, as the remove did its work.
BLOCKED_AFTER_REMOVE_SOURCE = r"""
#define wmain standin_wmain
#include "update_micromamba_standin.c"
#undef wmain
int wmain(int argc, wchar_t **argv) {
    int rc = standin_wmain(argc, argv);
    if (rc != 0 || wcscmp(argv[1], L"remove")) return rc;
    wchar_t self[4096], aside[4200];
    WIN32_FILE_ATTRIBUTE_DATA fa;
    if (!GetModuleFileNameW(NULL, self, 4096)) return 2;
    if (!GetFileAttributesExW(self, GetFileExInfoStandard, &fa)) return 3;
    swprintf(aside, 4200, L"%ls.quarantined", self);
    if (!MoveFileExW(self, aside, MOVEFILE_REPLACE_EXISTING)) return 4;
    HANDLE h = CreateFileW(self, GENERIC_WRITE, 0, NULL, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE) return 5;
    void *zeros = calloc(fa.nFileSizeLow, 1);
    DWORD wrote = 0;
    BOOL ok = zeros && WriteFile(h, zeros, fa.nFileSizeLow, &wrote, NULL);
    CloseHandle(h);
    return ok && wrote == fa.nFileSizeLow ? 0 : 6;
}
"""


@pytest.fixture(scope="module")
def wine() -> Wine:
    return get_wine()


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_standin(tmp_path_factory.mktemp("standin"))


@pytest.fixture(scope="module")
def update(tmp_path_factory: pytest.TempPathFactory) -> Update:
    return v1_to_v2(tmp_path_factory.mktemp("upd"))


@pytest.fixture(scope="module")
def vanishing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reason = mingw_missing()
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("vanishing")
    source = folder / "vanishing.c"
    source.write_text(VANISHING_SOURCE)
    exe = folder / "micromamba.exe"
    argv = [MINGW_GCC, "-O2", "-municode", "-static", "-Wall", "-o", str(exe), str(source)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    yield exe


@pytest.fixture(scope="module")
def blocked_after_remove(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reason = mingw_missing()
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("blocked_after_remove")
    source = folder / "blocked_after_remove.c"
    source.write_text(BLOCKED_AFTER_REMOVE_SOURCE)
    exe = folder / "micromamba.exe"
    argv = [MINGW_GCC, "-O2", "-municode", "-static", "-Wall", "-I", str(SOURCE.parent)]
    argv += ["-o", str(exe), str(source)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    yield exe


def snapshot(prefix: Path) -> dict[str, bytes]:
    """Every file of the prefix with its bytes, but the log update.bat leaves there."""
    return {
        str(p.relative_to(prefix)): p.read_bytes()
        for p in sorted(prefix.rglob("*"))
        if p.is_file() and p.name != "envpack-update.log"
    }


def blocked(exe: Path) -> bytes:
    """Zero EXE's bytes, keeping its size (cmd.exe cannot start it); return the good bytes."""
    good = exe.read_bytes()
    exe.write_bytes(bytes(len(good)))
    return good


def log_of(prefix: Path) -> str:
    return (prefix / "envpack-update.log").read_text("latin-1")


def not_started_line(prefix: Path) -> str:
    work = win_path(Path(f"{prefix}.envpack-update"))
    return f'update: "{work}\\bin\\micromamba.exe" could not be started: exit code 9009.'


ANTIVIRUS = (
    "update: an antivirus may have blocked or quarantined it: allow it, then run update.bat again."
)


def test_remove_step_that_cannot_start_changes_nothing(
    wine: Wine, standin: Path, update: Update, tmp_path: Path
) -> None:
    folder, h = update
    prefix = v1_prefix(tmp_path, standin, h["old"])
    good = blocked(prefix / "Scripts" / "micromamba.exe")
    before = snapshot(prefix)
    rc, out = run(wine, folder, prefix)
    assert rc == 9, out
    assert not_started_line(prefix) in out, out
    assert ANTIVIRUS in out
    assert f'update: nothing was changed in "{win_path(prefix)}".' in out
    assert "could not remove" not in out and "micromamba failed" not in out
    assert "unfinished" not in out
    # the environment exactly as it was: no record, no marker, the old lock; only the log added
    assert snapshot(prefix) == before
    assert meta(prefix) == V1 and recorded(prefix) == h["old"]
    assert not (prefix / ".envpack-update").exists()
    assert not Path(f"{prefix}.envpack-update").exists()
    log = log_of(prefix)
    assert "micromamba remove exit code: 9009" in log
    assert "micromamba.exe could not be started from the work folder (remove step)" in log
    assert "nothing was changed; the update marker was removed" in log
    assert "result: FAILED, exit code 9" in log
    assert standin_runs(prefix) == []
    # allowed again: the next run is a fresh one (no "interrupted"), and updates
    (prefix / "Scripts" / "micromamba.exe").write_bytes(good)
    rc, out = run(wine, folder, prefix)
    assert rc == 0, out
    assert "interrupted" not in out
    assert meta(prefix) == V2 and recorded(prefix) == h["new"]


def test_install_step_that_cannot_start_keeps_the_marker(
    wine: Wine, standin: Path, update: Update, tmp_path: Path
) -> None:
    folder, h = update
    prefix = v1_prefix(tmp_path, standin, h["old"])
    # an interrupted update: removed, one package installed, marked
    rc, out = run(wine, folder, prefix, UPDATE_STANDIN_FAIL_AFTER="1")
    assert rc == 10, out
    mixed = meta(prefix)
    assert mixed not in (V1, V2)
    # the rerun has nothing left to remove: its one micromamba run is the install step
    good = blocked(prefix / "Scripts" / "micromamba.exe")
    before = snapshot(prefix)
    rc, out = run(wine, folder, prefix)
    assert rc == 9, out
    assert "interrupted; finishing it" in out
    assert "update: removing" not in out
    assert not_started_line(prefix) in out, out
    assert ANTIVIRUS in out
    assert "micromamba failed" not in out and "nothing was changed" not in out
    assert "update: the update is unfinished; run update.bat again to finish it." in out
    assert snapshot(prefix) == before  # marker kept, records as the interrupted run left them
    assert (prefix / ".envpack-update").read_text().split() == [h["old"], h["new"]]
    log = log_of(prefix)
    assert "micromamba install exit code: 9009" in log
    assert "micromamba.exe could not be started from the work folder (install step)" in log
    assert "result: FAILED, exit code 9" in log
    assert len(standin_runs(prefix)) == 2  # the first run's remove and install only
    (prefix / "Scripts" / "micromamba.exe").write_bytes(good)
    rc, out = run(wine, folder, prefix)
    assert rc == 0, out
    assert meta(prefix) == V2 and recorded(prefix) == h["new"]
    assert not (prefix / ".envpack-update").exists()


def test_install_step_that_cannot_start_after_the_remove_step_keeps_the_marker(
    wine: Wine, standin: Path, blocked_after_remove: Path, update: Update, tmp_path: Path
) -> None:
    # a fresh run: the remove step runs and succeeds, then the install step cannot start. The
    # remove step changed the environment, so the marker stays (not "nothing was changed")
    folder, h = update
    prefix = v1_prefix(tmp_path, blocked_after_remove, h["old"])
    rc, out = run(wine, folder, prefix)
    assert rc == 9, out
    assert "interrupted" not in out
    assert "update: removing app gone" in out, out
    assert not_started_line(prefix) in out, out
    assert ANTIVIRUS in out
    assert "nothing was changed" not in out
    assert "could not remove" not in out and "micromamba failed" not in out
    assert "update: the update is unfinished; run update.bat again to finish it." in out
    # the remove step's work is done (app and gone removed), nothing installed, the old lock
    assert meta(prefix) == {"lib-1.0-0", "keep-1.0-0"}
    assert recorded(prefix) == h["old"]
    assert (prefix / ".envpack-update").read_text().split() == [h["old"], h["new"]]
    log = log_of(prefix)
    assert "micromamba remove exit code: 0" in log
    assert "micromamba install exit code: 9009" in log
    assert "micromamba.exe could not be started from the work folder (install step)" in log
    assert "nothing was changed" not in log
    assert "result: FAILED, exit code 9" in log
    runs = standin_runs(prefix)
    assert len(runs) == 1 and " remove -p " in runs[0], runs
    # allowed again: the next run finishes the update (nothing left to remove, so install only)
    shutil.copy(standin, prefix / "Scripts" / "micromamba.exe")
    rc, out = run(wine, folder, prefix)
    assert rc == 0, out
    assert "interrupted; finishing it" in out
    assert "update: removing" not in out
    assert meta(prefix) == V2 and recorded(prefix) == h["new"]
    assert not (prefix / ".envpack-update").exists()
    runs = standin_runs(prefix)
    assert len(runs) == 2 and " install -p " in runs[1], runs


def test_install_step_first_in_a_fresh_run_changes_nothing(
    wine: Wine, standin: Path, update: Update, tmp_path: Path
) -> None:
    # what v2 replaces is already gone (drifted; /FORCE): nothing to remove, so the install step
    # is this update's first micromamba run, and the environment is untouched when it cannot start
    folder, h = update
    prefix = v1_prefix(tmp_path, standin, h["old"])
    for dist in ("app-1.0-0", "gone-1.0-0"):
        (prefix / "conda-meta" / f"{dist}.json").unlink()
    blocked(prefix / "Scripts" / "micromamba.exe")
    before = snapshot(prefix)
    rc, out = run(wine, folder, prefix, "/FORCE")
    assert rc == 9, out
    assert "update: removing" not in out
    assert not_started_line(prefix) in out, out
    assert f'update: nothing was changed in "{win_path(prefix)}".' in out
    assert snapshot(prefix) == before
    assert not (prefix / ".envpack-update").exists()
    log = log_of(prefix)
    assert "micromamba.exe could not be started from the work folder (install step)" in log
    assert "micromamba install exit code: 9009" in log


def test_micromamba_quarantined_while_it_runs_keeps_the_marker(
    wine: Wine, standin: Path, vanishing: Path, update: Update, tmp_path: Path
) -> None:
    # gone from the work folder after a run that did start: it may have changed the environment,
    # so the marker stays and the next run finishes the update
    folder, h = update
    prefix = v1_prefix(tmp_path, standin, h["old"])
    shutil.copy(vanishing, prefix / "Scripts" / "micromamba.exe")
    rc, out = run(wine, folder, prefix)
    assert rc == 9, out
    work = win_path(Path(f"{prefix}.envpack-update"))
    assert (
        f'update: "{work}\\bin\\micromamba.exe" was removed from the work folder after it was'
        " copied there." in out
    ), out
    assert ANTIVIRUS in out
    assert "could not remove" not in out and "nothing was changed" not in out
    assert "update: the update is unfinished; run update.bat again to finish it." in out
    assert (prefix / ".envpack-update").read_text().split() == [h["old"], h["new"]]
    log = log_of(prefix)
    assert "micromamba remove exit code: 1" in log
    assert "micromamba.exe could not be started from the work folder (remove step)" in log
    shutil.copy(standin, prefix / "Scripts" / "micromamba.exe")
    rc, out = run(wine, folder, prefix)
    assert rc == 0, out
    assert "interrupted; finishing it" in out
    assert meta(prefix) == V2 and recorded(prefix) == h["new"]


def test_usage_lists_exit_code_9(wine: Wine, update: Update) -> None:
    folder, _ = update
    result = wine.run_bat(folder / "update.bat", ["/?"], timeout=180)
    assert result.rc == 0, result.out
    text = " ".join(result.out.split())
    assert "9 work folder failed, or micromamba.exe could not be started (an antivirus?);" in text
    assert "10 micromamba failed;" in text


def test_each_micromamba_run_checks_that_it_started(update: Update) -> None:
    """Static: both runs go to the one handler on 9009 or a missing file, before their failure
    message; the handler is below both (no backward GOTO), and takes the marker away only when
    cmd.exe never started micromamba and nothing ran before (EP_TOUCHED: a resumed run, or the
    remove step done)."""
    folder, _ = update
    lines = (folder / "update.bat").read_bytes().decode().split("\r\n")
    runs = [
        i
        for i, line in enumerate(lines)
        if re.match(r'^"%EP_WORK%\\bin\\micromamba\.exe" (install|remove) ', line)
    ]
    assert len(runs) == 2
    handler = lines.index(":micromamba_not_started")
    assert handler > max(runs)
    for i in runs:
        first = next(j for j in range(i, len(lines)) if lines[j].startswith('if "%EP_MMRC%"=='))
        assert lines[first].startswith('if "%EP_MMRC%"=="0" goto :'), lines[i : first + 1]
        assert lines[first + 1 : first + 3] == [
            'if "%EP_MMRC%"=="9009" goto :micromamba_not_started',
            'if not exist "%EP_WORK%\\bin\\micromamba.exe" goto :micromamba_not_started',
        ], lines[i : first + 3]
        # nothing between the run and its checks but its end and its log
        assert all("echo update:" not in line for line in lines[i:first])
        failed = next(j for j in range(i, len(lines)) if lines[j] == 'set "EP_RC=10"')
        assert failed > first + 2
    body = lines[handler : lines.index(":post_failed")]
    assert 'set "EP_RC=9"' in body
    touched = body.index("if defined EP_TOUCHED goto :finish")
    assert touched < body.index('del /f /q "%EP_MARKER%" >nul 2>&1')
    assert body.index('if not "%EP_MMRC%"=="9009" goto :finish') < body.index(
        'del /f /q "%EP_MARKER%" >nul 2>&1'
    )
    sets = [line for line in lines if line.strip() == 'set "EP_TOUCHED=1"']
    assert len(sets) == 2  # a resumed run, and after the remove step ran
    resume = lines.index('set "EP_RESUME=1"')
    assert lines[resume + 2] == 'set "EP_TOUCHED=1"'
    assert lines[lines.index(":remove_ran") + 1] == 'set "EP_TOUCHED=1"'
