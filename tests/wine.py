"""Running batch files under wine's real cmd.exe, and the Windows stand-ins the tests build.

One WINEPREFIX per test session (in a temporary folder, removed at exit) with a persistent
``wineserver -p``, so that each call costs a fraction of a second instead of seconds. Every wine
call runs under ``timeout`` (a wine process has hung once on these machines), with WINEDEBUG=-all
and its output sent to a file: the services wine starts on first use inherit the caller's
handles, and would keep a pipe open forever.

Batch files are started from a wrapper .bat (see :meth:`Wine.run_bat`), because wine turns its
own Linux argv into a Windows command line with C-runtime escaping (a trailing backslash
doubles); inside the wrapper the arguments are cmd.exe's own. With LANG=C.UTF-8 wine's cmd.exe
reads batch text in code page 437, so wrappers are written in it (it has é).

Known wine 8 cmd.exe differences the tests work around are listed in ../shared/notes; one more
was found here: wine re-expands the text it has just substituted for %VAR%, %~dp0 or %1, so a
"%" inside a path is lost (cmd.exe on Windows substitutes once). :func:`percent_survives` probes
for it, and tests of paths with "%" skip while the installed wine has that bug.

More wine 8 cmd.exe traps found while writing the stubs (setup.bat and join.bat avoid them all,
so that a test passing here means the same on Windows):
- ``call x.bat`` that ends in ``exit /b N`` (N > 0) leaves ERRORLEVEL 1 in the caller.
- ``(...) >file 2>&1`` is an error; ``call ... >file 2>&1`` works.
- ``call :label`` inside parentheses in a FOR body fails ("Target to GOTO not found").
- FOR variables are substituted before IF is parsed: ``==``, quotes or parentheses in the value
  break the IF.
- ``%v:~N,1%`` with N past the end of the string gives garbage.
- ``'set X 2^>nul'`` inside ``for /f`` lists nothing.
- ``if exist "file\"`` is true for a file (test a folder by its attributes instead).
- Without a console chcp reports code page 0 and cannot switch; CMDCMDLINE is not set.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

STANDIN_DIR = Path(__file__).parent / "standin"
MINGW_GCC = "x86_64-w64-mingw32-gcc"
BATCH_ENCODING = "cp437"  # what wine's cmd.exe reads batch files as, under LANG=C.UTF-8
# Variables a developer's shell may have that would change what setup.bat does under test.
HOST_LEAKS = ("CONDA_", "MAMBA_", "PYTHON", "STANDIN_", "_CE_", "_CONDA")


def win_path(path: Path | str) -> str:
    """The Windows name of a Linux path inside wine: wine maps / to drive Z:."""
    return "Z:" + str(Path(path).resolve()).replace("/", "\\")


def wine_missing() -> str | None:
    for tool in ("wine", "wineserver", "timeout"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian: apt-get install wine wine64)"
    return None


def mingw_missing() -> str | None:
    if shutil.which(MINGW_GCC) is None:
        return f"{MINGW_GCC} is not installed (Debian: apt-get install gcc-mingw-w64-x86-64-win32)"
    return None


@dataclass
class Result:
    rc: int
    raw: bytes

    @property
    def out(self) -> str:
        # cmd.exe's output is in a legacy code page under wine; the tests compare ASCII text and
        # read non-ASCII paths from the stand-ins' UTF-8 records instead
        return self.raw.decode("latin-1").replace("\r\n", "\n")


class Wine:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.prefix = root / "wineprefix"
        self.calls = root / "calls"
        self.calls.mkdir(parents=True)
        self._n = 0
        self._server: subprocess.Popen[bytes] | None = None
        self._server_log = root / "wineserver.log"

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.upper().startswith(HOST_LEAKS) and k not in ("DISPLAY", "WAYLAND_DISPLAY")
        }
        env.update(
            WINEPREFIX=str(self.prefix),
            WINEDEBUG="-all",
            WINEDLLOVERRIDES="mscoree,mshtml=",  # no Mono/Gecko installer on a fresh prefix
            LANG="C.UTF-8",
            LC_ALL="C.UTF-8",
        )
        env.update(extra or {})
        return env

    def start(self) -> None:
        """Create the prefix, then start this session's one persistent server and check it.

        ``wineserver -p`` needs the prefix to exist: started before it, it exits at once and
        every call then runs on the server wine starts by itself, which Debian's wrapper starts
        with ``-p0``: it exits as soon as it is idle, taking the mount manager (winedevice.exe)
        with it. A call that lands in that gap sees no Z: drive ("could not read the free space
        of Z:", "Can't recognize ...micromamba.exe", exit 9009).
        """
        # A server's socket directory is named after the prefix's device and inode number, and
        # ext4 gives a new folder the inode of one just deleted (measured: of five prefixes made
        # and removed in a row, three had the inode of the one before). Whatever still serves
        # that directory (a server of an earlier session, exiting) is stopped first: cheap, and
        # nothing to stop in the usual case.
        self.prefix.mkdir(parents=True)
        self._tool(["wineserver", "-k"], timeout=30)
        self._tool(["wineserver", "-w"], timeout=120)
        boot = self._tool(["wine", "wineboot", "--init"], timeout=300)
        # wineboot's auto-started server writes system.reg when it exits: wait for it, so that
        # the persistent server below is the only one
        self._tool(["wineserver", "-w"], timeout=120)
        if boot.returncode != 0 or not (self.prefix / "system.reg").is_file():
            raise RuntimeError(
                f"wineboot --init did not create the prefix {self.prefix} (exit {boot.returncode})"
            )
        self._server_log = self.root / "wineserver.log"
        # A server that was still exiting when the wait above gave up holds the directory's
        # lock, and the persistent one exits 2 at once (seen on a loaded machine): stop it and
        # start again, a few times, before calling the session broken.
        for _ in range(3):
            self._start_persistent()
            time.sleep(0.5)
            if self._server is not None and self._server.poll() != 2:
                break
            self._tool(["wineserver", "-k"], timeout=30)
            self._tool(["wineserver", "-w"], timeout=120)
        result = self.run_cmd("ver", timeout=180)
        if result.rc != 0:
            raise RuntimeError(f"wine does not start: {result.out}")

    def _start_persistent(self) -> None:
        with self._server_log.open("wb") as log:
            self._server = subprocess.Popen(
                ["wineserver", "-p", "-f"],
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def check_server(self) -> None:
        """Fail loudly when the session's persistent wineserver is gone: the calls would then
        run on a short-lived auto-started one and fail at random."""
        if self._server is None:
            raise RuntimeError("the session's wineserver was never started")
        code = self._server.poll()
        if code is not None:
            log = self._server_log.read_bytes().decode("utf-8", "replace").strip()
            # wineserver exits 2 when another server holds its socket directory's lock
            why = " (another wineserver holds this prefix's lock)" if code == 2 else ""
            raise RuntimeError(
                f"the session's persistent wineserver exited with code {code}{why}: "
                f"{log or '(no output)'}"
            )

    def _tool(self, argv: Sequence[str], timeout: int) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["timeout", "-k", "10", str(timeout), *argv],
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.root,
            check=False,
        )

    def stop(self) -> None:
        self._tool(["wineserver", "-k"], timeout=30)
        if self._server is not None:
            try:
                self._server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._server.kill()
                self._server.wait(timeout=30)

    def _next(self, stem: str) -> Path:
        self._n += 1
        return self.calls / f"{self._n:04d}-{stem}"

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        stdin: bytes = b"",
        cwd: Path | None = None,
        timeout: int = 120,
    ) -> Result:
        """``wine ARGV...`` with a timeout; stdout and stderr together."""
        self.check_server()
        base = self._next("run")
        out_file = base.with_suffix(".out")
        in_file = base.with_suffix(".in")
        in_file.write_bytes(stdin)
        with in_file.open("rb") as fin, out_file.open("wb") as fout:
            proc = subprocess.run(
                ["timeout", "-k", "10", str(timeout), "wine", *argv],
                env=self.env(env),
                stdin=fin,
                stdout=fout,
                stderr=subprocess.STDOUT,
                cwd=cwd or self.calls,
                check=False,
            )
        if proc.returncode == 124:
            raise AssertionError(f"wine {' '.join(argv)} timed out after {timeout} s")
        self.check_server()
        return Result(proc.returncode, out_file.read_bytes())

    def run_cmd(self, line: str, **kw: object) -> Result:
        """One cmd.exe command line, from a wrapper batch file."""
        return self._run_wrapper([line], **kw)  # type: ignore[arg-type]

    def run_bat(
        self,
        bat: Path,
        args: Sequence[str] = (),
        *,
        cwd: Path | None = None,
        before: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        stdin: bytes = b"",
        timeout: int = 120,
        by_name: bool = False,
    ) -> Result:
        """Run BAT with ARGS as typed at a cmd.exe prompt: each argument is quoted unless it is
        a plain word, and "%" is doubled (the wrapper is a batch file). ``before`` holds wrapper
        lines run first (e.g. ``set "PATH=..."``); ``by_name`` starts BAT by its bare name from
        its own folder. The exit code is the batch file's ``exit /b`` code: the wrapper
        transfers control to it (no CALL, which would parse the line a second time)."""
        words = [_arg(a) for a in args]
        folder = bat.parent if by_name else cwd or bat.parent
        lines = [f'cd /d "{win_path(folder)}"', *before]
        name = f'"{bat.name}"' if by_name else f'"{win_path(bat)}"'
        lines.append(" ".join([name, *words]))
        return self._run_wrapper(lines, env=env, stdin=stdin, timeout=timeout)

    def _run_wrapper(
        self,
        lines: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        stdin: bytes = b"",
        timeout: int = 120,
    ) -> Result:
        wrapper = self._next("wrapper").with_suffix(".bat")
        # The wrapper's first command leaves a mark: without it, cmd.exe never ran a line of the
        # wrapper (nothing the test asked for happened), and the call is made once more. Seen
        # once in eight full runs: wine exited 1 with no output at all, the server still up.
        started = wrapper.with_suffix(".started")
        head = f'@echo off\r\ntype nul >"{win_path(started)}"\r\n'
        text = head + "".join(f"{line}\r\n" for line in lines)
        wrapper.write_bytes(text.encode(BATCH_ENCODING))
        argv = ["cmd", "/d", "/c", win_path(wrapper)]
        result = self.run(argv, env=env, stdin=stdin, timeout=timeout)
        if result.rc != 0 and not started.exists():
            result = self.run(argv, env=env, stdin=stdin, timeout=timeout)
        return result

    def set_long_paths(self, enabled: bool | None) -> None:
        """LongPathsEnabled in this session's registry (None: absent, as in a fresh prefix)."""
        key = r"HKLM\SYSTEM\CurrentControlSet\Control\FileSystem"
        if enabled is None:
            line = f'reg delete "{key}" /v LongPathsEnabled /f'
        else:
            line = f'reg add "{key}" /v LongPathsEnabled /t REG_DWORD /d {int(enabled)} /f'
        result = self.run_cmd(line)
        assert result.rc == 0 or enabled is None, result.out


def _arg(arg: str) -> str:
    plain = arg and all(c.isascii() and (c.isalnum() or c in "/\\:.-_+") for c in arg)
    text = arg.replace("%", "%%")
    return text if plain else f'"{text}"'


_WINE: Wine | None = None
_EXES: dict[str, Path] = {}
_PERCENT: bool | None = None


def get_wine() -> Wine:
    """The session's wine (started on first use), or a skip with the reason."""
    global _WINE
    reason = wine_missing()
    if reason:
        pytest.skip(reason)
    if _WINE is None:
        wine = Wine(Path(tempfile.mkdtemp(prefix="envpack-wine-")))
        _WINE = wine
        wine.start()
    return _WINE


def shutdown() -> None:
    """Stop the session's wineserver and remove its prefix and the stand-ins. Called from the
    session fixtures' teardown: tests/conftest.py ends the process with os._exit, so atexit
    handlers never run."""
    global _WINE, _PERCENT
    if _WINE is not None:
        _WINE.stop()
        shutil.rmtree(_WINE.root, ignore_errors=True)
        _WINE = None
        _PERCENT = None
    for exe in _EXES.values():
        shutil.rmtree(exe.parent, ignore_errors=True)
    _EXES.clear()


def build_exe(source: str) -> Path:
    """tests/standin/SOURCE compiled for Windows, once per session."""
    if source not in _EXES:
        reason = mingw_missing()
        if reason:
            pytest.skip(reason)
        out_dir = Path(tempfile.mkdtemp(prefix="envpack-standin-"))
        exe = out_dir / (Path(source).stem.replace("_standin", "") + ".exe")
        proc = subprocess.run(
            [
                MINGW_GCC,
                "-O2",
                "-municode",
                "-static",
                "-Wall",
                "-o",
                str(exe),
                str(STANDIN_DIR / source),
                "-lws2_32",  # the micromamba stand-in connects where the real one would fetch
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if proc.returncode != 0:
            raise AssertionError(f"{source} does not compile:\n{proc.stderr}")
        _EXES[source] = exe
    return _EXES[source]


def micromamba_standin() -> Path:
    return build_exe("micromamba_standin.c")


def tar_standin() -> Path:
    return build_exe("tar_standin.c")


def chcp_standin() -> Path:
    return build_exe("chcp_standin.c")


def hold_standin() -> Path:
    return build_exe("hold_standin.c")


def percent_survives() -> bool:
    """Whether this wine's cmd.exe keeps a "%" that is part of %~dp0's value (Windows does)."""
    global _PERCENT
    if _PERCENT is None:
        wine = get_wine()
        folder = wine.root / "percent 100%x"
        folder.mkdir(exist_ok=True)
        seen = wine.root / "percent.txt"
        (folder / "p.bat").write_bytes(
            f'@echo off\r\nset "P=%~dp0"\r\nset P >"{win_path(seen)}"\r\n'.encode()
        )
        wine.run_bat(folder / "p.bat")
        _PERCENT = seen.is_file() and "100%x" in seen.read_text("latin-1")
    return _PERCENT


# ------------------------------------------------------------------ a real bundle for the tests

POST_INSTALL_SCRIPT = b"""@echo off\r
rem envpack test post-install script: runs micromamba from the activated environment's PATH\r
rem (the stand-in records that environment and the working folder), and fails when told to.\r
micromamba.exe --version\r
if errorlevel 1 exit /b 2\r
echo post-install ran\r
if defined ENVPACK_TEST_POSTINSTALL_FAIL exit /b 3\r
exit /b 0\r
"""
# cmd.exe specials in the script's name too (CALL would double a "^": the renderer refuses one)
POST_INSTALL_NAME = "check env & co (x86)!.bat"
# cmd.exe specials in an activation variable (set by activate.bat, read back by the tests)
TEST_VARIABLE = ("ENVPACK_TEST_VAR", "a&b^c!d%e (x86)")


@dataclass(frozen=True)
class Demo:
    name: str
    zip: Path
    sfx: Path
    ctx: object  # envpack.bundle.stubs.StubContext, as core.build() made it


_DEMO: Demo | None = None


def build_demo(std_channel: Path, work: Path) -> Demo:
    """The standard test channel built into a bundle (zip and self-extracting .bat), once per
    session, over a real HTTP server, with the micromamba stand-in as its micromamba.exe, a
    post-install script and an activation variable. The StubContext is captured from core."""
    global _DEMO
    if _DEMO is not None:
        return _DEMO
    import envpack.bundle.layout

    from conftest import run_cli, write_recipe
    from http_server import ChannelServer

    exe = micromamba_standin()
    (work / POST_INSTALL_NAME).write_bytes(POST_INSTALL_SCRIPT)
    captured: list[object] = []
    real = envpack.bundle.layout.render_setup

    def spy(ctx: envpack.bundle.layout.StubContext) -> bytes:
        captured.append(ctx)
        return real(ctx)

    key, value = TEST_VARIABLE
    extra = (
        f"variables:\n  {key}: '{value}'\nenvpack:\n  post_install:\n    - '{POST_INSTALL_NAME}'\n"
    )
    with ChannelServer(std_channel) as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENVPACK_CACHE_DIR", str(work / "cache"))
        mp.setattr(envpack.bundle.layout, "render_setup", spy)
        recipe = write_recipe(work / "demo.yaml", [server.url], ["tool", "docs"], extra)
        result = run_cli("build", recipe, "-o", work / "dist", "--micromamba-exe", exe, "--sfx")
    assert result.exit_code == 0, result.output
    _DEMO = Demo(
        name="demo",
        zip=work / "dist" / "demo-win-64.zip",
        sfx=work / "dist" / "demo-win-64-setup.bat",
        ctx=captured[-1],
    )
    return _DEMO


# ------------------------------------------------------------------ setup.bat's micromamba step


def retarget(bundle: Path, ctx: object, rewrite: Callable[[str], str]) -> None:
    """Rewrite each package line of the bundle's env.txt with ``rewrite`` and render its setup.bat
    again with env.txt's new size (``ctx`` is the bundle's StubContext)."""
    from envpack.bundle.stubs import StubContext, render_setup

    assert isinstance(ctx, StubContext)
    env_txt = bundle / "env.txt"
    lines = env_txt.read_text().split("\n")
    env_txt.write_text("\n".join(rewrite(line) if "://" in line else line for line in lines))
    size = env_txt.stat().st_size
    files = tuple((n, size if n == "env.txt" else z) for n, z in ctx.files)
    (bundle / "setup.bat").write_bytes(render_setup(replace(ctx, files=files)))


def cmd_words(line: str) -> list[str]:
    """A cmd.exe command line split as micromamba's C runtime splits it (quotes removed), up to
    its first redirection."""
    words: list[str] = []
    word, quoted, started = "", False, False
    for ch in line.strip().lstrip("@"):
        if ch == '"':
            quoted, started = not quoted, True
        elif not quoted and ch == ">":
            break
        elif not quoted and ch in " \t":
            if started:
                words.append(word)
            word, started = "", False
        else:
            word, started = word + ch, True
    if started:
        words.append(word)
    if words and words[-1] == "2":  # the handle of "2>&1" or "2>file"
        words.pop()
    return words


@dataclass
class SetupStep:
    """setup.bat's own micromamba step, read from the rendered file, for a native run: the work
    folder it makes and fills, the variables it sets (cleared ones removed, names matched without
    regard to case as Windows does), the folder it runs micromamba from and the command line, with
    %EP_WORK%, %EP_PREFIX% and %EP_BUNDLE% replaced by this machine's paths."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    work: Path


_VAR = re.compile(r'\s*set "([A-Za-z_][A-Za-z0-9_]*)=(.*)"\s*')
_MKDIR = re.compile(r'\s*mkdir "(%EP_WORK%[^"]*)"')
_COPY = re.compile(r'\s*copy /b /y "(%EP_BUNDLE%[^"]+)" "(%EP_WORK%\\pkgs\\)"')
_PUSHD = re.compile(r'\s*pushd "([^"]+)"')
_CREATE = re.compile(r'\s*@?"?%EP_WORK%\\bin\\[^" ]*micromamba\.exe"?\s+create\s')


def setup_step(
    bundle: Path, prefix: Path, micromamba: Path, user_env: Mapping[str, str]
) -> SetupStep:
    """Prepare the work folder beside ``prefix`` as setup.bat does and return its step."""
    text = (bundle / "setup.bat").read_text("utf-8").replace("\r\n", "\n")
    lines = text.split("\n")
    commands = [i for i, line in enumerate(lines) if _CREATE.match(line)]
    assert len(commands) == 1, f"setup.bat runs micromamba create on {len(commands)} lines"
    work = Path(f"{prefix}.envpack-work")
    names = {"%EP_WORK%": str(work), "%EP_PREFIX%": str(prefix), "%EP_BUNDLE%": f"{bundle}\\"}

    def linux(value: str) -> str:
        for name, path in names.items():
            value = value.replace(name, path)
        assert "%" not in value, f"a variable the native run cannot fill: {value}"
        return value.replace("\\", "/")

    if work.exists():
        shutil.rmtree(work)
    env = dict(user_env)
    cwd = bundle
    for line in lines[: commands[0]]:
        if found := _MKDIR.match(line):
            Path(linux(found.group(1))).mkdir(parents=True, exist_ok=True)
        elif found := _COPY.match(line):
            shutil.copy(linux(found.group(1)), linux(found.group(2)))
        elif found := _PUSHD.match(line):
            cwd = Path(linux(found.group(1)))
        elif line.strip().startswith("call :clear_prefixed"):
            # every CONDA_* and MAMBA_* variable (what the subroutine does is tested under wine)
            env = {k: v for k, v in env.items() if not k.upper().startswith(("CONDA_", "MAMBA_"))}
        elif (found := _VAR.fullmatch(line)) and not found.group(1).startswith("EP_"):
            key, value = found.groups()
            env = {k: v for k, v in env.items() if k.upper() != key.upper()}
            if value:
                env[key] = linux(value)
    # curl on Linux reads http_proxy and friends in lower case first; on Windows the upper-case
    # name is the same variable
    for key in [k for k in env if "PROXY" in k.upper()]:
        env[key.lower()] = env[key]
    argv = [linux(word) for word in cmd_words(lines[commands[0]])]
    assert argv[0] == f"{work}/bin/micromamba.exe", argv
    argv[0] = str(micromamba)
    return SetupStep(argv, env, cwd, work)


def run_step(step: SetupStep, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        step.argv,
        env=step.env,
        cwd=step.cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
        check=False,
    )
