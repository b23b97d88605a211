"""setup.bat, activate.bat, uninstall.bat and envpack-shell.bat under wine's cmd.exe: what issue 14
found on real Windows, each failure run where wine can show it.

Each test names the real cmd.exe / micromamba behaviour it stands for. What wine cannot show is
checked statically in tests/test_stubs_static.py:

- AutoRun: wine's cmd.exe never runs HKCU/HKLM "Command Processor\\AutoRun" (checked: a child
  ``for /f ... in ('echo x')`` runs no AutoRun under wine), so a test with a broken or a ``cd /d``
  AutoRun cannot be written here. The stubs avoid the child cmd.exe altogether: no FOR /F over a
  command's output (static test ``test_no_command_form_for_f``).
- cmd.exe's 8191-character line limit: wine has none. The test here shows that activate.bat
  refuses before changing anything; the static test checks that PATH is never %-expanded.
- Windows' tar.exe narrow argv (libarchive#2092): the tar stand-in records wide arguments, so
  tests/test_sfx.py checks that the file is given by its name alone.
- micromamba's YAML reading of MAMBA_ROOT_PREFIX / CONDA_PKGS_DIRS: the stand-in records the
  values; the real micromamba 2.8.1 (Linux build) then installs with exactly those values, from a
  folder named like ``Reports, 2024 [v1] {b} #1`` (``test_real_micromamba_*`` below).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from wine import Demo, Result, Wine, build_demo, get_wine, percent_survives, shutdown, win_path

# A folder name that libmamba's YAML reading of variables breaks: "," splits a list, "[" "]"
# "{" "}" are flow syntax, " #" starts a comment; the "'" tests YAML single-quote escaping.
YAML_HOSTILE = "Reports, 2024 [v1] {b} #1 'q'"
# What a Windows path still may hold and must keep working: space, &, (x86), non-ASCII.
PREFIX_NAME = "env & more (x86) é"
BUNDLE_NAME = "bundle & co (x86)!^ é"  # the bundle's own folder may hold ! and ^


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


class Bundle:
    """One unpacked bundle; :meth:`setup` runs its setup.bat for a prefix under wine."""

    def __init__(self, wine: Wine, demo: Demo, tmp: Path, folder: str = BUNDLE_NAME) -> None:
        self.wine = wine
        self.tmp = tmp
        self.dir = unpack(demo, tmp / folder)
        self.record = tmp / "micromamba-record.jsonl"

    def setup(
        self,
        prefix: Path,
        args: Sequence[str] = ("/S",),
        *,
        env: Mapping[str, str] | None = None,
        before: Sequence[str] = (),
        stdin: bytes = b"",
    ) -> Result:
        return self.wine.run_bat(
            self.dir / "setup.bat",
            [win_path(prefix), *args],
            cwd=self.tmp,
            before=before,
            env={"STANDIN_RECORD": win_path(self.record), **(env or {})},
            stdin=stdin,
        )


def work_of(prefix: Path) -> Path:
    return prefix.with_name(prefix.name + ".envpack-work")


def installed_ok(result: Result, prefix: Path) -> None:
    assert result.rc == 0, result.out
    assert (prefix / "conda-meta" / "history").is_file()
    assert not (prefix / ".envpack-incomplete").exists()
    assert not work_of(prefix).exists()


@pytest.fixture
def bundle(wine: Wine, demo: Demo, tmp_path: Path) -> Bundle:
    return Bundle(wine, demo, tmp_path)


# ------------------------------------------------------------------ 1: YAML in micromamba's vars


def test_micromamba_gets_root_and_pkgs_relative_to_its_work_folder(
    wine: Wine, demo: Demo, tmp_path: Path
) -> None:
    """libmamba reads MAMBA_ROOT_PREFIX and CONDA_PKGS_DIRS as YAML: setup.bat gives them as the
    plain words "root" and "pkgs" and runs micromamba from the work folder, so that no character
    of the user's path passes through YAML. The stand-in records what micromamba would see."""
    b = Bundle(wine, demo, tmp_path, YAML_HOSTILE)
    prefix = tmp_path / YAML_HOSTILE / "env"
    result = b.setup(prefix)
    installed_ok(result, prefix)
    create = records(b.record)[0]
    env = create["env"]
    assert isinstance(env, dict)
    assert env["MAMBA_ROOT_PREFIX"] == "root"
    assert env["CONDA_PKGS_DIRS"] == "pkgs"
    assert create["cwd"] == win_path(work_of(prefix))
    # the stand-in found the packages through the relative "pkgs", as micromamba does
    assert "Transaction finished" in (prefix / "envpack-install.log").read_text("latin-1")


def _run_real(
    mm: Path, bundle: Path, prefix: Path, root: str, pkgs: str, cwd: Path
) -> subprocess.CompletedProcess[str]:
    from envpack.bundle.mamba_cli import install_argv, setup_env

    work = work_of(prefix)
    for sub in ("pkgs", "root", "home"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    for pkg in (bundle / "channel").glob("*/*.conda"):
        shutil.copy(pkg, work / "pkgs")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CONDA", "MAMBA"))}
    env = setup_env(base, work)  # what setup.bat gives micromamba: dead proxies, home, root, pkgs
    assert (env["MAMBA_ROOT_PREFIX"], env["CONDA_PKGS_DIRS"]) == ("root", "pkgs")
    env.update(MAMBA_ROOT_PREFIX=root, CONDA_PKGS_DIRS=pkgs, CONDA_OVERRIDE_WIN="10.0.19045")
    argv = install_argv(str(mm), str(prefix), str(bundle / "env.txt"), "win-64")
    return subprocess.run(
        argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=180, check=False
    )


def _rendered_value(bundle: Path, var: str) -> str:
    text = (bundle / "setup.bat").read_bytes().decode("utf-8")
    (line,) = [ln for ln in text.split("\r\n") if ln.startswith(f'set "{var}=')]
    return line[len(f'set "{var}=') : -1]


@pytest.mark.micromamba
def test_real_micromamba_installs_offline_from_a_yaml_hostile_folder(
    demo: Demo, real_micromamba: Path, tmp_path: Path
) -> None:
    """The values setup.bat renders, run by the real micromamba 2.8.1 from the work folder (as
    setup.bat's pushd does) in a folder named like "Reports, 2024 [v1] {b} #1": offline, from the
    pre-filled package cache alone (every proxy dead), into the prefix."""
    bundle = unpack(demo, tmp_path / YAML_HOSTILE)
    root = _rendered_value(bundle, "MAMBA_ROOT_PREFIX")
    pkgs = _rendered_value(bundle, "CONDA_PKGS_DIRS")
    assert (root, pkgs) == ("root", "pkgs")
    prefix = tmp_path / YAML_HOSTILE / "env"
    proc = _run_real(real_micromamba, bundle, prefix, root, pkgs, work_of(prefix))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(list((prefix / "conda-meta").glob("*.json"))) == len(
        list(bundle.glob("channel/*/*.conda"))
    )
    # micromamba made them absolute against its current folder: the cache it extracted into is
    # the work folder's, and nothing landed in the folder it was started from
    assert list((work_of(prefix) / "pkgs").glob("**/info/index.json"))
    assert not (tmp_path / YAML_HOSTILE / "pkgs").exists()


@pytest.mark.micromamba
def test_real_micromamba_fails_with_full_paths_there(
    demo: Demo, real_micromamba: Path, tmp_path: Path
) -> None:
    """The control: the same install with the full paths (setup.bat before issue 14) fails in
    that folder, with yaml-cpp's error; so the test above can fail."""
    bundle = unpack(demo, tmp_path / YAML_HOSTILE)
    prefix = tmp_path / YAML_HOSTILE / "env"
    work = work_of(prefix)
    proc = _run_real(
        real_micromamba, bundle, prefix, str(work / "root"), str(work / "pkgs"), tmp_path
    )
    assert proc.returncode != 0
    assert "yaml-cpp" in proc.stdout + proc.stderr
    assert not list((prefix / "conda-meta").glob("*.json"))


# ------------------------------------------------------------------ 2: interrupted installs


def test_marker_is_in_the_work_folder_while_micromamba_runs(bundle: Bundle) -> None:
    """A micromamba that fails before touching anything (like one killed by Ctrl-C or a power
    cut) leaves the work folder with its marker: it was written before micromamba started."""
    prefix = bundle.tmp / "target" / PREFIX_NAME
    prefix.parent.mkdir()
    result = bundle.setup(prefix, env={"STANDIN_FAIL": "3"})
    assert result.rc == 10, result.out
    assert (work_of(prefix) / ".envpack-incomplete").is_file()


def test_interrupted_install_with_the_prefix_marker_is_replaced(bundle: Bundle) -> None:
    """Interrupted after micromamba returned: conda-meta\\ and the prefix's marker."""
    prefix = bundle.tmp / "target" / PREFIX_NAME
    (prefix / "conda-meta").mkdir(parents=True)
    (prefix / "conda-meta" / "history").write_text("half\n")
    (prefix / ".envpack-incomplete").write_bytes(b"")
    result = bundle.setup(prefix)
    installed_ok(result, prefix)
    assert "an unfinished install" in result.out


def test_install_interrupted_while_micromamba_ran_is_replaced(bundle: Bundle) -> None:
    """Interrupted while micromamba ran: micromamba had replaced the prefix (so no marker in it),
    the work folder with its marker and stale files stayed. The rerun needs no /FORCE, and
    starts from a fresh work folder (a package extracted before would hide a damaged one)."""
    prefix = bundle.tmp / "target" / PREFIX_NAME
    (prefix / "conda-meta").mkdir(parents=True)
    (prefix / "Library").mkdir()
    (prefix / "Library" / "half.dll").write_bytes(b"x")
    work = work_of(prefix)
    (work / "pkgs" / "stale-1.0-0").mkdir(parents=True)
    (work / ".envpack-incomplete").write_bytes(b"")
    result = bundle.setup(prefix)
    installed_ok(result, prefix)
    assert not (prefix / "Library" / "half.dll").exists()


def test_a_conda_environment_without_a_marker_still_needs_force(bundle: Bundle) -> None:
    """The control: a conda environment with no marker anywhere is not replaced."""
    prefix = bundle.tmp / "target" / PREFIX_NAME
    (prefix / "conda-meta").mkdir(parents=True)
    (prefix / "keep.txt").write_text("mine")
    result = bundle.setup(prefix)
    assert result.rc == 6, result.out
    assert (prefix / "keep.txt").read_text() == "mine"


# ------------------------------------------------------------------ 3: DIRCMD


def test_dircmd_does_not_change_what_setup_bat_reads(bundle: Bundle) -> None:
    """DIRCMD=/s /-c /w would change "dir"'s output (recursive listing, thousands separators,
    wide format): setup.bat clears it for its own run. The free space is still read, and the
    install works."""
    prefix = bundle.tmp / "target" / PREFIX_NAME
    prefix.parent.mkdir()
    result = bundle.setup(prefix, before=['set "DIRCMD=/s /c /w"'])
    installed_ok(result, prefix)
    assert "could not read the free space" not in result.out


# ------------------------------------------------------------------ 4: activate.bat and PATH


@pytest.fixture
def installed(bundle: Bundle) -> Path:
    prefix = bundle.tmp / "target" / PREFIX_NAME
    prefix.parent.mkdir()
    installed_ok(bundle.setup(prefix), prefix)
    return prefix


def activate(
    wine: Wine,
    prefix: Path,
    before: Sequence[str] = (),
    after: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> tuple[Result, dict[str, str]]:
    """CALL activate.bat (by a relative path, from the prefix) in a wrapper; the environment
    afterwards, as "set" lists it, read from a file."""
    dump = prefix.parent / f"env-{len(list(prefix.parent.glob('env-*')))}.txt"
    lines = [
        *before,
        f'pushd "{win_path(prefix)}"',
        "call .\\activate.bat",
        "echo activate-rc=%ERRORLEVEL%",
        "popd",
        *after,
        f'set >"{win_path(dump)}"',
    ]
    result = wine.run_cmd("\r\n".join(lines), env=env)
    values: dict[str, str] = {}
    if dump.is_file():
        for line in dump.read_bytes().decode("latin-1").splitlines():
            key, _, value = line.partition("=")
            values[key.upper()] = value
    return result, values


def test_activate_keeps_a_quoted_path_entry_with_an_ampersand(wine: Wine, installed: Path) -> None:
    """A PATH entry in quotes flips cmd.exe's quote state in `set "PATH=...;%PATH%"`, and the "&"
    after it then runs the rest as a command. activate.bat never %-expands PATH."""
    base = 'C:\\x;"C:\\a&b";C:\\y (x86)'
    result, env = activate(wine, installed, before=[f"set PATH={base}"])  # "&" inside the quotes
    assert "activate-rc=0" in result.out, result.out
    assert "recognize" not in result.out, result.out
    prefix = win_path(installed)
    assert env["PATH"] == (
        f"{prefix};{prefix}\\Library\\mingw-w64\\bin;{prefix}\\Library\\usr\\bin;"
        f"{prefix}\\Library\\bin;{prefix}\\Scripts;{prefix}\\bin;{base}"
    )
    assert env["CONDA_PREFIX"] == prefix
    assert not [k for k in env if k.startswith("_ENVPACK")]


def test_activate_refuses_a_path_too_long_for_cmd(wine: Wine, installed: Path) -> None:
    """Real cmd.exe fails "set PATH=..." past 8191 characters ("The input line is too long",
    conda#1923), after CONDA_PREFIX was set. activate.bat measures first and changes nothing.
    Wine's cmd.exe itself crashes once PATH passes 8191 characters (its buffers are fixed), so
    the PATH here brings the new one to about 8100: over activate.bat's 8000, under wine's limit.
    """
    base = ";".join(f"C:\\tools\\folder-number-{i:04d}" for i in range(270))
    assert 7500 < len(base) < 7600
    result, env = activate(wine, installed, before=[f"set PATH={base}"])
    assert "activate-rc=1" in result.out, result.out
    assert "PATH would be" in result.out and "Nothing was changed" in result.out
    assert "CONDA_PREFIX" not in env
    assert env["PATH"] == base


def test_activate_accepts_a_path_just_below_the_limit(wine: Wine, installed: Path) -> None:
    """8000 characters for the new PATH, counted as "new entries;old PATH" (ASCII here)."""
    prefix = win_path(installed)
    added = 6 * len(prefix) + len(
        ";\\Library\\mingw-w64\\bin;\\Library\\usr\\bin;\\Library\\bin;\\Scripts;\\bin;"
    )
    size = 8000 - added
    base = ";".join(["C:\\" + "p" * 96] * (size // 100))  # 100 characters per entry, with ";"
    base += ";C:\\" + "q" * (size - len(base) - 4)
    assert len(base) == size
    result, env = activate(wine, installed, before=[f"set PATH={base}"])
    assert "activate-rc=0" in result.out, result.out
    assert len(env["PATH"]) == 8000
    result, env = activate(wine, installed, before=[f"set PATH={base}q"])
    assert "activate-rc=1" in result.out, result.out
    assert "PATH would be 8001 characters long" in result.out


def test_activate_d_scripts_run_in_name_order(wine: Wine, installed: Path) -> None:
    """Packages' etc\\conda\\activate.d\\*.bat run in name order (as conda sorts them), found by a
    plain FOR (no "dir", so no child cmd.exe and no DIRCMD); "x.batch" matches "*.bat" by its
    short name on Windows and is skipped."""
    folder = installed / "etc" / "conda" / "activate.d"
    folder.mkdir(parents=True)
    (folder / "20-b.bat").write_bytes(b'@set "ORDER=%ORDER%b"\r\n')
    (folder / "10-a.bat").write_bytes(b'@set "ORDER=%ORDER%a"\r\n')
    (folder / "30-c.batch").write_bytes(b'@set "ORDER=%ORDER%X"\r\n')
    result, env = activate(wine, installed, before=['set "DIRCMD=/s /w"'])
    assert "activate-rc=0" in result.out, result.out
    assert env["ORDER"] == "ab"


def test_activate_warns_when_the_environment_was_moved(wine: Wine, installed: Path) -> None:
    """setup.bat records the install path; a moved environment still activates, with a warning
    (its files hard-code the old path)."""
    assert (installed / "etc" / "envpack" / "install-path.txt").read_bytes() == (
        f'"{win_path(installed)}"\r\n'.encode("latin-1")
    )
    result, _ = activate(wine, installed)
    assert "has been moved" not in result.out
    moved = installed.with_name("moved env")
    installed.rename(moved)
    result, env = activate(wine, moved)
    assert "activate-rc=0" in result.out, result.out
    assert "has been moved to" in result.out
    assert env["CONDA_PREFIX"] == win_path(moved)


# ------------------------------------------------------------------ 5: prefixes micromamba breaks


@pytest.mark.parametrize("name", ["env!bang", "env^caret", "env 100%"])
def test_prefix_with_characters_micromamba_breaks_is_refused(bundle: Bundle, name: str) -> None:
    """micromamba's own .bat wrappers (pyc compilation, post-link scripts) run with delayed
    expansion and CALL: "!", "%" and "^" break them silently. Refused before anything is made."""
    if "%" in name and not percent_survives():
        pytest.skip("this wine's cmd.exe loses a '%' of a path before setup.bat sees it")
    prefix = bundle.tmp / "target" / name
    result = bundle.setup(prefix)
    assert result.rc == 6, result.out
    assert 'contains "!", "%" or "^"' in result.out
    assert not prefix.exists() and not work_of(prefix).exists()
    assert records(bundle.record) == []


# ------------------------------------------------------------------ 9: run from inside a zip


def test_setup_bat_opened_inside_a_zip_says_extract_all(
    wine: Wine, demo: Demo, tmp_path: Path
) -> None:
    """Explorer runs a .bat opened inside a zip from a copy in %TEMP%\\Temp1_<zip name>\\ with
    none of the other files."""
    full = unpack(demo, tmp_path / "full")
    copy = tmp_path / "Temp1_demo-win-64.zip" / "demo"
    copy.mkdir(parents=True)
    shutil.copy(full / "setup.bat", copy / "setup.bat")
    prefix = tmp_path / "target" / "env"
    result = wine.run_bat(copy / "setup.bat", [win_path(prefix), "/S"], cwd=tmp_path)
    assert result.rc == 5, result.out
    assert '"Extract All..."' in result.out
    assert not prefix.exists()


def test_an_incomplete_bundle_elsewhere_is_not_taken_for_a_zip(
    wine: Wine, demo: Demo, tmp_path: Path
) -> None:
    full = unpack(demo, tmp_path / "full")
    (full / "env.txt").unlink()
    result = wine.run_bat(full / "setup.bat", [win_path(tmp_path / "env"), "/S"], cwd=tmp_path)
    assert result.rc == 5, result.out
    assert "Extract All" not in result.out
    assert 'missing: "env.txt"' in result.out


# ------------------------------------------------------------------ 12: Windows 10 on ARM


def _set_build(wine: Wine, build: str) -> None:
    key = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion"
    result = wine.run_cmd(f'reg add "{key}" /v CurrentBuildNumber /t REG_SZ /d {build} /f')
    assert result.rc == 0, result.out


def _build(wine: Wine) -> str:
    out = wine.run_cmd(
        r'reg query "HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion" /v CurrentBuildNumber'
    ).out
    return out.split("REG_SZ")[1].split()[0]


def test_windows_10_on_arm_cannot_run_an_x64_environment(wine: Wine, bundle: Bundle) -> None:
    """x64 emulation on ARM exists only from Windows 11 (build 22000)."""
    prefix = bundle.tmp / "target" / "env"
    prefix.parent.mkdir()
    arm = ['set "PROCESSOR_ARCHITECTURE=ARM64"', 'set "PROCESSOR_ARCHITEW6432="']
    old = _build(wine)
    try:
        _set_build(wine, "19045")
        result = bundle.setup(prefix, before=arm)
        assert result.rc == 4, result.out
        assert "only" in result.out and "from Windows 11 (build 22000)" in result.out
        assert "this PC runs build 19045" in result.out
        assert not prefix.exists()
        _set_build(wine, "22631")
        result = bundle.setup(prefix, before=arm)
        installed_ok(result, prefix)
    finally:
        _set_build(wine, old)


# ------------------------------------------------------------------ elevation, %ComSpec%


def test_warns_when_run_as_administrator(wine: Wine, bundle: Bundle) -> None:
    """setup.bat asks fltmc.exe, which only an elevated process may run; wine has none, so a
    program that succeeds is put in its place for this test."""
    system32 = wine.prefix / "drive_c" / "windows" / "system32"
    fake = system32 / "fltmc.exe"
    assert not fake.exists()
    target = bundle.tmp / "a-file"
    target.write_text("x")
    plain = bundle.setup(target)
    assert plain.rc == 6 and "administrator" not in plain.out
    shutil.copy(system32 / "hostname.exe", fake)
    try:
        elevated = bundle.setup(target)
    finally:
        fake.unlink()
    assert elevated.rc == 6, elevated.out
    assert "warning: this window runs as administrator" in elevated.out


def test_launcher_starts_comspec_not_a_cmd_exe_in_the_prefix(wine: Wine, installed: Path) -> None:
    """envpack-shell.bat starts "%ComSpec%": a cmd.exe planted in the prefix (its current folder
    when it starts the shell) is not run."""
    system32 = wine.prefix / "drive_c" / "windows" / "system32"
    shutil.copy(system32 / "hostname.exe", installed / "cmd.exe")
    result = wine.run_bat(
        installed / "envpack-shell.bat", cwd=installed.parent, stdin=b"set CONDA_PREFIX\r\nexit\r\n"
    )
    assert f"CONDA_PREFIX={win_path(installed)}" in result.out, result.out


# ------------------------------------------------------------------ uninstall.bat


def wine_temp(wine: Wine) -> Path:
    (temp,) = (wine.prefix / "drive_c" / "users").glob("*/Temp")
    return temp


def test_uninstall_hands_over_to_a_copy_in_temp(wine: Wine, installed: Path) -> None:
    """uninstall.bat runs a copy of itself from %TEMP% (cmd.exe reads a batch file line by line,
    and the folder it runs from cannot go while it does); the copy asks, and removes itself."""
    before = set(wine_temp(wine).glob("envpack-uninstall-*"))
    no = wine.run_bat(installed / "uninstall.bat", cwd=installed.parent, stdin=b"n\r\n")
    assert no.rc == 2, no.out
    assert "cancelled; nothing was removed" in no.out
    assert (installed / "conda-meta").is_dir()
    assert set(wine_temp(wine).glob("envpack-uninstall-*")) == before


def test_uninstall_removes_the_prefix_only(wine: Wine, installed: Path, tmp_path: Path) -> None:
    """The copy's part. Wine's cmd.exe (unlike Windows') keeps a batch file open while another
    one it handed over to runs, so under wine the removal is run from a copy made here."""
    beside = installed.parent / "keep.txt"
    beside.write_text("x")
    deep = installed / "Lib" / "site-packages" / "pkg" / "sub"
    deep.mkdir(parents=True)
    (deep / "m.py").write_text("x")
    copy = tmp_path / "uninstall-copy.bat"
    shutil.copy(installed / "uninstall.bat", copy)
    result = wine.run_bat(
        copy, ["/S"], cwd=installed, env={"ENVPACK_UNINSTALL_PREFIX": win_path(installed) + "\\"}
    )
    assert result.rc == 0, result.out
    assert "removed" in result.out
    assert not installed.exists()
    assert beside.read_text() == "x"
    assert not copy.exists()  # the copy removed itself


def test_uninstall_refuses_while_active(wine: Wine, installed: Path) -> None:
    result, _ = activate(
        wine,
        installed,
        after=[f'call "{win_path(installed)}\\uninstall.bat" /S', "echo un-rc=%ERRORLEVEL%"],
    )
    assert "is active in this window" in result.out, result.out
    assert "un-rc=0" not in result.out
    assert (installed / "conda-meta").is_dir()


# ------------------------------------------------------------------ env_vars.d


def test_package_env_vars_are_set_by_activate(wine: Wine, demo: Demo, tmp_path: Path) -> None:
    """Variables from the packages' etc\\conda\\env_vars.d\\*.json (merged at build time by
    pkginfo.env_vars_d) are set by activate.bat before the activation scripts, literally, and the
    recipe's own variables win over them."""
    from dataclasses import replace

    from envpack.bundle.stubs import StubContext, render_setup

    ctx = demo.ctx
    assert isinstance(ctx, StubContext)
    b = Bundle(wine, demo, tmp_path)
    recipe_key, recipe_value = ctx.variables[0]
    ctx = replace(
        ctx,
        package_variables=(("GDAL_DATA", "C:\\gdal & data (x86)!"), (recipe_key, "from a package")),
    )
    (b.dir / "setup.bat").write_bytes(render_setup(ctx))
    prefix = tmp_path / "target" / PREFIX_NAME
    prefix.parent.mkdir()
    installed_ok(b.setup(prefix), prefix)
    result, env = activate(wine, prefix)
    assert "activate-rc=0" in result.out, result.out
    assert env["GDAL_DATA"] == "C:\\gdal & data (x86)!"
    assert env[recipe_key] == recipe_value


# ------------------------------------------------------------------ double-click


def test_double_click_asks_for_the_folder(wine: Wine, bundle: Bundle) -> None:
    """Explorer starts cmd.exe /c "setup.bat" with no argument: setup.bat asks for the folder,
    shows the default, and Enter keeps it. Wine's cmd.exe sets no CMDCMDLINE; the test sets it as
    Windows would. (Wine's "set /p" reads all of a redirected stdin at once, so only the folder is
    answered here; the confirmation that follows then reads nothing and cancels.)"""
    explorer = f'C:\\WINDOWS\\system32\\cmd.exe /c ""{win_path(bundle.dir)}\\setup.bat" "'
    prefix = bundle.tmp / "typed & chosen (x86)"
    result = wine.run_bat(
        bundle.dir / "setup.bat",
        cwd=bundle.tmp,
        env={"CMDCMDLINE": explorer},
        stdin=f"{win_path(prefix)}\r\n".encode("latin-1"),
    )
    assert result.rc == 2, result.out
    assert "Install into [" in result.out
    assert f'Install into  "{win_path(prefix)}"' in result.out
    assert result.out.rstrip().endswith("Press any key to continue...")
    # Enter keeps the default
    result = wine.run_bat(
        bundle.dir / "setup.bat", cwd=bundle.tmp, env={"CMDCMDLINE": explorer}, stdin=b"\r\n"
    )
    assert result.rc == 2, result.out
    shown = result.out.split("Install into [", 1)[1].split("]", 1)[0]
    assert shown.endswith("\\envs\\demo")
    assert f'Install into  "{shown}"' in result.out
    # typed at a prompt, with no folder: no question (the default is taken, as before)
    typed = wine.run_bat(bundle.dir / "setup.bat", cwd=bundle.tmp, stdin=b"n\r\n")
    assert typed.rc == 2 and "Install into [" not in typed.out
