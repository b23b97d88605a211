"""setup.sh for real: the real zlib 1.2.11 linux-64 package and the real Linux micromamba 2.8.1,
under dash, bash and busybox sh, from a folder with spaces into a prefix with spaces."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from linux_bundle import REAL_MICROMAMBA, ZLIB_CHANNEL, build_bundle, repaired_zlib, shells, unpack

pytestmark = [
    pytest.mark.micromamba,
    pytest.mark.skipif(
        not (REAL_MICROMAMBA.is_file() and ZLIB_CHANNEL.is_dir()),
        reason="../shared (real micromamba and the zlib channel) is absent",
    ),
]

SHELLS = [
    pytest.param(
        argv, id=ident, marks=pytest.mark.skipif(argv is None, reason=f"{ident} is not installed")
    )
    for ident, argv in shells()
]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("bundle")
    pkg, md5 = repaired_zlib(base / "pkg")
    built = build_bundle(base / "out", package=pkg, md5=md5, sfx=True)
    return built.tar


def run(
    argv: list[str], script: Path, args: list[str], home: Path, **extra: str
) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", **extra}
    return subprocess.run(
        [*argv, str(script), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("shell", SHELLS)
def test_installs_activates_uninstalls_home_untouched(
    shell: list[str], bundle: Path, tmp_path: Path
) -> None:
    folder = unpack(bundle, tmp_path / "bundle dir")
    home = tmp_path / "home"
    home.mkdir()
    prefix = tmp_path / "my envs" / "zlib env"
    # stdin is not a terminal and there is no --yes: nothing is asked.
    r = run(shell, folder / "setup.sh", [str(prefix)], home)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (prefix / "lib" / "libz.so.1.2.11").stat().st_size == 133384
    assert os.readlink(prefix / "lib" / "libz.so") == "libz.so.1.2.11"
    assert (prefix / "conda-meta" / "zlib-1.2.11-h7b6447c_3.json").is_file()
    assert (prefix / "activate.sh").is_file() and (prefix / "uninstall.sh").is_file()
    assert not (prefix / ".envpack-incomplete").exists()
    assert sorted(os.listdir(prefix.parent)) == ["zlib env"]  # the work folder is gone
    assert os.listdir(home) == []
    act = subprocess.run(
        [
            *shell,
            "-c",
            '. "$1/activate.sh" && printf "%s\\n%s\\n" "$CONDA_PREFIX" "$PATH"',
            "sh",
            str(prefix),
        ],
        env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert act.returncode == 0, act.stderr
    assert act.stdout.splitlines() == [str(prefix), f"{prefix}/bin:/usr/bin:/bin"]
    stacked = subprocess.run(
        [*shell, "-c", '. "$1/activate.sh"', "sh", str(prefix)],
        env={"PATH": "/usr/bin:/bin", "CONDA_PREFIX": "/opt/other"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert stacked.returncode == 1 and "another conda environment" in stacked.stderr
    gone = run(shell, prefix / "uninstall.sh", ["--yes"], home)
    assert gone.returncode == 0, gone.stderr
    assert not prefix.exists()
    assert os.listdir(home) == []


@pytest.mark.parametrize("shell", SHELLS)
def test_flipped_byte_fails_with_10_and_a_rerun_replaces_it(
    shell: list[str], bundle: Path, tmp_path: Path
) -> None:
    folder = unpack(bundle, tmp_path / "b")
    pkg = folder / "channel" / "linux-64" / "zlib-1.2.11-h7b6447c_3.tar.bz2"
    good = pkg.read_bytes()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    pkg.write_bytes(bytes(bad))
    prefix = tmp_path / "p x"
    home = tmp_path / "h"
    home.mkdir()
    r = run(shell, folder / "setup.sh", [str(prefix), "--yes"], home)
    assert r.returncode == 10, r.stdout + r.stderr
    assert not (prefix / "lib" / "libz.so.1.2.11").exists()
    pkg.write_bytes(good)
    again = run(shell, folder / "setup.sh", [str(prefix), "--yes"], home)  # no --force needed
    assert again.returncode == 0, again.stdout + again.stderr
    assert (prefix / "lib" / "libz.so.1.2.11").is_file()
    assert os.listdir(home) == []


def test_exit_codes_of_the_checks(bundle: Path, tmp_path: Path) -> None:
    folder = unpack(bundle, tmp_path / "b")
    home = tmp_path / "h"
    home.mkdir()
    sh = ["dash"]
    assert run(sh, folder / "setup.sh", ["--bogus"], home).returncode == 1
    assert run(sh, folder / "setup.sh", ["a", "b"], home).returncode == 1
    assert (
        run(sh, folder / "setup.sh", [str(tmp_path / "p")], home, CONDA_PREFIX="/x").returncode == 3
    )
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "file").write_text("x")
    assert run(sh, folder / "setup.sh", [str(taken)], home).returncode == 6
    assert run(sh, folder / "setup.sh", [str(taken), "--force"], home).returncode == 6
    assert run(sh, folder / "setup.sh", [str(tmp_path / "a:b")], home).returncode == 6
    assert run(sh, folder / "setup.sh", ["/"], home).returncode == 6
    (folder / "env.txt").write_bytes((folder / "env.txt").read_bytes() + b"#")
    assert run(sh, folder / "setup.sh", [str(tmp_path / "p")], home).returncode == 5
    assert not (tmp_path / "p").exists()


def test_force_replaces_an_environment_and_post_install_runs_activated(tmp_path: Path) -> None:
    pkg, md5 = repaired_zlib(tmp_path / "pkg")
    script = b'set -e\nprintf "%s\\n" "$CONDA_PREFIX" > "$CONDA_PREFIX/post-ok"\ntest "$(pwd)" = "$CONDA_PREFIX"\n'
    failing = b"echo broken >&2\nexit 3\n"
    ok = build_bundle(tmp_path / "ok", package=pkg, md5=md5, post_install=[("check.sh", script)])
    bad = build_bundle(
        tmp_path / "bad", name="zlibbad", package=pkg, md5=md5, post_install=[("fail.sh", failing)]
    )
    home = tmp_path / "h"
    home.mkdir()
    prefix = tmp_path / "env"
    folder = unpack(ok.tar, tmp_path / "u1")
    assert run(["bash"], folder / "setup.sh", [str(prefix)], home).returncode == 0
    assert (prefix / "post-ok").read_text() == f"{prefix}\n"
    assert run(["bash"], folder / "setup.sh", [str(prefix)], home).returncode == 6
    assert run(["bash"], folder / "setup.sh", [str(prefix), "--force"], home).returncode == 0
    r = run(["bash"], unpack(bad.tar, tmp_path / "u2") / "setup.sh", [str(tmp_path / "env2")], home)
    assert r.returncode == 13 and "broken" in r.stderr


def test_self_extracting_file_installs_and_leaves_no_temp(bundle: Path, tmp_path: Path) -> None:
    sfx = bundle.parent / "zlibenv-linux-64-setup.sh"
    home, tmp = tmp_path / "h", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    prefix = tmp_path / "sfx env"
    r = run(["dash"], sfx, [str(prefix), "--yes"], home, TMPDIR=str(tmp))
    assert r.returncode == 0, r.stdout + r.stderr
    assert (prefix / "conda-meta" / "zlib-1.2.11-h7b6447c_3.json").is_file()
    assert os.listdir(tmp) == [] and os.listdir(home) == []
    kept = tmp_path / "kept"
    r = run(["busybox", "sh"], sfx, ["--extract", str(kept), "--help"], home)
    assert r.returncode == 0 and (kept / "zlibenv" / "setup.sh").is_file()
    truncated = tmp_path / "cut.sh"
    truncated.write_bytes(sfx.read_bytes()[:5000])
    assert run(["dash"], truncated, [str(tmp_path / "p2")], home, TMPDIR=str(tmp)).returncode == 21
