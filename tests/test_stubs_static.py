"""What can be checked in the batch templates and the rendered scripts without running cmd.exe,
and the rendered micromamba command line run by the real micromamba (Linux build, same parser
and installer code as micromamba.exe)."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from envpack.bundle.mamba_cli import (
    CLEARED_VARS,
    DEAD_PROXY,
    HOME_VARS,
    INSTALL_FLAGS,
    NO_PROXY_VAR,
    NO_SHORTCUTS_FLAG,
    PKGS_DIRS_VAR,
    PROXY_VARS,
    ROOT_PREFIX_VAR,
    install_argv,
)
from envpack.bundle.stubs import (
    PREFIX_TEMPLATES,
    StubContext,
    need_mb,
    path_limit,
    prefix_files,
    render_setup,
    render_sfx_header,
    stubs_dir,
)
from envpack.errors import BundleError
from wine import STANDIN_DIR, Demo, build_demo

CTX = StubContext(
    name="demo",
    platform="win-64",
    default_prefix="%LOCALAPPDATA%\\envs\\demo",
    explicit_file="env.txt",
    channel_dir="channel",
    micromamba_files=("micromamba.exe", "msvcp140.dll", "vcruntime140.dll"),
    files=(
        ("channel\\noarch\\docs-0.1-pyh0.conda", 1000),
        ("channel\\noarch\\repodata.json", 300),
        ("channel\\win-64\\tool-2.0-h1234_0.conda", 2_000_000),
        ("channel\\win-64\\repodata.json", 400),
        ("env.txt", 200),
        ("micromamba.exe", 12_000_000),
        ("msvcp140.dll", 500_000),
        ("post-install\\01-first (x86) & co!.bat", 90),
        ("post-install\\02-second.cmd", 80),
        ("vcruntime140.dll", 100_000),
    ),
    packages=("channel\\noarch\\docs-0.1-pyh0.conda", "channel\\win-64\\tool-2.0-h1234_0.conda"),
    installed_size=7_500_000,
    longest_path=90,
    post_install=("post-install\\01-first (x86) & co!.bat", "post-install\\02-second.cmd"),
    variables=(("MY_VAR", "a&b^c!d%e|f<g>h (x86)"), ("OTHER", "")),
    envpack_version="0.1.0",
    lock_sha256="5" * 64,
)


def code_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of the lines cmd.exe parses: no comments, no embedded data."""
    out = []
    for number, line in enumerate(text.split("\r\n"), 1):
        stripped = line.lstrip(" @")
        if stripped.lower().startswith(("rem ", "rem\t", "::")) or stripped.lower() == "rem":
            continue
        if re.match(r"^[A-Z]\|", line):  # setup.bat's embedded files, never executed
            continue
        out.append((number, line))
    return out


def without_echo(line: str) -> str:
    """The line up to an echo command: what follows is text, not commands."""
    return re.split(r"\becho[ .]", line, maxsplit=1, flags=re.IGNORECASE)[0]


def assert_batch_text(data: bytes, what: str) -> None:
    assert b"\n" not in data.replace(b"\r\n", b""), f"{what}: a line ends without CRLF"
    assert data.endswith(b"\r\n"), f"{what}: the last line has no CRLF"
    for number, line in code_lines(data.decode("utf-8")):
        assert "&&" not in line and "||" not in line, f"{what}:{number}: {line}"


# ------------------------------------------------------------------ CRLF, no && or ||

TEMPLATES = sorted(p.name for p in stubs_dir().glob("*.bat"))


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_is_crlf_without_and_or(name: str) -> None:
    data = (stubs_dir() / name).read_bytes()
    for number, line in code_lines(
        data.decode("utf-8").replace("\r\n", "\n").replace("\n", "\r\n")
    ):
        assert "&&" not in line and "||" not in line, f"{name}:{number}: {line}"
    if name == "join.bat" and b"\r\n" not in data:
        pytest.xfail("stubs/join.bat (formats.py's) is stored with LF; render() converts it")
    assert_batch_text(data, name)


def test_rendered_scripts_are_crlf_without_and_or() -> None:
    for ctx in (CTX, replace(CTX, post_install=(), variables=())):
        assert_batch_text(render_setup(ctx), "setup.bat")
        assert_batch_text(render_sfx_header(ctx), "sfx header")
        for name, text in prefix_files(ctx):
            assert_batch_text(text.replace("\n", "\r\n").encode(), name)


# ------------------------------------------------------------------ what the script may use


def test_never_writes_the_registry_path_or_autorun() -> None:
    forbidden = re.compile(
        r"(^|[&(]\s*|\bdo\s+)@?(setx|regedit|reg\s+(add|delete|import|copy|restore|load)"
        r"|powershell|findstr|certutil|where|choice|timeout|runas)(\.exe)?\b",
        re.IGNORECASE,
    )
    for data in (render_setup(CTX), render_sfx_header(CTX)):
        text = data.decode()
        for number, line in code_lines(text):
            command = without_echo(line)
            assert not forbidden.search(command.strip()), f"{number}: {line}"
            assert "autorun" not in command.lower(), f"{number}: {line}"
        assert "EnableDelayedExpansion" not in "\n".join(line for _, line in code_lines(text))
        assert "setlocal EnableExtensions DisableDelayedExpansion" in text
    reg = [line for _, line in code_lines(render_setup(CTX).decode()) if "reg " in line]
    # LongPathsEnabled, and the build number for x64 on ARM: read, never written
    assert len(reg) == 2 and all(line.startswith("reg query ") for line in reg)


def test_no_goto_or_call_jumps_backward_in_the_sfx() -> None:
    # cmd.exe looks for a label from the current line to the end of the file first: a backward
    # jump in the self-extracting file would read the whole zip (and under wine, hang).
    lines = code_lines(render_sfx_header(CTX).decode())
    labels: dict[str, int] = {}
    for number, line in lines:
        if line.startswith(":"):
            label = line[1:].split()[0].lower()
            assert label not in labels, f"label :{label} twice"
            labels[label] = number
    jumps = 0
    for number, line in lines:
        command = without_echo(line)
        for target in re.findall(r"\b(?:goto|call)\s+:?([\w-]+)", command, re.IGNORECASE):
            if target.lower() == "eof" or line.lower().lstrip().startswith("call ."):
                continue
            assert target.lower() in labels, f"{number}: no label :{target}"
            assert labels[target.lower()] > number, f"{number}: jumps back to :{target}"
            jumps += 1
    assert jumps > 50


def test_lines_before_the_code_page_switch_are_ascii() -> None:
    ctx = replace(CTX, name="données", default_prefix="D:\\Umgebungen\\données")
    for data in (render_setup(ctx), render_sfx_header(ctx)):
        text = data.decode()
        head = text[: text.index("chcp 65001")]
        for number, line in code_lines(head):
            assert line.isascii(), f"{number}: {line}"


# ------------------------------------------------------------------ one source of truth


def micromamba_line(text: str) -> list[str]:
    (line,) = [line for _, line in code_lines(text) if line.startswith('"%EP_WORK%\\bin\\')]
    command = line.split(' >"%EP_WORK%', 1)[0]
    return [a.strip('"') for a in re.findall(r'"[^"]*"|\S+', command)]


def test_micromamba_command_is_mamba_clis() -> None:
    shortcuts = False
    text = render_setup(CTX).decode()
    assert micromamba_line(text) == install_argv(
        "%EP_WORK%\\bin\\micromamba.exe",
        "%EP_PREFIX%",
        "%EP_BUNDLE%env.txt",
        "win-64",
        shortcuts=shortcuts,
    )


def test_every_inherited_variable_is_cleared_before_micromamba() -> None:
    text = render_setup(CTX).decode()
    run = text.index('\r\n"%EP_WORK%\\bin\\micromamba.exe" create')
    before = text[:run]
    for var in CLEARED_VARS:
        assert f'set "{var}="\r\n' in before, var
    assert "call :clear_prefixed 2>nul" in before
    # relative to the work folder, micromamba's current folder: no path through YAML
    assert before.rindex(f'set "{ROOT_PREFIX_VAR}=root"') > before.rindex("call :clear_prefixed")
    assert f'set "{PKGS_DIRS_VAR}=pkgs"' in before
    assert before.endswith('\r\npushd "%EP_WORK%"')
    # micromamba's run only: dead proxies (no refetch of a damaged package), home in the work
    # folder (environments.txt), all inside a setlocal that ends right after it.
    scoped = before[before.rindex("setlocal\r\n") :]
    for var in PROXY_VARS:
        assert f'set "{var}={DEAD_PROXY}"' in scoped, var
    assert f'set "{NO_PROXY_VAR}="' in scoped
    for var in HOME_VARS:
        assert f'set "{var}=%EP_WORK%\\home"' in scoped, var
    assert text[run:].split("\r\n")[2:5] == [
        'set "EP_MMRC=%ERRORLEVEL%"',
        "popd",
        'endlocal & set "EP_MMRC=%EP_MMRC%"',
    ]


def test_standin_accepts_exactly_the_flags_setup_bat_uses() -> None:
    source = (STANDIN_DIR / "micromamba_standin.c").read_text()

    def array(name: str) -> set[str]:
        body = re.search(name + r"\[\] = \{(.*?)\};", source, re.DOTALL)
        assert body is not None, name
        return set(re.findall(r'L"([^"]+)"', body.group(1)))

    argv = install_argv("mm", "P", "F", "win-64", shortcuts=False)[2:]
    with_value = {
        a for a, b in itertools.pairwise(argv) if a.startswith("-") and not b.startswith("-")
    }
    assert array("FLAGS_ARG") == with_value == {"-p", "-f", "--platform"}
    assert array("FLAGS_NOARG") == {*INSTALL_FLAGS, NO_SHORTCUTS_FLAG}


# ------------------------------------------------------------------ rendering details


def test_embedded_files_follow_the_script() -> None:
    text = render_setup(CTX).decode()
    lines = text.split("\r\n")
    skip = int(re.search(r"skip=(\d+) tokens=1\* delims=\|", text).group(1))  # type: ignore[union-attr]
    assert lines[skip - 1] == "rem Nothing after this line is run."
    data = [line for line in lines[skip:] if line]
    assert all(re.match(r"^[ASCU]\|", line) for line in data)
    for (key, _, _), (name, content) in zip(PREFIX_TEMPLATES, prefix_files(CTX), strict=True):
        mine = [line[2:] for line in data if line.startswith(key + "|")]
        assert "\n".join(mine) + "\n" == content, name
    # the sfx reads the setup.bat it unpacked, with setup.bat's count
    assert f"skip={skip} " in render_sfx_header(CTX).decode()


def test_activation_variables_are_escaped() -> None:
    (activate,) = [text for name, text in prefix_files(CTX) if name == "activate.bat"]
    assert 'set "MY_VAR=a&b^c!d%%e|f<g>h (x86)"\n' in activate
    assert 'set "OTHER="\n' in activate
    assert "@@" not in activate


def test_sizes_and_limits() -> None:
    # 7.5 MB installed + 1000 + 2 MB of packages, in MB of 10^6 bytes, rounded up
    assert need_mb(CTX) == 10
    limit, in_prefix, in_work = path_limit(CTX)
    assert in_prefix == 91
    assert in_work == len(".envpack-work\\pkgs\\") + len("tool-2.0-h1234_0") + 1 + 90
    assert limit == 259 - in_work
    assert path_limit(replace(CTX, longest_path=250))[0] == 0
    text = render_setup(CTX).decode()
    assert f'if "%EP_T:~{limit},1%"=="?" goto :paths_ok' in text
    assert f'set "EP_T=%EP_PREFIX%{"?" * (limit + 1)}"' in text


def test_architectures() -> None:
    def checks(platform: str) -> list[str]:
        text = render_setup(replace(CTX, platform=platform)).decode()
        return re.findall(r'if /i "%EP_ARCH%"=="(\w+)" set "EP_ARCH_OK=1"', text)

    assert checks("win-64") == ["AMD64", "ARM64"]
    assert checks("win-arm64") == ["ARM64"]
    assert checks("linux-64") == []  # a Linux bundle's setup.bat stops with exit code 4


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"post_install": ("post-install\\a^b.bat",)}, "post-install script name"),
        ({"post_install": ("post-install\\100%.bat",)}, "post-install script name"),
        ({"files": (("it's 100%.txt", 1),)}, "bundle file"),
        ({"packages": ('channel\\win-64\\a"b.conda',)}, "package"),
        ({"variables": (("X", 'say "hi"'),)}, "the value of variable X"),
        ({"variables": (("PATH", "C:\\x"),)}, "variable name 'PATH'"),
        ({"variables": (("A-B", "x"),)}, "variable name 'A-B'"),
        ({"name": "a&b"}, "environment name"),
        ({"default_prefix": 'C:\\"x"'}, "default prefix"),
        # menuinst v1 entries would start the deleted work folder's python.exe (issue 14 #10)
        ({"shortcuts": True}, "'envpack: shortcuts: true' is not supported"),
    ],
)
def test_unsafe_values_are_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(BundleError, match=re.escape(message)):
        render_setup(replace(CTX, **change))  # type: ignore[arg-type]


# ------------------------------------------------------------------ against the real micromamba


@pytest.fixture(scope="session")
def demo(std_channel: Path, tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return build_demo(std_channel, tmp_path_factory.mktemp("demo-build"))


def run_rendered(
    mm: Path, bundle: Path, prefix: Path, work: Path
) -> subprocess.CompletedProcess[str]:
    """setup.bat's micromamba line, with its placeholders given Linux paths, run as setup.bat
    runs it: a fresh package cache holding the bundle's packages, an empty root prefix."""
    (work / "pkgs").mkdir(parents=True)
    (work / "root").mkdir()
    for pkg in (bundle / "channel").glob("*/*.conda"):
        shutil.copy(pkg, work / "pkgs")
    argv = micromamba_line((bundle / "setup.bat").read_bytes().decode("utf-8"))
    argv = [
        a.replace("%EP_WORK%\\bin\\micromamba.exe", str(mm))
        .replace("%EP_PREFIX%", str(prefix))
        .replace("%EP_BUNDLE%", str(bundle) + "/")
        for a in argv
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONDA", "MAMBA"))}
    text = (bundle / "setup.bat").read_bytes().decode("utf-8")
    for var in (ROOT_PREFIX_VAR, PKGS_DIRS_VAR):
        (value,) = re.findall(rf'^set "{var}=([^"%]*)"\r$', text, re.MULTILINE)
        env[var] = value
    env["CONDA_OVERRIDE_WIN"] = "10.0.19045"
    # setup.bat runs micromamba from its work folder (pushd "%EP_WORK%")
    return subprocess.run(argv, env=env, cwd=work, capture_output=True, text=True, timeout=120)


@pytest.mark.micromamba
def test_real_micromamba_runs_the_rendered_command(
    demo: Demo, real_micromamba: Path, tmp_path: Path
) -> None:
    with zipfile.ZipFile(demo.zip) as zf:
        zf.extractall(tmp_path / "bundle dir")
    bundle = tmp_path / "bundle dir" / "demo"
    prefix = tmp_path / "the prefix"
    proc = run_rendered(real_micromamba, bundle, prefix, tmp_path / "work")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the records setup.bat checks (and the stand-in writes) are the ones micromamba writes
    ctx = demo.ctx
    assert isinstance(ctx, StubContext)
    expected = {
        p.rsplit("\\", 1)[1].removesuffix(".conda").removesuffix(".tar.bz2") + ".json"
        for p in ctx.packages
    }
    assert {p.name for p in (prefix / "conda-meta").glob("*.json")} == expected
    assert (prefix / "conda-meta" / "history").is_file()


@pytest.mark.micromamba
def test_real_micromamba_refuses_a_damaged_package(
    demo: Demo, real_micromamba: Path, tmp_path: Path
) -> None:
    with zipfile.ZipFile(demo.zip) as zf:
        zf.extractall(tmp_path / "b")
    bundle = tmp_path / "b" / "demo"
    package = next((bundle / "channel" / "win-64").glob("libzlib-*.conda"))
    data = bytearray(package.read_bytes())
    data[len(data) // 2] ^= 0x01
    package.write_bytes(bytes(data))
    prefix = tmp_path / "p"
    proc = run_rendered(real_micromamba, bundle, prefix, tmp_path / "work")
    # as the stand-in does: exit 1 (or -11, 2.8.1 crashing after its last retry, seen once), and
    # a prefix with only conda-meta/history (setup.bat: 10)
    assert proc.returncode in (1, -11), proc.stdout + proc.stderr
    assert sorted(p.name for p in (prefix / "conda-meta").iterdir()) == ["history"]


def test_path_limit_allows_for_micromambas_url_derived_cache_folders() -> None:
    from envpack.bundle.stubs import path_limit

    short = path_limit(replace(CTX, longest_extract=0))
    # a package extracted to pkgs\https\conda.anaconda.org\conda-forge\win-64\<dist>\... (2.6+)
    deep = path_limit(replace(CTX, longest_extract=CTX.longest_path + 120))
    assert deep[2] > short[2]
    assert deep[0] == max(0, 259 - deep[2]) < short[0]
    assert (
        f'set "EP_T=%EP_PREFIX%{"?" * (deep[0] + 1)}"'
        in render_setup(replace(CTX, longest_extract=CTX.longest_path + 120)).decode()
    )


# ------------------------------------------------------------------ issue 14: cmd.exe rules wine
# cannot show (wine's cmd.exe runs no AutoRun, has no DIRCMD quirks in FOR /F children, and
# crashes rather than fails past 8191 characters)


def all_scripts() -> list[tuple[str, str]]:
    """(name, text) of every template and every rendered script, LF line ends."""
    out = [
        (p.name, p.read_bytes().decode("utf-8").replace("\r\n", "\n"))
        for p in sorted(stubs_dir().glob("*.bat"))
    ]
    out.append(("rendered setup.bat", render_setup(CTX).decode().replace("\r\n", "\n")))
    out.append(("rendered sfx header", render_sfx_header(CTX).decode().replace("\r\n", "\n")))
    out += [(f"rendered {name}", text) for name, text in prefix_files(CTX)]
    return out


def test_no_command_form_for_f() -> None:
    """FOR /F over a command's output ("in ('...')" or backquotes) starts a child cmd.exe, which
    runs the user's AutoRun (a broken "conda init" hook prints errors; one with "cd /d" moves a
    relative "dir"). Command output goes to a scratch file that FOR /F reads."""
    command_form = re.compile(r"\bin\s*\(\s*['`]", re.IGNORECASE)
    for name, text in all_scripts():
        for number, line in code_lines(text.replace("\n", "\r\n")):
            assert not command_form.search(line), f"{name}:{number}: {line}"
    # and no pipe either: each side of a pipe is a child cmd.exe too
    for name, text in all_scripts():
        for number, line in code_lines(text.replace("\n", "\r\n")):
            assert not re.search(r"[^|]\|[^|]", without_echo(line).split('"')[0]), (
                f"{name}:{number}: {line}"
            )


def test_set_listing_redirects_come_first() -> None:
    """`set NAME >file` makes wine look up "NAME " (with the space); `>file set NAME` works in
    both."""
    for name, text in all_scripts():
        for number, line in code_lines(text.replace("\n", "\r\n")):
            assert not re.match(r"^set [A-Za-z_#]+ +[0-9]?>", line), f"{name}:{number}: {line}"


def test_dircmd_is_cleared_before_any_dir() -> None:
    text = render_setup(CTX).decode()
    lines = [line for _, line in code_lines(text)]
    first_dir = min(i for i, line in enumerate(lines) if re.match(r"^dir\b", line))
    assert lines.index('set "DIRCMD="') < first_dir
    for name, body in all_scripts():
        if "activate" in name or "uninstall" in name or "shell" in name:
            assert not re.search(r"^\s*dir\b", body, re.MULTILINE | re.IGNORECASE), name


def test_marker_is_written_before_micromamba_starts() -> None:
    text = render_setup(CTX).decode()
    marker = text.index('type nul >"%EP_WORK%\\.envpack-incomplete"')
    run = text.index('\r\n"%EP_WORK%\\bin\\micromamba.exe" create')
    assert marker < run
    # and a rerun recognises the work folder's marker, not only the prefix's
    rerun = (
        'if exist "%EP_WORK%\\.envpack-incomplete" if exist "%EP_PREFIX%\\conda-meta\\" '
        "goto :prefix_ok"
    )
    assert rerun in text
    assert text.index('set "EP_WORK=%EP_PREFIX%.envpack-work"') < text.index(rerun)


def test_prefix_characters_are_refused_before_anything_is_written() -> None:
    text = render_setup(CTX).decode()
    checks = [m.start() for m in re.finditer(r"goto :prefix_chars", text)]
    assert len(checks) == 3  # "!", "^", "%"
    assert max(checks) < text.index('mkdir "%EP_WORK%\\pkgs"')
    assert 'for /f "delims=%%" %%A in ("x%EP_PREFIX%x") do set "EP_T=%%A"' in text


def test_activate_never_expands_path_and_checks_before_changing() -> None:
    """`set "PATH=...;%PATH%"` breaks on a quoted PATH entry with "&" and past 8191 characters:
    PATH is never %-expanded in activate.bat, and the length check precedes every change."""
    (text,) = [t for name, t in prefix_files(CTX) if name == "activate.bat"]
    lines = [line for _, line in code_lines(text.replace("\n", "\r\n"))]
    for line in lines:
        assert "%PATH%" not in line.upper() and "%PATH:" not in line.upper(), line
    check = lines.index("if %_ENVPACK_N% GTR 8000 goto :_envpack_too_long")
    first_change = min(
        i for i, line in enumerate(lines) if re.match(r'^set "(PATH|CONDA_\w+|PROMPT)=', line)
    )
    assert check < first_change
    assert (
        'for /f "usebackq tokens=1* delims==" %%K in ("%_ENVPACK_OUT%.one") do '
        'set "PATH=%_ENVPACK_ADD%;%%L"'
    ) in lines


def test_no_bare_cmd_exe() -> None:
    """A new shell is "%ComSpec%" (cmd.exe by its full path), never "cmd" looked up in the
    current folder and PATH."""
    for name, text in all_scripts():
        for number, line in code_lines(text.replace("\n", "\r\n")):
            assert not re.match(r"^(cmd|cmd\.exe)\b", line, re.IGNORECASE), f"{name}:{number}"
    shell = (stubs_dir() / "envpack-shell.bat").read_text()
    assert 'set "ENVPACK_SHELL_COMSPEC=%ComSpec%"' in shell
    assert '"%ENVPACK_SHELL_COMSPEC%" /d /k ' in shell


def test_embedded_files_use_no_for_variable_of_the_writer() -> None:
    """setup.bat writes the embedded files with `for /f ... %%A ... %%B`; wine's cmd.exe
    substitutes again inside the substituted text, so a %%A or %%B in a file loops forever."""
    for name, text in prefix_files(CTX):
        assert "%%A" not in text and "%%B" not in text, name


def test_echo_quotes_are_balanced() -> None:
    """An odd number of quotes in an echo line puts a trailing "1>&2" inside the quotes: printed,
    not applied."""
    for name, text in all_scripts():
        for number, line in code_lines(text.replace("\n", "\r\n")):
            if line.lower().startswith("echo"):
                assert line.count('"') % 2 == 0, f"{name}:{number}: {line}"


def test_sfx_gives_tar_the_file_by_name() -> None:
    """Windows' tar.exe takes narrow arguments (libarchive#2092): by default it runs in the file's
    folder and gets the file's name alone."""
    text = render_sfx_header(CTX).decode()
    assert 'pushd "%EP_SFX_DIR%"\r\n"%EP_TAR%" -xf "%EP_SFX_NAME%"\r\n' in text


def test_x64_on_arm_checks_the_windows_build() -> None:
    text = render_setup(CTX).decode()
    assert 'if /i "%EP_ARCH%"=="ARM64" set "EP_X64_ON_ARM=1"' in text
    assert "if %EP_BUILD% GEQ 22000 goto :emulation_ok" in text
    arm = render_setup(replace(CTX, platform="win-arm64")).decode()
    assert 'set "EP_X64_ON_ARM=1"' not in arm


def test_uninstall_is_written_into_the_prefix() -> None:
    names = [name for name, _ in prefix_files(CTX)]
    assert names == ["activate.bat", "envpack-shell.bat", ".condarc", "uninstall.bat"]
    (text,) = [t for name, t in prefix_files(CTX) if name == "uninstall.bat"]
    assert 'Remove "demo" and everything in' in text


def test_env_vars_d_merge_like_conda() -> None:
    from envpack.bundle.pkginfo import env_vars_d

    merged = env_vars_d(
        [
            ("etc/conda/env_vars.d/b.json", b'{"B": "2", "X": "from b"}'),
            ("etc/conda/env_vars.d/a.json", b'{"A": "1", "X": "from a"}'),
        ]
    )
    assert merged == (("A", "1"), ("B", "2"), ("X", "from b"))
    with pytest.raises(BundleError, match=r"etc/conda/env_vars.d/c.json: not a JSON object"):
        env_vars_d([("etc/conda/env_vars.d/c.json", b'{"A": 1}')])
    with pytest.raises(BundleError, match=r"d.json: not a JSON file"):
        env_vars_d([("d.json", b"{")])
    (activate,) = [
        text
        for name, text in prefix_files(
            replace(CTX, package_variables=(("MY_VAR", "pkg"), ("PKG_ONLY", "50%")))
        )
        if name == "activate.bat"
    ]
    # the recipe's MY_VAR wins, and keeps its place after the package's variables
    assert 'set "PKG_ONLY=50%%"\nset "MY_VAR=a&b^c!d%%e|f<g>h (x86)"\nset "OTHER="\n' in activate
    with pytest.raises(BundleError, match="variable name 'PATH'"):
        prefix_files(replace(CTX, package_variables=(("PATH", "x"),)))


def test_deep_trees_are_removed_by_their_long_path_form() -> None:
    """cmd.exe is not long-path aware even with LongPathsEnabled=1 (issue 14 #11): rmdir of a
    tree deeper than MAX_PATH gets the "\\\\?\\" form first."""
    text = render_setup(CTX).decode()
    assert 'rmdir /s /q "\\\\?\\%EP_PREFIX%" >nul 2>&1' in text
    assert 'rmdir /s /q "\\\\?\\%EP_WORK%" >nul 2>&1' in text
    assert 'rmdir /s /q "\\\\?\\%EP_WORK%\\pkgs" >nul 2>&1' in text
    (uninstall,) = [t for name, t in prefix_files(CTX) if name == "uninstall.bat"]
    assert 'rmdir /s /q "\\\\?\\%EP_PREFIX%" >nul 2>&1' in uninstall


# ------------------------------------------------------------------ progress while micromamba runs
# (tests/test_setup_progress.py runs it under wine; these are what wine cannot show)

HB_START = 'start "" /b "%ComSpec%" /d /v:off /c %%EP_HB_Q%% <nul'


@pytest.fixture(scope="module")
def update_bat(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real update bundle's update.bat (tests/update_factory.py), CRLF text."""
    from update_factory import build_full, build_update, extract, make_versions

    base = tmp_path_factory.mktemp("static-update")
    v = make_versions(base / "versions")
    build_full(v, "v1")
    (zipped,) = build_update(v, "v2", v.bundles["v1"], base / "dist")
    return (extract(zipped, base / "update") / "update.bat").read_bytes().decode()


def test_progress_child_runs_no_autorun_and_gets_no_path_on_its_line(update_bat: str) -> None:
    """The heartbeat is a second cmd.exe. /d: the user's AutoRun (a broken "conda init" hook)
    never runs in it; /v:off: a "!" of the bundle's path stays. The path is not on START's line,
    where a "&" in it would split the line: the child expands %EP_HB_Q%, the path in quotes. Its
    input is nul, so after Ctrl-Break (which START /B does not shield) it cannot sit at "Terminate
    batch job (Y/N)?" taking the keys the user types next."""
    scripts = {
        "setup.bat": render_setup(CTX).decode(),
        "sfx header": render_sfx_header(CTX).decode(),
        "update.bat": update_bat,
    }
    for name, text in scripts.items():
        lines = [line for _, line in code_lines(text)]
        starts = [line for line in lines if re.match(r"^start\b", line, re.IGNORECASE)]
        assert starts == [HB_START], name
        assert 'set EP_HB_Q="%EP_HB_SELF%"' in lines, name
        # the copy started is this very script (in the sfx: the setup.bat it unpacked)
        self_set = [line for line in lines if line.startswith('set "EP_HB_SELF=')]
        expected = (
            'set "EP_HB_SELF=%~f0"'
            if name == "update.bat"
            else 'set "EP_HB_SELF=%EP_BUNDLE%setup.bat"'
        )
        assert self_set == [expected], name
    # no other cmd.exe is started without /d anywhere
    for name, text in all_scripts():
        for number, line in code_lines(text.replace("\n", "\r\n")):
            for call in re.findall(r'"%(?:ComSpec|ENVPACK_SHELL_COMSPEC)%"( /.*)', line, re.I):
                assert call.startswith(" /d "), f"{name}:{number}: {line}"


def test_progress_is_dispatched_before_anything_runs(update_bat: str) -> None:
    """The background copy goes to :heartbeat from its first lines: it never switches the code
    page, reads arguments, asks a question or writes a file of the install."""
    for name, text in (("setup.bat", render_setup(CTX).decode()), ("update.bat", update_bat)):
        lines = [line for _, line in code_lines(text)]
        assert lines[1:4] == [
            "setlocal EnableExtensions DisableDelayedExpansion",
            'set "DIRCMD="',
            "if defined EP_HEARTBEAT goto :heartbeat",
        ], name


def micromamba_runs(text: str) -> list[int]:
    """Indexes (in ``lines``) of the lines that run micromamba.exe."""
    return [
        i
        for i, line in enumerate(text.split("\r\n"))
        if re.match(r'^"%EP_WORK%\\bin\\micromamba\.exe" (create|install|remove) ', line)
    ]


def test_marker_then_progress_then_micromamba_then_its_log(update_bat: str) -> None:
    """Each micromamba run sits between :hb_start and :hb_wait, with nothing between :hb_wait and
    micromamba but the end of its setlocal, and step.log is read only after :hb_wait (the
    heartbeat's last act is hb.end, which :hb_wait waits for): the heartbeat's probe of step.log
    and the script's reading of it never meet. The marker is written before any of it."""
    for name, text, marker in (
        ("setup.bat", render_setup(CTX).decode(), 'type nul >"%EP_WORK%\\.envpack-incomplete"'),
        ("update.bat", update_bat, '>"%EP_MARKER%" echo %EP_OLD% %EP_NEW%'),
    ):
        lines = text.split("\r\n")
        runs = micromamba_runs(text)
        assert len(runs) == (1 if name == "setup.bat" else 2), name
        first_marker = lines.index(marker)
        for run in runs:
            start = max(i for i in range(run) if lines[i] == "call :hb_start")
            assert first_marker < start, name
            assert "setlocal" in lines[start:run], name
            after = lines[run + 1 : run + 6]
            assert after == [
                'set "EP_MMRC=%ERRORLEVEL%"',
                "popd",
                'endlocal & set "EP_MMRC=%EP_MMRC%"',
                "call :hb_wait",
                'type "%EP_WORK%\\step.log" >>"%EP_LOG%"',
            ], (name, after)
            # nothing reads or writes step.log between the start and micromamba
            assert not any("step.log" in line for line in lines[start + 1 : run]), name


def test_heartbeat_ends_with_hb_end_and_probes_step_log_without_writing() -> None:
    text = (stubs_dir() / "heartbeat.bat").read_bytes().decode()
    lines = [line for _, line in code_lines(text)]
    loop = lines.index(":heartbeat")
    end = lines.index('type nul >"%EP_WORK%\\hb.end"')
    assert lines[end + 1] == "exit /b 0"
    assert all(not line.startswith("echo") for line in lines[loop:end])
    # hb.end is written in one place only: after the loop, the heartbeat's last act
    assert sum('>"%EP_WORK%\\hb.end"' in line for line in lines) == 1
    # the probe opens step.log for appending and writes nothing to it
    probe = lines[lines.index(":hb_probe") + 1]
    assert probe == 'call :hb_free >>"%EP_WORK%\\step.log"'
    free = lines[lines.index(":hb_free") + 1 : lines.index(":hb_free") + 3]
    assert free == ['type nul >"%EP_WORK%\\hb.free"', "goto :eof"]
    # its waits are ping.exe by full path (timeout.exe fails with redirected input, choice is
    # not on every Windows), and its stop checks both signals
    waits = [line for line in lines if "ping.exe" in line]
    assert waits and all('"%SystemRoot%\\System32\\ping.exe" -n ' in line for line in waits)
    tick = lines[lines.index(":hb_tick") :]
    assert 'if exist "%EP_WORK%\\mm.done" goto :hb_stop' in tick
    assert 'if exist "%EP_WORK%\\hb.free" goto :hb_stop' in tick


def test_micromamba_removed_after_its_copy_is_named() -> None:
    # an antivirus quarantining micromamba.exe between its checked copy and its start: cmd.exe's
    # "not recognized" (9009) or a failure with the file gone goes to the named message, exit 9,
    # before the marker or micromamba's failure message (not reproducible under wine: nothing
    # runs between the copy and the command that a test could use to delete the file)
    text = render_setup(CTX).decode("utf-8")
    lines = [line for _, line in code_lines(text)]
    run = next(
        i
        for i, line in enumerate(lines)
        if line.startswith('"%EP_WORK%\\bin\\micromamba.exe" create ')
    )
    after = lines[run : run + 12]
    assert 'if "%EP_MMRC%"=="0" goto :micromamba_started' in after
    assert 'if "%EP_MMRC%"=="9009" goto :micromamba_not_started' in after
    assert 'if not exist "%EP_WORK%\\bin\\micromamba.exe" goto :micromamba_not_started' in after
    assert after.index(":micromamba_started") < after.index(
        'if exist "%EP_PREFIX%\\" type nul >"%EP_PREFIX%\\.envpack-incomplete"'
    )
    handler = lines[lines.index(":micromamba_not_started") :]
    handler = handler[: handler.index("goto :finish") + 1]
    assert lines.index(":micromamba_not_started") > run  # no backward GOTO
    removed = handler[
        handler.index('if not exist "%EP_WORK%\\bin\\micromamba.exe" goto :micromamba_removed') :
    ]
    removed = removed[removed.index(":micromamba_removed") :]
    assert removed[1] == (
        'echo setup: "%EP_WORK%\\bin\\micromamba.exe" was removed from the work folder after it'
        " was copied there."
    )
    assert 'set "EP_RC=9"' in handler
