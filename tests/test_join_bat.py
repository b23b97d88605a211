"""join.bat under wine's cmd.exe: it rebuilds the exact bundle, or says which part is wrong.

wine 8's cmd differs from Windows in ways that can make a batch test lie (``&&``/``||`` ignore
the exit status; findstr, certutil, where and powershell are stubs that return 0), so join.bat
uses none of them, and the static test below keeps it that way. What wine cannot show: ``%~z``
on a part over 2 GiB (FAT32-sized parts); sizes are compared as strings, never as cmd numbers.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from built_bundle import Built, build_bundle, random_entry
from envpack import archive as formats

from channel_factory import file_sha256

MIB = 1 << 20
# A stand-in for the self-extracting stub: shows the arguments join.bat hands over, exits 7.
SFX_HEADER = b"@echo off\r\necho sfx-started with [%*]\r\nexit /b 7\r\n"
# spaces, '&' and parentheses: what %~dp0 quoting must survive
FOLDER = "dist & more (x86)"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, std_channel: Path) -> Built:
    base = tmp_path_factory.mktemp("join")
    b = build_bundle(base, std_channel)
    big = random_entry(base, "channel/win-64/big-1.0-0.conda", 2 * MIB + 777)
    return Built(b.zip_path, [*b.entries, big], b.epoch, b.top, b.manifest)


@pytest.fixture(scope="session")
def wine_prefix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if shutil.which("wine") is None:
        pytest.skip("wine is not installed (Debian: wine64 wine)")
    prefix = tmp_path_factory.mktemp("wineprefix")
    env = wine_env(prefix)
    # The first call creates the prefix (a few seconds); a persistent wineserver keeps the
    # later calls fast, and is stopped (this prefix's only) at the end.
    log = prefix.parent / "wineprefix.log"
    with log.open("wb") as fh:
        first = subprocess.run(
            ["timeout", "120", "wine", "cmd", "/c", "exit", "0"], env=env, stdout=fh, stderr=fh
        )
    if first.returncode != 0:
        pytest.skip(f"wine cannot start here: {log.read_text(errors='replace')[-300:]}")
    # -p60: should the session die before the teardown, the server still leaves after a minute
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    subprocess.run(["wineserver", "-p60"], env=env, timeout=30, **quiet)  # type: ignore[call-overload]
    yield prefix
    subprocess.run(["wineserver", "-k"], env=env, timeout=30, **quiet)  # type: ignore[call-overload]


def wine_env(prefix: Path) -> dict[str, str]:
    return {**os.environ, "WINEPREFIX": str(prefix), "WINEDEBUG": "-all"}


def run_join(
    prefix: Path,
    folder: Path,
    *args: str,
    env: dict[str, str] | None = None,
    stdin: bytes = b"",
) -> tuple[int, str]:
    # Output goes to a file, not a pipe: the wine services a call may start inherit its handles
    # and live as long as the wineserver, so reading a pipe to its end would wait for them.
    log = folder.parent / f"{folder.name}.out"
    typed = folder.parent / f"{folder.name}.in"
    typed.write_bytes(stdin)
    with log.open("wb") as fh, typed.open("rb") as fin:
        proc = subprocess.run(
            ["timeout", "60", "wine", "cmd", "/c", "join.bat", *args],
            cwd=folder,
            env={**wine_env(prefix), **(env or {})},
            stdin=fin,
            stdout=fh,
            stderr=subprocess.DEVNULL,
            timeout=90,
        )
    assert proc.returncode != 124, "wine timed out"
    return proc.returncode, log.read_bytes().decode("utf-8", "replace").replace("\r\n", "\n")


def split_into(built: Built, folder: Path, kind: str) -> tuple[str, str]:
    """Write the split bundle into ``folder``; return its file name and the unsplit sha256."""
    fmt = "7z" if kind == "7z" else "zip"
    header = SFX_HEADER if kind == "sfx" else b""
    stem = "demo-win-64-setup" if kind == "sfx" else "demo-win-64"
    args = (stem, built.top, built.entries, built.epoch, fmt)
    whole = formats.write_bundle(folder.parent / f"whole-{kind}", *args, header=header)[0]
    formats.write_bundle(folder, *args, header=header, split=MIB)
    return whole.name, file_sha256(whole)


def leftovers(folder: Path, name: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name in (name, f"{name}.joining"))


# --------------------------------------------------------------------------- static


def test_join_bat_is_plain_cmd(built: Built, tmp_path: Path) -> None:
    out = formats.write_bundle(tmp_path, "x%y", built.top, built.entries, built.epoch, split=MIB)
    script = next(p for p in out if p.name == "join.bat").read_bytes()
    assert b"\r\n" in script and b"\n" not in script.replace(b"\r\n", b"")
    text = script.decode("ascii")
    assert "@@" not in text
    assert 'set "TARGET=x%%y.zip"' in text  # '%' doubled: a batch file would expand it
    code = [
        line
        for line in text.splitlines()
        if line.strip() and not line.lstrip().lower().startswith("rem ")
    ]
    for line in code:
        assert "&&" not in line and "||" not in line, line
        assert "!" not in line, line  # delayed expansion stays off: '!' in a path survives
        assert not re.search(
            r"\b(findstr|certutil|where|powershell|choice|timeout|set /a)\b", line, re.I
        ), line
        # cmd compares numbers as 32-bit ints; parts of 4000 MiB would overflow
        assert not re.search(r"\b(EQU|NEQ|LSS|LEQ|GTR|GEQ)\b", line, re.I), line
    assert "setlocal EnableExtensions DisableDelayedExpansion" in text


# --------------------------------------------------------------------------- under wine


@pytest.mark.wine
@pytest.mark.parametrize("kind", ["zip", "7z"])
def test_join_rebuilds_the_bundle(
    built: Built, tmp_path: Path, wine_prefix: Path, kind: str
) -> None:
    folder = tmp_path / FOLDER
    name, want = split_into(built, folder, kind)
    code, out = run_join(wine_prefix, folder)
    assert code == 0, out
    assert file_sha256(folder / name) == want
    assert not (folder / f"{name}.joining").exists()
    assert f'"{name}" is complete' in out
    assert f'tar -xf "{name}"' in out and f'setup.bat in the "{built.top}" folder' in out


@pytest.mark.wine
def test_join_of_a_single_part(built: Built, tmp_path: Path, wine_prefix: Path) -> None:
    folder = tmp_path / FOLDER
    args = ("demo-win-64", built.top, built.entries, built.epoch)
    whole = formats.write_bundle(tmp_path / "whole", *args)[0]
    formats.write_bundle(folder, *args, split=64 * MIB)
    code, out = run_join(wine_prefix, folder)
    assert code == 0, out
    assert file_sha256(folder / whole.name) == file_sha256(whole)


@pytest.mark.wine
def test_join_starts_the_self_extracting_installer(
    built: Built, tmp_path: Path, wine_prefix: Path
) -> None:
    folder = tmp_path / FOLDER
    name, want = split_into(built, folder, "sfx")
    code, out = run_join(wine_prefix, folder, "C:\\envs\\demo", "/quiet")
    assert file_sha256(folder / name) == want
    assert "sfx-started with [C:\\envs\\demo /quiet]" in out
    # join.bat hands over to the installer without CALL, so its "exit /b 7" is join.bat's exit
    # status, exactly (wine 8 would report 1 after a CALL of a batch file that exits non-zero).
    assert code == 7, out


@pytest.mark.wine
def test_missing_part(built: Built, tmp_path: Path, wine_prefix: Path) -> None:
    folder = tmp_path / FOLDER
    name, want = split_into(built, folder, "zip")
    second = folder / f"{name}.002"
    saved = second.read_bytes()
    second.unlink()
    code, out = run_join(wine_prefix, folder)
    assert code == 2, out
    assert f'part "{name}.002" is missing' in out
    assert leftovers(folder, name) == []
    # once the part is back, the same folder joins
    second.write_bytes(saved)
    code, out = run_join(wine_prefix, folder)
    assert code == 0, out
    assert file_sha256(folder / name) == want


@pytest.mark.wine
def test_truncated_part(built: Built, tmp_path: Path, wine_prefix: Path) -> None:
    folder = tmp_path / FOLDER
    name, _ = split_into(built, folder, "zip")
    first = folder / f"{name}.001"
    first.write_bytes(first.read_bytes()[:-1])
    code, out = run_join(wine_prefix, folder)
    assert code == 3, out
    assert f'part "{name}.001" has {MIB - 1} bytes but should have {MIB}' in out
    assert "truncated" in out
    assert leftovers(folder, name) == []
    assert "is missing" not in out


@pytest.mark.wine
def test_join_waits_for_a_key_when_double_clicked(
    built: Built, tmp_path: Path, wine_prefix: Path
) -> None:
    """Explorer runs cmd.exe /c "join.bat": the window closes at the end, so join.bat pauses.
    Wine's cmd.exe sets no CMDCMDLINE; the test sets it as Windows would."""
    folder = tmp_path / FOLDER
    name, want = split_into(built, folder, "zip")
    explorer = f'C:\\WINDOWS\\system32\\cmd.exe /c ""{folder}\\join.bat" "'
    code, out = run_join(wine_prefix, folder, env={"CMDCMDLINE": explorer}, stdin=b"\r\n")
    assert code == 0, out
    assert out.rstrip().endswith("Press any key to continue...")
    assert file_sha256(folder / name) == want
    (folder / name).unlink()
    code, out = run_join(wine_prefix, folder)
    assert code == 0 and "Press any key" not in out


@pytest.mark.wine
def test_join_asks_for_a_folder_when_it_cannot_write_beside_the_parts(
    built: Built, tmp_path: Path, wine_prefix: Path
) -> None:
    """Stands for read-only media (a DVD, a protected stick): the joined file cannot be written
    beside the parts (here a folder is in the way of its temporary name, as root can write
    everywhere), so join.bat asks for another folder, and Enter cancels."""
    folder = tmp_path / FOLDER
    name, want = split_into(built, folder, "zip")
    (folder / f"{name}.joining").mkdir()
    code, out = run_join(wine_prefix, folder, stdin=b"\r\n")
    assert code == 5, out
    assert "cannot write in" in out and "nothing was written" in out
    elsewhere = tmp_path / "joined here & (x86)"
    typed = f"Z:{elsewhere}".replace("/", "\\").encode() + b"\r\n"
    code, out = run_join(wine_prefix, folder, stdin=typed)
    assert code == 0, out
    assert file_sha256(elsewhere / name) == want
    assert not (folder / name).exists()
