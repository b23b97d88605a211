"""setup.bat under wine's real cmd.exe, installing a real bundle with the micromamba stand-in.

Each test unpacks the session's bundle (built by envpack from a real HTTP channel) with Python's
zipfile into a folder with cmd.exe's awkward characters in its name and runs its setup.bat from a
wrapper batch file, as a user would at a cmd.exe prompt. The stand-in records the exact command
line, environment and working folder micromamba would see, and refuses what micromamba refuses.
"""

from __future__ import annotations

import json
import ntpath
import re
import shutil
import socket
import subprocess
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import yaml

from envpack.bundle.stubs import StubContext, prefix_files, render_setup
from wine import (
    POST_INSTALL_NAME,
    TEST_VARIABLE,
    Demo,
    Result,
    Wine,
    build_demo,
    get_wine,
    percent_survives,
    retarget,
    shutdown,
    win_path,
)

pytestmark = pytest.mark.wine

# cmd.exe's troublemakers in a folder name: space, &, (x86), !, ^ and a non-ASCII letter
AWKWARD_BUNDLE = "bundle & co (x86)!^ é"
# in the prefix, what YAML makes of a path too (",", "[", "{", " #"); "!", "%" and "^" are
# refused there (micromamba's own scripts break on them): test_refuses_what_micromamba_breaks_on
AWKWARD_PREFIX = "env & more (x86), [v1] {b} #2 é"
PERCENT_BUNDLE = "100% bundle & co (x86)!^ é"
PERCENT_PREFIX = "env 50 & (x86) é"

# What a parent shell may leak into setup.bat; none of it may reach micromamba.
LEAKY_ENV = {
    "CONDA_DEFAULT_ENV": "base",
    "CONDA_SHLVL": "2",
    "CONDA_EXE": r"C:\anaconda3\Scripts\conda.exe",
    "CONDA_SUBDIR": "linux-64",
    "CONDA_CHANNELS": "defaults",
    "CONDA_SOMETHING_ELSE": "1",
    "CONDARC": r"C:\elsewhere\.condarc",
    "MAMBARC": r"C:\elsewhere\.mambarc",
    "MAMBA_ROOT_PREFIX": r"C:\elsewhere\micromamba",
    "MAMBA_NO_BANNER": "1",
    "PYTHONHOME": r"C:\Python27",
    "PYTHONPATH": r"C:\lib",
    "PYTHONSTARTUP": r"C:\startup.py",
    "PYTHONUSERBASE": r"C:\userbase",
    # the user's own way to the network: none of it may reach micromamba
    "HTTP_PROXY": "http://proxy.example.invalid:3128",
    "HTTPS_PROXY": "http://proxy.example.invalid:3128",
    "ALL_PROXY": "socks5://proxy.example.invalid:1080",
    "NO_PROXY": "*",
}
# What micromamba must see instead (written out here, not taken from envpack.bundle.mamba_cli): every
# proxy pointed at a closed local port, no exceptions, its home and folders in the work folder.
DEAD_PROXY = "http://127.0.0.1:9"
EXPECTED_FLAGS = {"--yes", "--offline", "--no-rc", "--override-channels", "--no-shortcuts"}


def micromamba_reads(value: str) -> str:
    """A variable's value as micromamba reads it: libmamba parses it as YAML, ``[value]`` (see
    ../shared/notes), so a quoted value and a plain one that parse alike are equal here."""
    parsed = yaml.safe_load(f"[{value}]")
    assert isinstance(parsed, list) and len(parsed) == 1, (value, parsed)
    return str(parsed[0])


def options(argv: list[str]) -> tuple[dict[str, str], set[str]]:
    """micromamba's create argv as {option: value} and the set of flags (order is free)."""
    with_value = {"-p", "-f", "--platform", "-c"}
    values: dict[str, str] = {}
    flags: set[str] = set()
    rest = iter(argv[2:])
    for arg in rest:
        if arg in with_value:
            assert arg not in values, f"{arg} given twice: {argv}"
            values[arg] = next(rest)
        else:
            flags.add(arg)
    return values, flags


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


def records(path: Path) -> list[dict[str, object]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def ctx_of(demo: Demo) -> StubContext:
    assert isinstance(demo.ctx, StubContext)
    return demo.ctx


@dataclass
class Run:
    bundle: Path
    prefix: Path
    result: Result
    record_file: Path

    @property
    def records(self) -> list[dict[str, object]]:
        return records(self.record_file)

    @property
    def work(self) -> Path:
        return self.prefix.with_name(self.prefix.name + ".envpack-work")

    @property
    def log(self) -> str:
        return (self.prefix / "envpack-install.log").read_text("latin-1")


class Setup:
    """One unpacked bundle and one prefix; :meth:`run` runs its setup.bat under wine."""

    def __init__(self, wine: Wine, demo: Demo, tmp: Path, bundle_dir: str, prefix_dir: str) -> None:
        self.wine = wine
        self.demo = demo
        self.bundle = unpack(demo, tmp / bundle_dir)
        self.prefix = tmp / "target" / prefix_dir
        self.prefix.parent.mkdir(parents=True, exist_ok=True)
        self.record_file = tmp / "micromamba-record.jsonl"
        self.cwd = tmp

    def run(
        self,
        args: Sequence[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        stdin: bytes = b"",
        before: Sequence[str] = (),
        bat: Path | None = None,
    ) -> Run:
        if args is None:
            args = [win_path(self.prefix), "/S"]
        result = self.wine.run_bat(
            bat or self.bundle / "setup.bat",
            args,
            cwd=self.cwd,
            before=before,
            env={"STANDIN_RECORD": win_path(self.record_file), **(env or {})},
            stdin=stdin,
        )
        return Run(self.bundle, self.prefix, result, self.record_file)


@pytest.fixture
def setup(wine: Wine, demo: Demo, tmp_path: Path) -> Setup:
    return Setup(wine, demo, tmp_path, AWKWARD_BUNDLE, AWKWARD_PREFIX)


def assert_installed(run: Run, ctx: StubContext) -> None:
    """Everything a successful install leaves, and nothing it should not."""
    assert run.result.rc == 0, run.result.out
    prefix = run.prefix
    for rel in ctx.packages:
        stem = rel.rsplit("\\", 1)[1].removesuffix(".conda").removesuffix(".tar.bz2")
        assert (prefix / "conda-meta" / f"{stem}.json").is_file(), stem
    for rel in ctx.micromamba_files:
        assert (prefix / "Scripts" / rel).read_bytes() == (run.bundle / rel).read_bytes()
    for name, text in prefix_files(ctx):
        assert (prefix / name).read_bytes() == text.replace("\n", "\r\n").encode(), name
    assert not (prefix / ".envpack-incomplete").exists()
    assert not run.work.exists()
    assert "could not read the free space" not in run.result.out
    log = run.log
    assert "result: installed" in log
    assert "micromamba exit code: 0" in log
    assert "Transaction finished" in log


def test_install_into_awkward_paths(setup: Setup) -> None:
    ctx = ctx_of(setup.demo)
    run = setup.run(env=LEAKY_ENV)
    assert_installed(run, ctx)

    create, post = run.records
    prefix = win_path(run.prefix)
    work = prefix + ".envpack-work"
    bundle = win_path(run.bundle)
    argv = create["argv"]
    assert isinstance(argv, list)
    assert argv[0] == work + "\\bin\\micromamba.exe"
    assert argv[1] == "create"
    assert options(argv) == (
        {"-p": prefix, "--platform": "win-64", "-f": bundle + "\\env.txt"},
        EXPECTED_FLAGS,
    )
    env = create["env"]
    assert isinstance(env, dict)
    upper = {k.upper(): v for k, v in env.items()}
    # where micromamba puts its root prefix and package cache: the values (YAML) taken from its
    # current folder when relative
    cwd = create["cwd"]
    assert isinstance(cwd, str)
    assert ntpath.join(cwd, micromamba_reads(upper["MAMBA_ROOT_PREFIX"])) == work + "\\root"
    assert ntpath.join(cwd, micromamba_reads(upper["CONDA_PKGS_DIRS"])) == work + "\\pkgs"
    leaked = {k.upper() for k in env if k.upper().startswith(("CONDA", "MAMBA", "PYTHON"))}
    assert leaked == {"MAMBA_ROOT_PREFIX", "CONDA_PKGS_DIRS"}
    # no way to the network for a package that fails its md5, whatever the user's own proxies,
    # and micromamba's registry of environments lands in the work folder (deleted), not in the
    # user's profile
    assert upper["HTTP_PROXY"] == DEAD_PROXY
    assert upper["HTTPS_PROXY"] == DEAD_PROXY
    assert upper["ALL_PROXY"] == DEAD_PROXY
    assert upper.get("NO_PROXY", "") == ""
    assert upper["USERPROFILE"] == work + "\\home"
    assert upper["HOME"] == work + "\\home"

    # the post-install script ran micromamba.exe from PATH, inside the activated environment
    assert post["argv"] == ["micromamba.exe", "--version"]
    assert post["exe"] == prefix + "\\Scripts\\micromamba.exe"
    assert post["cwd"] == prefix
    penv = post["env"]
    assert isinstance(penv, dict)
    assert penv["CONDA_PREFIX"] == prefix
    assert penv["CONDA_SHLVL"] == "1"
    assert penv["PATH"].startswith(f"{prefix};{prefix}\\Library\\mingw-w64\\bin;")
    assert penv[TEST_VARIABLE[0]] == TEST_VARIABLE[1]
    assert "MAMBA_ROOT_PREFIX" not in penv and "CONDA_PKGS_DIRS" not in penv
    # ...and with the user's own profile and proxies again
    assert penv["USERPROFILE"] != work + "\\home"
    assert penv["HTTPS_PROXY"] == LEAKY_ENV["HTTPS_PROXY"]
    assert "post-install ran" in run.log


def test_install_with_percent_in_paths(wine: Wine, demo: Demo, tmp_path: Path) -> None:
    if not percent_survives():
        pytest.skip(
            "this wine's cmd.exe re-expands the value it substitutes for %~dp0 or %VAR%, so a "
            "'%' in a path is lost before setup.bat sees it (cmd.exe on Windows substitutes once)"
        )
    setup = Setup(wine, demo, tmp_path, PERCENT_BUNDLE, PERCENT_PREFIX)
    run = setup.run()
    assert_installed(run, ctx_of(demo))
    assert run.records[0]["argv"][3] == win_path(run.prefix)  # type: ignore[index]


def no_trace(run: Run) -> None:
    """Nothing was installed or prepared: no prefix, no work folder, micromamba never ran."""
    assert not run.prefix.exists()
    assert not run.work.exists()
    assert run.records == []


# ------------------------------------------------------------------ command line


def test_usage(setup: Setup) -> None:
    run = setup.run(["/?"])
    assert run.result.rc == 0, run.result.out
    out = run.result.out
    assert "setup.bat [PREFIX] [/S] [/FORCE]" in out
    assert "Exit codes: 0 installed; 1 bad command line; 2 cancelled;" in out
    assert "13 a post-install script failed" in out
    # the default prefix, with %LOCALAPPDATA% expanded on the target
    assert 'Default: "C:\\users\\' in out and '\\AppData\\Local\\envs\\demo"' in out
    no_trace(run)


@pytest.mark.parametrize(
    ("args", "bad"),
    [
        (["/BOGUS"], "/BOGUS"),
        (["C:\\one", "C:\\two"], "C:\\two"),
        (["/EXTRACT", "C:\\x"], "/EXTRACT"),  # the self-extracting file's option only
    ],
)
def test_bad_command_line(setup: Setup, args: list[str], bad: str) -> None:
    run = setup.run(args)
    assert run.result.rc == 1, run.result.out
    assert f'unexpected argument: "{bad}"' in run.result.out
    no_trace(run)


# ------------------------------------------------------------------ checks before anything changes


def test_refuses_an_active_conda_environment(setup: Setup) -> None:
    run = setup.run(env={"CONDA_PREFIX": r"C:\Users\me\miniconda3"})
    assert run.result.rc == 3, run.result.out
    assert 'a conda environment is active in this window: "C:\\Users\\me\\miniconda3"' in (
        run.result.out
    )
    no_trace(run)


def test_refuses_32_bit_windows(setup: Setup) -> None:
    run = setup.run(before=['set "PROCESSOR_ARCHITECTURE=x86"', 'set "PROCESSOR_ARCHITEW6432="'])
    assert run.result.rc == 4, run.result.out
    assert 'built for win-64; this Windows reports a "x86" processor' in run.result.out
    no_trace(run)


def test_32_bit_cmd_on_64_bit_windows_installs(setup: Setup) -> None:
    # a 32-bit cmd.exe on 64-bit Windows sees x86, and the real architecture in ...W6432
    run = setup.run(
        before=['set "PROCESSOR_ARCHITECTURE=x86"', 'set "PROCESSOR_ARCHITEW6432=AMD64"']
    )
    assert_installed(run, ctx_of(setup.demo))


def test_incomplete_bundle_names_the_files(setup: Setup) -> None:
    ctx = ctx_of(setup.demo)
    package = next(p for p in ctx.packages if "tool-" in p)
    (setup.bundle / package.replace("\\", "/")).unlink()
    env_txt = setup.bundle / "env.txt"
    env_txt.write_bytes(env_txt.read_bytes()[:-10])
    run = setup.run()
    assert run.result.rc == 5, run.result.out
    out = run.result.out
    assert f'missing: "{package}"' in out
    assert 'wrong size: "env.txt"' in out
    assert "the bundle is incomplete (2 files missing or damaged)" in out
    no_trace(run)


def test_every_bundle_file_is_checked(setup: Setup) -> None:
    # each file the manifest lists (the bundle's own data), one at a time one byte longer: the
    # first and the last of the list included
    files = sorted(json.loads((setup.bundle / "envpack.json").read_text())["files"])
    files.remove("setup.bat")  # the script running cannot judge itself (envpack verify does)
    assert "README.txt" in files and "sbom.cdx.json" in files, files
    for rel in files:
        path = setup.bundle / rel
        good = path.read_bytes()
        path.write_bytes(good + b"x")
        try:
            run = setup.run()
        finally:
            path.write_bytes(good)
        assert run.result.rc == 5, (rel, run.result.out)
        assert f'wrong size: "{rel.replace("/", chr(92))}"' in run.result.out, rel
        assert run.records == []


def test_refuses_a_folder_that_is_not_empty(setup: Setup) -> None:
    setup.prefix.mkdir()
    (setup.prefix / "keep.txt").write_text("mine")
    for args in ([win_path(setup.prefix), "/S"], [win_path(setup.prefix), "/S", "/FORCE"]):
        run = setup.run(args)
        assert run.result.rc == 6, run.result.out
        assert (setup.prefix / "keep.txt").read_text() == "mine"
        assert run.records == []
    assert "not a conda environment: not replacing it" in run.result.out


def test_an_empty_folder_is_used(setup: Setup) -> None:
    setup.prefix.mkdir()
    assert_installed(setup.run(), ctx_of(setup.demo))


def test_replaces_an_environment_only_with_force(setup: Setup) -> None:
    assert_installed(setup.run(), ctx_of(setup.demo))
    (setup.prefix / "old-file.txt").write_text("from the first install")
    again = setup.run()
    assert again.result.rc == 6, again.result.out
    assert "already exists and is not empty" in again.result.out
    assert "add /FORCE" in again.result.out
    assert len(again.records) == 2  # micromamba and the post-install script of the first run

    forced = setup.run([win_path(setup.prefix), "/FORCE", "/S"])
    assert_installed(forced, ctx_of(setup.demo))
    assert "deleting the environment in" in forced.result.out
    assert not (setup.prefix / "old-file.txt").exists()


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        ("\\\\server\\share\\envs\\demo", "is a network path"),
        ("Z:\\", "is a drive root"),
    ],
)
def test_refuses_unusable_prefixes(setup: Setup, prefix: str, message: str) -> None:
    run = setup.run([prefix, "/S"])
    assert run.result.rc == 6, run.result.out
    assert message in run.result.out
    assert run.records == []


@pytest.mark.parametrize("char", ["!", "%", "^"])
def test_refuses_what_micromamba_breaks_on(setup: Setup, char: str) -> None:
    if char == "%" and not percent_survives():
        pytest.skip("this wine's cmd.exe loses a '%' from the path before setup.bat sees it")
    prefix = setup.prefix.with_name(f"env {char} x")
    run = setup.run([win_path(prefix), "/S"])
    assert run.result.rc == 6, run.result.out
    assert "micromamba's own scripts fail on these" in run.result.out
    assert not prefix.exists()
    assert run.records == []


def test_refuses_a_file_as_prefix(setup: Setup) -> None:
    setup.prefix.write_text("a file")
    run = setup.run()
    assert run.result.rc == 6, run.result.out
    assert "is a file, not a folder" in run.result.out


def test_not_enough_disk_space(setup: Setup) -> None:
    huge = replace(ctx_of(setup.demo), installed_size=10**16)
    (setup.bundle / "setup.bat").write_bytes(render_setup(huge))
    run = setup.run()
    assert run.result.rc == 7, run.result.out
    assert "not enough free space on Z:" in run.result.out
    # 10^16 bytes installed plus the packages' copies (well under 1 MB) in MB of 10^6 bytes
    assert "about 10000000001 MB needed." in run.result.out
    no_trace(run)


def test_long_paths_are_explained_and_never_changed(setup: Setup) -> None:
    deep = replace(ctx_of(setup.demo), longest_path=240)
    (setup.bundle / "setup.bat").write_bytes(render_setup(deep))
    setup.wine.set_long_paths(False)
    try:
        run = setup.run()
        assert run.result.rc == 8, run.result.out
        out = run.result.out
        assert "would be longer than 259 characters" in out
        assert "LongPathsEnabled=1" in out and "setup.bat never changes it" in out
        no_trace(run)

        assert long_paths_value(setup.wine) == "0x0"  # still off: setup.bat only explains

        setup.wine.set_long_paths(None)  # absent, as on a PC nobody configured
        run = setup.run()
        assert run.result.rc == 8, run.result.out
        assert long_paths_value(setup.wine) is None

        setup.wine.set_long_paths(True)
        assert_installed(setup.run(), deep)
    finally:
        setup.wine.set_long_paths(None)


def test_long_path_limit_is_exact(setup: Setup) -> None:
    # Windows' MAX_PATH: 259 characters. The deepest file micromamba writes is
    # <prefix>.envpack-work\pkgs\<package stem>\<its longest path>: a prefix that makes it
    # exactly 259 passes, one character more is refused (long paths absent, as on a fresh PC).
    deep = replace(ctx_of(setup.demo), longest_path=100, longest_extract=0)
    (setup.bundle / "setup.bat").write_bytes(render_setup(deep))
    lines = (setup.bundle / "env.txt").read_text().split()
    stem = max(
        (u.split("#")[0].rsplit("/", 1)[1].removesuffix(".conda") for u in lines if "://" in u),
        key=len,
    )
    deepest = len(".envpack-work\\pkgs\\") + len(stem) + 1 + 100
    base = win_path(setup.prefix.parent) + "\\"
    fits = 259 - deepest - len(base)
    assert fits > 5, fits
    for name, expected in (("p" * fits, 0), ("p" * (fits + 1), 8)):
        run = setup.run([base + name, "/S"])
        assert run.result.rc == expected, (len(base + name), run.result.out)


def long_paths_value(wine: Wine) -> str | None:
    """LongPathsEnabled as the session's registry holds it (None when the value is absent)."""
    query = wine.run_cmd(
        'reg query "HKLM\\SYSTEM\\CurrentControlSet\\Control\\FileSystem" /v LongPathsEnabled'
    )
    for line in query.out.splitlines():
        words = line.split()
        if words[:2] == ["LongPathsEnabled", "REG_DWORD"]:
            return words[2]
    return None


def test_confirmation(setup: Setup) -> None:
    args = [win_path(setup.prefix)]
    for answer in (b"n\r\n", b"", b'"\r\n'):  # no, end of input, a stray quote
        run = setup.run(args, stdin=answer)
        assert run.result.rc == 2, run.result.out
        assert "Install now? [y/N]" in run.result.out
        assert "cancelled; nothing was changed" in run.result.out
        no_trace(run)
    assert_installed(setup.run(args, stdin=b"Y\r\n"), ctx_of(setup.demo))


# ------------------------------------------------------------------ failures during the install


def test_damaged_package_fails_then_rerun_works(setup: Setup) -> None:
    ctx = ctx_of(setup.demo)
    package = setup.bundle / next(p for p in ctx.packages if "libzlib" in p).replace("\\", "/")
    good = package.read_bytes()
    damaged = bytearray(good)
    damaged[len(damaged) // 2] ^= 0x01  # same size: the bundle check passes, the md5 does not
    package.write_bytes(bytes(damaged))

    run = setup.run()
    assert run.result.rc == 10, run.result.out
    out = run.result.out
    # what micromamba 2.8.1 prints there (measured: tests/test_real_vs_standin.py): it tries the
    # package's URL again and cannot get through setup.bat's dead proxy
    url = next(line for line in (run.bundle / "env.txt").read_text().split() if "libzlib" in line)
    key = f"critical libmamba Download error (7) Couldn't connect to server [{url.split('#')[0]}]"
    assert key in out, out
    assert "standin: would download" not in out
    assert "micromamba failed (exit code 1)" in out
    assert "copy the bundle again" in out
    # what micromamba 2.x leaves, plus setup.bat's marker and log
    assert sorted(p.name for p in run.prefix.iterdir()) == [
        ".envpack-incomplete",
        ".mambarc",
        "conda-meta",
        "envpack-install.log",
    ]
    assert [p.name for p in (run.prefix / "conda-meta").iterdir()] == ["history"]
    assert "result: FAILED, exit code 10" in run.log
    assert "micromamba exit code: 1" in run.log
    assert not run.work.exists()
    assert "is replaced when you run setup.bat again" in out

    package.write_bytes(good)
    rerun = setup.run()
    assert_installed(rerun, ctx)
    assert "deleting an unfinished install in" in rerun.result.out


def test_micromamba_that_does_not_start_keeps_the_log(setup: Setup) -> None:
    run = setup.run(env={"STANDIN_FAIL": "3"})
    assert run.result.rc == 10, run.result.out
    assert "micromamba failed (exit code 3)" in run.result.out
    assert not run.prefix.exists()
    log = run.work / "envpack-install.log"
    # the work folder keeps its log, and its marker: a rerun replaces it
    assert sorted(p.name for p in run.work.iterdir()) == [
        ".envpack-incomplete",
        "envpack-install.log",
    ]
    text = log.read_text("latin-1")
    assert "micromamba exit code: 3" in text and "result: FAILED, exit code 10" in text
    assert 'setup: log: "' in run.result.out

    assert_installed(setup.run(), ctx_of(setup.demo))  # the work folder is made fresh


def test_micromamba_that_cannot_be_started_is_named(setup: Setup) -> None:
    # an antivirus that blocks micromamba.exe after its copy was checked: cmd.exe only says that
    # it does not recognize the command (exit code 9009); setup.bat names the file, exit 9. The
    # stand-in's bytes zeroed (the size, all that the bundle check reads, unchanged) cannot start.
    exe = setup.bundle / "micromamba.exe"
    exe.write_bytes(bytes(exe.stat().st_size))
    run = setup.run()
    assert run.result.rc == 9, run.result.out
    work = win_path(run.work)
    assert (
        f'setup: "{work}\\bin\\micromamba.exe" could not be started: exit code 9009.'
        in run.result.out
    ), run.result.out
    assert "an antivirus may have blocked or quarantined it" in run.result.out
    assert "micromamba failed" not in run.result.out
    assert run.records == []
    assert not run.prefix.exists()
    log = (run.work / "envpack-install.log").read_text("latin-1")
    assert "micromamba.exe could not be started from the work folder" in log
    assert "result: FAILED, exit code 9" in log


def test_micromamba_success_is_not_trusted_blindly(setup: Setup) -> None:
    run = setup.run(env={"STANDIN_NOOP": "1"})
    assert run.result.rc == 11, run.result.out
    assert "micromamba exited 0, but" in run.result.out


def test_every_package_is_checked_after_micromamba(setup: Setup) -> None:
    # micromamba exits 0 but one package has no conda-meta record: whichever it is, setup.bat
    # names it (the first and the last of the list included)
    lines = (setup.bundle / "env.txt").read_text().split()
    names = [line.split("#")[0].rsplit("/", 1)[1] for line in lines if "://" in line]
    assert len(names) == 6, names
    for fn in names:
        run = setup.run(env={"STANDIN_SKIP": fn})
        assert run.result.rc == 11, (fn, run.result.out)
        stem = fn.removesuffix(".conda")
        assert f'micromamba exited 0, but "{stem}" is not installed' in run.result.out, fn
        assert (run.prefix / ".envpack-incomplete").exists()


class Listener:
    """A TCP port on 127.0.0.1 that records whether anyone connected. Nothing is accepted while
    the test runs: a connection completes in the kernel's backlog and is counted afterwards, so
    the answer does not depend on timing."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def connections(self) -> int:
        self.sock.setblocking(False)
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("route", ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"])
def test_damaged_package_never_reaches_the_network(setup: Setup, route: str) -> None:
    # The user's own proxy (or a direct way, NO_PROXY) listens; micromamba, which fetches a
    # damaged package again from its URL, must not get there.
    listener = Listener()
    try:
        scheme = "https" if route in ("HTTPS_PROXY", "ALL_PROXY") else "http"
        base = f"{scheme}://conda.example.invalid/channel"
        user = {route: listener.url}
        if route == "NO_PROXY":
            base = listener.url + "/channel"
            user = {"NO_PROXY": "127.0.0.1,localhost"}
        retarget(setup.bundle, setup.demo.ctx, lambda line: base + "/" + line.split("/", 3)[3])
        ctx = ctx_of(setup.demo)
        package = setup.bundle / next(p for p in ctx.packages if "tool-" in p).replace("\\", "/")
        damaged = bytearray(package.read_bytes())
        damaged[len(damaged) // 2] ^= 0x01
        package.write_bytes(bytes(damaged))
        run = setup.run(env=user)
        assert run.result.rc == 10, run.result.out
        assert "standin: would download" not in run.result.out
        assert "Download error (7) Couldn't connect to server" in run.result.out
        assert listener.connections() == 0
    finally:
        listener.close()


def test_an_environment_in_use_is_not_replaced(setup: Setup) -> None:
    from wine import hold_standin

    assert_installed(setup.run(), ctx_of(setup.demo))
    held = next((setup.prefix / "conda-meta").glob("tool-*.json"))
    ready, stop = setup.cwd / "hold-ready", setup.cwd / "hold-stop"
    # hold.exe's output (and wine's, when it cannot start it) for the failure messages
    holder_out = setup.cwd / "hold.out"
    with holder_out.open("wb") as sink:  # the child keeps its own copy
        holder = subprocess.Popen(
            [
                "timeout",
                "600",
                "wine",
                win_path(hold_standin()),
                win_path(held),
                win_path(ready),
                win_path(stop),
            ],
            env=setup.wine.env(),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 300
        while not ready.exists():
            assert holder.poll() is None, (holder.returncode, holder_out.read_bytes())
            assert time.monotonic() < deadline, "hold.exe never opened the file"
            time.sleep(0.1)
        run = setup.run([win_path(setup.prefix), "/FORCE", "/S"])
        assert run.result.rc == 9, run.result.out
        assert f'could not delete "{win_path(setup.prefix)}" completely' in run.result.out
        assert held.is_file()
        assert len(run.records) == 2  # micromamba was not run again
    finally:
        stop.touch()
        assert holder.wait(timeout=300) == 0, holder_out.read_bytes()
    assert_installed(setup.run([win_path(setup.prefix), "/FORCE", "/S"]), ctx_of(setup.demo))


def test_failing_post_install_script_fails_the_install(setup: Setup) -> None:
    run = setup.run(env={"ENVPACK_TEST_POSTINSTALL_FAIL": "1"})
    assert run.result.rc == 13, run.result.out
    out = run.result.out
    assert f'the post-install script "01-{POST_INSTALL_NAME}" failed' in out
    assert "post-install ran" in out  # its output is shown
    assert (run.prefix / ".envpack-incomplete").exists()
    assert f'post-install script failed: "01-{POST_INSTALL_NAME}"' in run.log
    assert_installed(setup.run(), ctx_of(setup.demo))


# ------------------------------------------------------------------ the console's code page


def test_switches_to_utf8_and_back(setup: Setup) -> None:
    from wine import chcp_standin

    state = setup.cwd / "chcp-state.txt"
    calls = setup.cwd / "chcp-calls.txt"
    run = setup.run(
        before=[f'set "PATH={win_path(chcp_standin().parent)};%PATH%"'],
        env={"STANDIN_CHCP_STATE": win_path(state), "STANDIN_CHCP_RECORD": win_path(calls)},
    )
    assert_installed(run, ctx_of(setup.demo))
    seen = calls.read_text().split()
    assert seen[:2] == ["query", "65001"]  # parsed "Aktive Codepage: 850." and switched
    assert seen[-1] == "850"  # and switched back at the end
    assert state.read_text().strip() == "850"


# ------------------------------------------------------------------ using the environment

ACTIVATE_D = {
    # a package's activation scripts, which activate.bat CALLs in name order
    "b-second.bat": b'@echo off\r\n>>"%CONDA_PREFIX%\\activate-d.txt" echo b\r\n',
    "a-first.bat": b'@echo off\r\n>>"%CONDA_PREFIX%\\activate-d.txt" echo a\r\n',
}


@pytest.fixture
def installed(setup: Setup) -> Setup:
    assert_installed(setup.run(), ctx_of(setup.demo))
    folder = setup.prefix / "etc" / "conda" / "activate.d"
    folder.mkdir(parents=True)
    for name, text in ACTIVATE_D.items():
        (folder / name).write_bytes(text)
    return setup


def run_check(setup: Setup, lines: list[str], **kw: object) -> tuple[Result, dict[str, object]]:
    """A user's batch file in another folder that CALLs activate.bat (by a relative path, as
    activate.bat asks when the path holds "^"), then runs micromamba.exe from PATH."""
    check = setup.cwd / "check.bat"
    before = ["@echo off", 'set "ENVPACK_BEFORE=%PATH%"', *lines, "micromamba.exe --version"]
    check.write_bytes("".join(f"{line}\r\n" for line in before).encode("cp437"))
    start = len(records(setup.record_file))
    result = setup.wine.run_bat(
        check, cwd=setup.cwd, env={"STANDIN_RECORD": win_path(setup.record_file)}, **kw
    )  # type: ignore[arg-type]
    new = records(setup.record_file)[start:]
    return result, (new[-1] if new else {})


def test_activate_bat_activates(installed: Setup) -> None:
    prefix = win_path(installed.prefix)
    result, record = run_check(
        installed, [f'pushd "{prefix}"', "call .\\activate.bat", "popd", "echo rc=%ERRORLEVEL%"]
    )
    assert "rc=0" in result.out, result.out
    env = record["env"]
    assert isinstance(env, dict)
    assert record["exe"] == prefix + "\\Scripts\\micromamba.exe"
    assert record["cwd"] == win_path(installed.cwd)
    assert env["CONDA_PREFIX"] == prefix
    assert env["CONDA_DEFAULT_ENV"] == prefix
    assert env["CONDA_SHLVL"] == "1"
    assert env["CONDA_PROMPT_MODIFIER"] == "(demo) "
    assert env["PROMPT"] == "(demo) $P$G"
    entries = ["", "\\Library\\mingw-w64\\bin", "\\Library\\usr\\bin", "\\Library\\bin"]
    entries += ["\\Scripts", "\\bin"]
    assert env["PATH"] == ";".join(prefix + e for e in entries) + ";" + env["ENVPACK_BEFORE"]
    assert env[TEST_VARIABLE[0]] == TEST_VARIABLE[1]
    assert "_ENVPACK_PREFIX" not in env and "_ENVPACK_CP" not in env
    assert (installed.prefix / "activate-d.txt").read_text().split() == ["a", "b"]


def test_activate_bat_refuses_another_environment(installed: Setup) -> None:
    prefix = win_path(installed.prefix)
    result, record = run_check(
        installed,
        [
            'set "CONDA_PREFIX=C:\\other\\env"',
            f'pushd "{prefix}"',
            "call .\\activate.bat",
            "echo rc=%ERRORLEVEL%",
            "popd",
        ],
    )
    assert "rc=1" in result.out
    assert 'another conda environment is active in this window: "C:\\other\\env"' in result.out
    assert record == {}  # PATH was left alone: micromamba.exe is not found
    assert not (installed.prefix / "activate-d.txt").exists()


def test_activate_bat_twice_is_harmless(installed: Setup) -> None:
    prefix = win_path(installed.prefix)
    twice = [f'pushd "{prefix}"', "call .\\activate.bat", "call .\\activate.bat", "popd"]
    result, record = run_check(installed, twice)
    assert '"demo" is already active in this window' in result.out
    env = record["env"]
    assert isinstance(env, dict)
    assert env["PATH"].count(prefix + "\\Scripts;") == 1


def test_launcher_opens_a_shell_with_the_environment(installed: Setup) -> None:
    start = len(records(installed.record_file))
    result = installed.wine.run_bat(
        installed.prefix / "envpack-shell.bat",
        cwd=installed.cwd,
        env={"STANDIN_RECORD": win_path(installed.record_file)},
        stdin=b"micromamba.exe --version\r\nexit\r\n",  # typed into the new cmd.exe
    )
    assert result.rc == 0, result.out
    (record,) = records(installed.record_file)[start:]
    env = record["env"]
    assert isinstance(env, dict)
    assert env["CONDA_PREFIX"] == win_path(installed.prefix)
    assert record["cwd"] == win_path(installed.cwd)  # back in the folder it was started from
    assert "ENVPACK_SHELL_CWD" not in env


def test_launcher_refuses_inside_another_environment(installed: Setup) -> None:
    result = installed.wine.run_bat(
        installed.prefix / "envpack-shell.bat",
        cwd=installed.cwd,
        env={"CONDA_PREFIX": "C:\\other\\env"},
        stdin=b"exit\r\n",
    )
    assert result.rc == 1, result.out
    assert "a conda environment is already active in this window" in result.out


def test_runtime_dlls_go_beside_micromamba(setup: Setup) -> None:
    # a bundle of conda-forge's micromamba ships vcruntime140*.dll/msvcp140*.dll beside it
    dlls = {"vcruntime140.dll": b"MZ runtime 1", "msvcp140.dll": b"MZ runtime 22"}
    ctx = ctx_of(setup.demo)
    for name, data in dlls.items():
        (setup.bundle / name).write_bytes(data)
    ctx = replace(
        ctx,
        micromamba_files=(*ctx.micromamba_files, *dlls),
        files=(*ctx.files, *((n, len(d)) for n, d in dlls.items())),
    )
    (setup.bundle / "setup.bat").write_bytes(render_setup(ctx))
    assert_installed(setup.run(), ctx)  # compares Scripts\ with the bundle, DLLs included


def test_work_folder_that_cannot_be_made(setup: Setup) -> None:
    # the tests run as root, so only a file system that refuses everyone will do: /proc
    prefix = "Z:\\proc\\envpack-no-such-folder\\demo"
    run = setup.run([prefix, "/S"])
    assert run.result.rc == 9, run.result.out
    assert re.search(
        rf'could not create (a fresh|the) work folder "{re.escape(prefix)}.envpack-work"',
        run.result.out,
    ), run.result.out
    assert run.records == []


def test_prefix_files_are_checked_after_writing(setup: Setup) -> None:
    # a line more in activate.bat's embedded text than setup.bat expects: the size check fails
    bat = setup.bundle / "setup.bat"
    bat.write_bytes(bat.read_bytes() + b"A|rem one line too many\r\n")
    run = setup.run()
    assert run.result.rc == 12, run.result.out
    assert 'could not write "activate.bat"' in run.result.out
    assert (run.prefix / ".envpack-incomplete").exists()


def test_standin_refuses_what_micromamba_refuses(wine: Wine, tmp_path: Path) -> None:
    from wine import micromamba_standin

    exe = micromamba_standin()
    env = {"STANDIN_RECORD": win_path(tmp_path / "r.jsonl")}
    bogus = wine.run([win_path(exe), "create", "-p", "C:\\x", "--bogus"], env=env)
    assert bogus.rc == 109
    assert "The following argument was not expected: --bogus" in bogus.out
    missing = wine.run(
        [win_path(exe), "create", "-p", win_path(tmp_path / "p"), "-f", "C:\\nope.txt"], env=env
    )
    assert missing.rc == 1 and "failed to open C:\\nope.txt" in missing.out
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    (tmp_path / "e.txt").write_text("@EXPLICIT\n")
    full = wine.run(
        [
            win_path(exe),
            "create",
            "-p",
            win_path(tmp_path / "full"),
            "-f",
            win_path(tmp_path / "e.txt"),
        ],
        env=env,
    )
    assert full.rc == 1 and "Non-conda folder exists at prefix" in full.out


def test_waits_for_a_key_when_started_by_a_double_click(setup: Setup) -> None:
    # wine's cmd.exe does not set CMDCMDLINE; Windows sets it to how cmd.exe was started
    explorer = f'C:\\WINDOWS\\system32\\cmd.exe /c ""{win_path(setup.bundle)}\\setup.bat" "'
    run = setup.run([], env={"CMDCMDLINE": explorer}, stdin=b"n\r\n\r\n")
    assert run.result.rc == 2, run.result.out
    assert run.result.out.rstrip().endswith("Press any key to continue...")
    typed = setup.run([], env={"CMDCMDLINE": '"C:\\WINDOWS\\system32\\cmd.exe"'}, stdin=b"n\r\n")
    assert typed.result.rc == 2 and "Press any key" not in typed.result.out
    silent = setup.run([win_path(setup.prefix), "/S"], env={"CMDCMDLINE": explorer})
    assert_installed(silent, ctx_of(setup.demo))
    assert "Press any key" not in silent.result.out


def test_default_prefix_under_localappdata(setup: Setup) -> None:
    # the builder's default, %LOCALAPPDATA%\envs\<name>, expanded on the target
    local = setup.wine.prefix / "drive_c" / "users"
    before = set(local.glob("*/AppData/Local/envs/demo"))
    assert before == set()
    try:
        run = setup.run(["/S"])
        assert run.result.rc == 0, run.result.out
        (installed,) = set(local.glob("*/AppData/Local/envs/demo"))
        assert_installed(
            Run(run.bundle, installed, run.result, run.record_file), ctx_of(setup.demo)
        )
    finally:
        for folder in local.glob("*/AppData/Local/envs"):
            shutil.rmtree(folder)


def test_relative_default_prefix_is_beside_setup_bat(
    wine: Wine, demo: Demo, tmp_path: Path
) -> None:
    # a bundle folder without "!" or "^", which setup.bat refuses in a prefix
    setup = Setup(wine, demo, tmp_path, "bundle & co (x86) é", AWKWARD_PREFIX)
    ctx = replace(ctx_of(setup.demo), default_prefix="..\\demo env")
    (setup.bundle / "setup.bat").write_bytes(render_setup(ctx))
    run = setup.run(["/S"])
    target = setup.bundle.parent / "demo env"
    assert_installed(Run(run.bundle, target, run.result, run.record_file), ctx)
    assert run.records[0]["argv"][3] == win_path(target)  # type: ignore[index]
