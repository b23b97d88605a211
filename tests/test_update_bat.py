"""update.bat's own logic under wine's cmd.exe, with a micromamba stand-in for remove/install
(tests/update_standin/): the drift check, an environment already at the target, an interrupted
update finished by the next run, a wrong base refused with the update it needs, another update's
marker, and the isolation micromamba runs in.

The prefix is laid out as setup.bat leaves it (conda-meta records named name-version-build,
Scripts\\micromamba.exe, etc\\envpack\\lock-sha256.txt); the real micromamba's side of the same
steps is tests/test_update_real.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from update_factory import Versions, build_full, build_update, extract, make_versions
from wine import MINGW_GCC, Wine, get_wine, mingw_missing, win_path

pytestmark = pytest.mark.wine

V1 = {"app-1.0-0", "lib-1.0-0", "gone-1.0-0", "keep-1.0-0"}
V2 = {"app-1.1-0", "lib-1.0-0", "keep-1.0-0", "newp-1.0-0"}
SOURCE = Path(__file__).parent / "update_standin" / "update_micromamba_standin.c"


def compile_standin(folder: Path) -> Path:
    """tests/update_standin's micromamba.exe, built into FOLDER (skips without mingw)."""
    reason = mingw_missing()
    if reason:
        pytest.skip(reason)
    exe = folder / "micromamba.exe"
    argv = [MINGW_GCC, "-O2", "-municode", "-static", "-Wall", "-o", str(exe), str(SOURCE)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return exe


def v1_to_v2(base: Path) -> tuple[Path, dict[str, str]]:
    """The v1 to v2 update bundle, unpacked into a folder with awkward characters, and its
    base and target lock hashes ("old", "new")."""
    v: Versions = make_versions(base)
    build_full(v, "v1")
    (zipped,) = build_update(v, "v2", v.bundles["v1"], base / "dist")
    folder = extract(zipped, base / "Update & Co")
    table = json.loads((folder / "envpack.json").read_text("utf-8"))["update"]
    return folder, {"old": table["base_sha256"], "new": table["target_sha256"]}


@pytest.fixture(scope="module")
def standin() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="envpack-update-standin-"))
    yield compile_standin(folder)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def update(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    return v1_to_v2(tmp_path_factory.mktemp("upd"))


@pytest.fixture(scope="module")
def wine() -> Wine:
    return get_wine()


def v1_prefix(where: Path, standin: Path, old: str) -> Path:
    """A prefix as setup.bat leaves it at v1 (the awkward characters setup.bat accepts)."""
    prefix = where / "Env, [v1] & Co"
    (prefix / "conda-meta").mkdir(parents=True)
    for dist in V1:
        (prefix / "conda-meta" / f"{dist}.json").write_text("{}")
    (prefix / "conda-meta" / "history").write_text("")
    (prefix / "Scripts").mkdir()
    shutil.copy(standin, prefix / "Scripts" / "micromamba.exe")
    (prefix / "etc" / "envpack").mkdir(parents=True)
    (prefix / "etc" / "envpack" / "lock-sha256.txt").write_text(old + "\r\n")
    return prefix


def meta(prefix: Path) -> set[str]:
    return {p.stem for p in (prefix / "conda-meta").glob("*.json")}


def recorded(prefix: Path) -> str:
    return (prefix / "etc" / "envpack" / "lock-sha256.txt").read_text().split()[0]


def run(wine: Wine, folder: Path, prefix: Path, *args: str, **env: str) -> tuple[int, str]:
    log = prefix.parent / "standin.log"
    result = wine.run_bat(
        folder / "update.bat",
        [win_path(prefix), "/S", *args],
        env={"UPDATE_STANDIN_LOG": win_path(log), **env},
        timeout=180,
    )
    return result.rc, result.out


def standin_runs(prefix: Path) -> list[str]:
    log = prefix.parent / "standin.log"
    return log.read_text("utf-8-sig").splitlines() if log.exists() else []


def test_updates_then_says_already_current(
    wine: Wine, standin: Path, update: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    folder, h = update
    prefix = v1_prefix(tmp_path, standin, h["old"])
    rc, out = run(wine, folder, prefix)
    assert rc == 0, out
    assert meta(prefix) == V2
    assert recorded(prefix) == h["new"]
    assert not (prefix / ".envpack-update").exists()
    assert not Path(f"{prefix}.envpack-update").exists()  # work folder removed
    runs = standin_runs(prefix)
    assert len(runs) == 2, runs
    remove, install = runs
    assert " remove -p " in remove and remove.split("--force")[1].split("|")[0].split() == [
        "app",
        "gone",
    ]
    assert " install -p " in install and "update\\add.txt" in install
    for line in runs:
        assert "|MAMBA_ROOT_PREFIX=root|CONDA_PKGS_DIRS=pkgs|" in line
        assert "|HTTPS_PROXY=http://127.0.0.1:9|" in line
        assert line.split("|cwd=")[1].split("|")[0].endswith("Env, [v1] & Co.envpack-update")
    # a second run: already at NEW, micromamba not started
    rc, out = run(wine, folder, prefix)
    assert rc == 0, out
    assert "already at lock " + h["new"][:8] in out
    assert len(standin_runs(prefix)) == 2


def test_drift_is_listed_and_refused_then_forced(
    wine: Wine, standin: Path, update: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    folder, h = update
    prefix = v1_prefix(tmp_path, standin, h["old"])
    (prefix / "conda-meta" / "extra-1.0-0.json").write_text("{}")
    (prefix / "conda-meta" / "lib-1.0-0.json").unlink()
    (prefix / "conda-meta" / "lib-1.0-1.json").write_text("{}")  # lib rebuilt by hand
    rc, out = run(wine, folder, prefix)
    assert rc == 14, out
    assert "extra-1.0-0" in out and "lib-1.0-1" in out
    assert "missing from lock " + h["old"][:8] + ": lib-1.0-0" in out
    assert "/FORCE" in out
    assert standin_runs(prefix) == []
    assert recorded(prefix) == h["old"]
    assert not (prefix / ".envpack-update").exists()
    # /FORCE: applied anyway, saying so; lib-1.0-0 (kept by v2) is then missing: exit 11
    rc, out = run(wine, folder, prefix, "/FORCE")
    assert "/FORCE: updating anyway" in out
    assert rc == 11, out
    assert "lib-1.0-0" in out
    assert (prefix / ".envpack-update").exists()  # not at NEW: marked, never a silent mix


def test_wrong_base_names_the_update_needed_first(
    wine: Wine, standin: Path, update: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    folder, h = update
    prefix = v1_prefix(tmp_path, standin, "ab" * 32)
    rc, out = run(wine, folder, prefix)
    assert rc == 15, out
    assert f"demo-win-64-update-abababab-to-{h['old'][:8]}" in out
    assert standin_runs(prefix) == []
    assert meta(prefix) == V1


def test_interrupted_update_is_finished_by_the_next_run(
    wine: Wine, standin: Path, update: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    folder, h = update
    prefix = v1_prefix(tmp_path, standin, h["old"])
    rc, out = run(wine, folder, prefix, UPDATE_STANDIN_FAIL_AFTER="1")
    assert rc == 10, out
    assert "run update.bat again" in out
    marker = (prefix / ".envpack-update").read_text().split()
    assert marker == [h["old"], h["new"]]
    assert recorded(prefix) == h["old"]
    assert meta(prefix) not in (V1, V2)  # a mix, marked
    rc, out = run(wine, folder, prefix)
    assert rc == 0, out
    assert "interrupted; finishing it" in out
    assert meta(prefix) == V2
    assert recorded(prefix) == h["new"]
    assert not (prefix / ".envpack-update").exists()


def test_another_interrupted_update_is_refused(
    wine: Wine, standin: Path, update: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    folder, h = update
    prefix = v1_prefix(tmp_path, standin, h["old"])
    (prefix / ".envpack-update").write_text(f"{'cd' * 32} {'ef' * 32}\r\n")
    rc, out = run(wine, folder, prefix)
    assert rc == 16, out
    assert "demo-win-64-update-cdcdcdcd-to-efefefef" in out
    assert standin_runs(prefix) == []
