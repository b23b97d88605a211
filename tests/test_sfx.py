"""The self-extracting <name>-win-64-setup.bat: a batch header followed by the bundle's zip.

Its payload is read with Linux's bsdtar (libarchive, the library of Windows' tar.exe) straight
from the .bat file; under wine, where tar.exe is absent, a stand-in tar.exe (tests/standin) reads
the zip the way libarchive's seekable reader does, and the whole install runs as from setup.bat.
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from envpack.bundle.stubs import render_sfx_header
from test_setup_bat import (
    AWKWARD_BUNDLE,
    Run,
    assert_installed,
    ctx_of,
    records,
)
from wine import Demo, Wine, build_demo, get_wine, shutdown, tar_standin, win_path

# setup.bat refuses "!", "%" and "^" in a prefix (micromamba's own scripts break on them); the
# self-extracting file's own folder keeps them (AWKWARD_BUNDLE).
SFX_PREFIX = "env & more (x86) é"


@pytest.fixture(scope="session")
def demo(std_channel: Path, tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return build_demo(std_channel, tmp_path_factory.mktemp("demo-build"))


def payload_offset(sfx: Path) -> int:
    with zipfile.ZipFile(sfx) as zf:
        return min(info.header_offset for info in zf.infolist())


def test_header_is_the_rendered_stub(demo: Demo) -> None:
    raw = demo.sfx.read_bytes()
    header = raw[: payload_offset(demo.sfx)]
    assert header == render_sfx_header(ctx_of(demo))
    # every way through the script ends in exit /b: cmd.exe never parses the zip after it
    assert header.endswith(b"\r\nrem Nothing after this line is run.\r\n")


def test_bsdtar_extracts_the_payload_from_the_bat(demo: Demo, tmp_path: Path) -> None:
    if shutil.which("bsdtar") is None:
        pytest.skip("bsdtar is not installed (Debian: apt-get install libarchive-tools)")
    dest = tmp_path / AWKWARD_BUNDLE
    dest.mkdir()
    sfx = dest / demo.sfx.name
    shutil.copy(demo.sfx, sfx)
    # the way the header runs it: the file itself (never stdin), into the current folder
    proc = subprocess.run(
        ["bsdtar", "-xf", str(sfx)], cwd=dest, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(demo.zip) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        for name in names:
            assert (dest / name).read_bytes() == zf.read(name), name
    extracted = sorted(
        str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file() and p != sfx
    )
    assert extracted == sorted(names)


# ------------------------------------------------------------------ under wine's cmd.exe


@pytest.fixture(scope="session")
def wine() -> Iterator[Wine]:
    yield get_wine()
    shutdown()


class Sfx:
    def __init__(self, wine: Wine, demo: Demo, tmp: Path) -> None:
        self.wine = wine
        self.demo = demo
        self.folder = tmp / AWKWARD_BUNDLE
        self.folder.mkdir()
        self.file = self.folder / demo.sfx.name
        shutil.copy(demo.sfx, self.file)
        self.prefix = tmp / "target" / SFX_PREFIX
        self.prefix.parent.mkdir()
        self.record_file = tmp / "micromamba-record.jsonl"
        self.tar_record = tmp / "tar-record.jsonl"
        self.cwd = tmp

    def run(
        self,
        args: list[str] | None = None,
        *,
        tar: bool = True,
        bundle: Path | None = None,
        by_name: bool = False,
    ) -> Run:
        before = [f'set "PATH={win_path(tar_standin().parent)};%PATH%"'] if tar else []
        result = self.wine.run_bat(
            self.file,
            [win_path(self.prefix), "/S"] if args is None else args,
            cwd=self.cwd,
            before=before,
            env={
                "STANDIN_RECORD": win_path(self.record_file),
                "STANDIN_TAR_RECORD": win_path(self.tar_record),
            },
            by_name=by_name,
        )
        bundle = bundle or self.folder / self.demo.name
        return Run(bundle, self.prefix, result, self.record_file)


pytestmark_wine = pytest.mark.wine  # the bsdtar tests above need no wine


@pytest.fixture
def sfx(wine: Wine, demo: Demo, tmp_path: Path) -> Sfx:
    return Sfx(wine, demo, tmp_path)


@pytestmark_wine
def test_sfx_extracts_beside_itself_and_installs(sfx: Sfx) -> None:
    run = sfx.run()
    assert_installed(run, ctx_of(sfx.demo))
    version, tar = records(sfx.tar_record)
    assert version["argv"] == ["tar.exe", "--version"]
    # the file (not stdin), by its name alone from its own folder: Windows' tar.exe reads its
    # arguments in the ANSI code page (libarchive#2092), so a full path with a letter outside it
    # would fail; the stand-in records the wide argv, which wine cannot narrow like Windows does
    assert tar["argv"] == ["tar.exe", "-xf", sfx.file.name]
    assert tar["cwd"] == win_path(sfx.folder)
    with zipfile.ZipFile(sfx.demo.zip) as zf:
        for name in zf.namelist():
            if not name.endswith("/"):
                assert (sfx.folder / name).read_bytes() == zf.read(name), name
    create = run.records[0]
    assert create["argv"][-1] == win_path(sfx.folder / "demo" / "env.txt")  # type: ignore[index]

    # run again: the folder is extracted over, and /FORCE replaces the environment
    again = sfx.run([win_path(sfx.prefix), "/S", "/FORCE"])
    assert_installed(again, ctx_of(sfx.demo))


@pytestmark_wine
def test_sfx_extracts_into_a_given_folder(sfx: Sfx) -> None:
    elsewhere = sfx.cwd / "unpacked & here (x86)!^ é"
    args = ["/EXTRACT", win_path(elsewhere), win_path(sfx.prefix), "/S"]
    # started by its bare name: the path of the file is taken before the folder changes
    run = sfx.run(args, bundle=elsewhere / "demo", by_name=True)
    assert_installed(run, ctx_of(sfx.demo))
    assert (elsewhere / "demo" / "setup.bat").is_file()
    assert not (sfx.folder / "demo").exists()
    tar = records(sfx.tar_record)[-1]
    # with /EXTRACT it runs in the chosen folder and is given the file's full path
    assert tar["cwd"] == win_path(elsewhere)
    assert tar["argv"] == ["tar.exe", "-xf", win_path(sfx.file)]


@pytestmark_wine
def test_sfx_without_tar_says_so(sfx: Sfx) -> None:
    run = sfx.run(tar=False)
    assert run.result.rc == 20, run.result.out
    assert "tar.exe, which comes with Windows 10 (1803) and later" in run.result.out
    assert "to a name ending in .zip" in run.result.out
    assert sorted(p.name for p in sfx.folder.iterdir()) == [sfx.file.name]
    assert not sfx.prefix.exists()


@pytestmark_wine
def test_sfx_with_a_damaged_payload_fails(sfx: Sfx) -> None:
    raw = bytearray(sfx.file.read_bytes())
    with zipfile.ZipFile(sfx.demo.sfx) as zf:
        info = zf.getinfo("demo/env.txt")
    raw[info.header_offset + 30 + len(info.filename) + 5] ^= 0x01  # inside env.txt's data
    sfx.file.write_bytes(bytes(raw))
    run = sfx.run()
    assert run.result.rc == 21, run.result.out
    assert "ZIP bad CRC" in run.result.out
    assert f'could not extract "{sfx.file.name}"' in run.result.out
    assert not sfx.prefix.exists()


@pytestmark_wine
def test_sfx_usage(sfx: Sfx) -> None:
    run = sfx.run(["/?"], tar=False)
    assert run.result.rc == 0, run.result.out
    assert f"{sfx.file.name} [PREFIX] [/S] [/FORCE] [/EXTRACT FOLDER]" in run.result.out
    assert "/EXTRACT  unpack into FOLDER\\demo instead of beside this file" in run.result.out
    assert sorted(p.name for p in sfx.folder.iterdir()) == [sfx.file.name]


@pytestmark_wine
def test_sfx_falls_back_to_localappdata_when_it_cannot_write_beside_itself(
    sfx: Sfx, wine: Wine
) -> None:
    """Stands for a DVD or a write-protected stick (the tests run as root, which writes
    everywhere): a file named like the bundle's folder is in the way. A double-click cannot pass
    /EXTRACT, so the file unpacks under %LOCALAPPDATA%\\envpack-bundles and installs from there."""
    (sfx.folder / "demo").write_text("in the way")
    (local,) = (wine.prefix / "drive_c" / "users").glob("*/AppData/Local")
    target = local / "envpack-bundles"
    try:
        run = sfx.run(bundle=target / "demo")
        assert_installed(run, ctx_of(sfx.demo))
        assert "cannot write beside" in run.result.out
        assert (target / "demo" / "setup.bat").is_file()
        assert (sfx.folder / "demo").read_text() == "in the way"
    finally:
        shutil.rmtree(target, ignore_errors=True)
