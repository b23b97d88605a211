"""Update bundles applied by the real micromamba 2.8.1 (Linux build, ``--platform win-64``).

v1 is installed exactly as setup.bat runs micromamba (wine.setup_step reads the rendered
setup.bat); each update is applied exactly as update.bat runs it (update_steps reads the rendered
update.bat: its package copies, variables, current folder, and its remove and install lines).
The prefix's conda-meta is then compared with the target lock record for record.

Measured with 2.8.1 while writing this: ``install -f`` of an explicit list into an existing
prefix does not replace an installed package of the same name (both records stay), so update.bat
first unlinks what NEW drops or replaces with ``remove --force`` (no solve; ``remove`` refuses
``--override-channels``), then installs what NEW adds.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from update_factory import Versions, build_full, build_update, extract, lock_dists, make_versions
from update_steps import apply_update, drift, installed, result_problems
from wine import run_step, setup_step

pytestmark = pytest.mark.micromamba

V1 = {"app-1.0-0", "lib-1.0-0", "gone-1.0-0", "keep-1.0-0"}
V2 = {"app-1.1-0", "lib-1.0-0", "keep-1.0-0", "newp-1.0-0"}
V3 = {"app-1.1-0", "lib-2.0-0", "keep-1.0-0", "newp-1.0-0"}
TIMEOUT = 300


def user_env(home: Path) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "HOME": str(home)}


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Versions]:
    v = make_versions(tmp_path_factory.mktemp("versions"))
    build_full(v, "v1")
    yield v


def install_v1(v: Versions, mm: Path, where: Path) -> Path:
    bundle = extract(v.bundles["v1"], where / "v1 bundle")
    prefix = where / "Env, 2024 [v1] #1"
    home = where / "home"
    home.mkdir(exist_ok=True)
    proc = run_step(setup_step(bundle, prefix, mm, user_env(home)), timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert installed(prefix) == V1
    return prefix


def update_folder(v: Versions, new: str, old: Path, where: Path) -> Path:
    (zipped,) = build_update(v, new, old, where / f"dist-{new}")
    return extract(zipped, where / f"update to {new}")


def apply(folder: Path, prefix: Path, mm: Path, home: Path) -> None:
    for proc in apply_update(folder, prefix, mm, user_env(home), TIMEOUT):
        assert proc.returncode == 0, proc.stdout + proc.stderr


def assert_records_match_lock(prefix: Path, folder: Path) -> None:
    lock = json.loads((folder / "envpack.json").read_text("utf-8"))["lock"]["packages"]
    for p in lock:
        dist = f"{p['name']}-{p['version']}-{p['build']}"
        record = json.loads((prefix / "conda-meta" / f"{dist}.json").read_text("utf-8"))
        for key in ("name", "version", "build", "md5", "fn", "url", "subdir"):
            assert str(record[key]) == str(p[key]), (dist, key)
        if record.get("sha256"):
            assert record["sha256"] == p["sha256"], dist


def installed_list(mm: Path, prefix: Path, home: Path, out: Path) -> Path:
    proc = subprocess.run(
        [str(mm), "list", "-p", str(prefix), "--explicit", "--md5"],
        env={**user_env(home), "MAMBA_ROOT_PREFIX": str(home / "root")},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    out.write_text(proc.stdout, encoding="utf-8")
    return out


def test_v1_to_v2_to_v3_record_for_record(
    versions: Versions, real_micromamba: Path, tmp_path: Path
) -> None:
    prefix = install_v1(versions, real_micromamba, tmp_path)
    home = tmp_path / "home"
    first = update_folder(versions, "v2", versions.bundles["v1"], tmp_path)
    assert drift(first, prefix) == (set(), set())
    apply(first, prefix, real_micromamba, home)
    assert installed(prefix) == V2 == lock_dists(first)
    assert_records_match_lock(prefix, first)
    assert result_problems(first, prefix) == (set(), set())
    # v2 -> v3 from what the PC's own micromamba lists: the same base as the first update's target
    listed = installed_list(real_micromamba, prefix, home, tmp_path / "installed.txt")
    assert "List of packages in environment" in listed.read_text()  # 2.8.1's header, no @EXPLICIT
    second = update_folder(versions, "v3", listed, tmp_path)
    first_target = json.loads((first / "envpack.json").read_text())["update"]["target_sha256"]
    second_base = json.loads((second / "envpack.json").read_text())["update"]["base_sha256"]
    assert second_base == first_target
    assert drift(second, prefix) == (set(), set())
    apply(second, prefix, real_micromamba, home)
    assert installed(prefix) == V3
    assert_records_match_lock(prefix, second)
    assert result_problems(second, prefix) == (set(), set())


def test_drifted_prefix_is_named_and_forced_result_checked(
    versions: Versions, real_micromamba: Path, tmp_path: Path
) -> None:
    prefix = install_v1(versions, real_micromamba, tmp_path)
    home = tmp_path / "home"
    work = tmp_path / "hand"
    (work / "pkgs").mkdir(parents=True)
    env = {**user_env(home), "MAMBA_ROOT_PREFIX": str(work / "root"), "CONDA_PKGS_DIRS": "pkgs"}
    extra = versions.channel / "win-64" / "extra-1.0-0.conda"
    (work / "extra.txt").write_text(f"@EXPLICIT\n{extra.as_uri()}\n")
    by_hand = [
        ["install", "-p", str(prefix), "--yes", "--offline", "-f", "extra.txt"],
        ["remove", "-p", str(prefix), "--yes", "--offline", "--force", "keep"],
    ]
    for argv in by_hand:
        proc = subprocess.run(
            [str(real_micromamba), *argv], env=env, cwd=work, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
    folder = update_folder(versions, "v2", versions.bundles["v1"], tmp_path)
    assert drift(folder, prefix) == ({"extra-1.0-0"}, {"keep-1.0-0"})
    # /FORCE applies it anyway; the result check then names what the update could not restore
    apply(folder, prefix, real_micromamba, home)
    assert installed(prefix) == (V2 - {"keep-1.0-0"}) | {"extra-1.0-0"}
    assert result_problems(folder, prefix) == ({"keep-1.0-0"}, set())


def test_interrupted_update_is_finished_by_the_next_run(
    versions: Versions, real_micromamba: Path, tmp_path: Path
) -> None:
    prefix = install_v1(versions, real_micromamba, tmp_path)
    home = tmp_path / "home"
    folder = update_folder(versions, "v2", versions.bundles["v1"], tmp_path)
    # the first run stops after its remove step: a carried package fails its md5 on install
    # (its list entry is changed: the channel is a local folder, where a flipped byte in the
    # package would be fetched again from its file:// URL, which no proxy stops)
    broken = tmp_path / "broken"
    broken.mkdir()
    damaged = extract_copy(folder, broken)
    add = damaged / "update" / "add.txt"
    add.write_text(
        re.sub(r"(app-1\.1-0\.conda#)[0-9a-f]{32}", r"\g<1>" + "0" * 32, add.read_text())
    )
    assert "0" * 32 in add.read_text()
    results = apply_update(damaged, prefix, real_micromamba, user_env(home), TIMEOUT)
    assert [r.returncode == 0 for r in results] == [True, False]
    assert installed(prefix) == {"lib-1.0-0", "keep-1.0-0"}  # a mix, which update.bat marks
    # the next run (intact bundle) skips the removal already done and finishes
    results = apply_update(folder, prefix, real_micromamba, user_env(home), TIMEOUT)
    assert [r.returncode for r in results] == [0]
    assert installed(prefix) == V2
    assert_records_match_lock(prefix, folder)


def extract_copy(folder: Path, where: Path) -> Path:
    import shutil

    return Path(shutil.copytree(folder, where / folder.name))
