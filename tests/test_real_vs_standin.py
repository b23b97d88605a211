"""setup.bat's own micromamba line run by the real micromamba 2.8.1, and the stand-in held to it.

The real binary is a Linux build (../shared/tools), so it runs the step natively: the command line,
variables, work folder and current folder are read from the rendered setup.bat of the session's
bundle (:func:`wine.setup_step`), not rebuilt from envpack's own tuples. The same bundle, unpacked
again, is installed by setup.bat under wine with the micromamba stand-in; the two outcomes are
compared: exit status, the line that says why, and what is left in the prefix.

Measured with 2.8.1 and recorded here: a package whose cached copy fails its md5 is fetched again
from its env.txt URL (despite --offline); through setup.bat's dead proxy that ends, after four
retries, in "critical libmamba Download error (7) Couldn't connect to server [URL]", or "(37)
Couldn't read a file:// file" for a local channel that is gone, exit 1, and a prefix holding
``.mambarc`` ("platform: win-64", written for --platform) and ``conda-meta/history`` only. The md5
mismatch itself is never printed. A line without ``#md5`` installs with the warning "md5 and
sha256 sum unknown".
"""

from __future__ import annotations

import os
import re
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from wine import (
    Demo,
    Result,
    Wine,
    build_demo,
    get_wine,
    retarget,
    run_step,
    setup_step,
    shutdown,
    win_path,
)

pytestmark = [pytest.mark.wine, pytest.mark.micromamba]


@pytest.fixture(scope="module")
def wine() -> Iterator[Wine]:
    yield get_wine()
    shutdown()


@pytest.fixture(scope="module")
def demo(std_channel: Path, tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return build_demo(std_channel, tmp_path_factory.mktemp("demo-build"))


def unpack(demo: Demo, parent: Path) -> Path:
    with zipfile.ZipFile(demo.zip) as zf:
        zf.extractall(parent)
    return parent / demo.name


def tree(path: Path) -> set[str]:
    return {p.relative_to(path).as_posix() for p in path.rglob("*")} if path.exists() else set()


def stems(bundle: Path) -> set[str]:
    """name-version-build of every package env.txt lists (the bundle's data, not envpack's)."""
    lines = (bundle / "env.txt").read_text().split()
    return {
        line.split("#")[0].rsplit("/", 1)[1].removesuffix(".conda")
        for line in lines
        if "://" in line
    }


def damage(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # same size: setup.bat's size check passes, the md5 does not
    path.write_bytes(bytes(data))


def critical(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.startswith("critical ")]


class Pair:
    """The same bundle unpacked twice: one for the real micromamba (native), one for setup.bat
    under wine with the stand-in."""

    def __init__(self, wine: Wine, demo: Demo, tmp: Path, micromamba: Path) -> None:
        self.wine, self.demo, self.micromamba = wine, demo, micromamba
        self.real_bundle = unpack(demo, tmp / "real bundle & co")
        self.wine_bundle = unpack(demo, tmp / "wine bundle & co")
        self.real_prefix = tmp / "real" / "my env"
        self.wine_prefix = tmp / "wine" / "my env"
        self.real_prefix.parent.mkdir()
        self.wine_prefix.parent.mkdir()
        self.home = tmp / "home"
        self.home.mkdir()
        self.tmp = tmp

    def edit(self, rewrite: Callable[[str], str]) -> None:
        for bundle in (self.real_bundle, self.wine_bundle):
            retarget(bundle, self.demo.ctx, rewrite)

    def damage(self, fn: str) -> None:
        for bundle in (self.real_bundle, self.wine_bundle):
            (match,) = bundle.glob(f"channel/*/{fn}")
            damage(match)

    def real(self) -> subprocess.CompletedProcess[str]:
        user = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "HOME": str(self.home)}
        step = setup_step(self.real_bundle, self.real_prefix, self.micromamba, user)
        return run_step(step)

    def standin(self) -> Result:
        return self.wine.run_bat(
            self.wine_bundle / "setup.bat",
            [win_path(self.wine_prefix), "/S"],
            cwd=self.tmp,
            env={"STANDIN_RECORD": win_path(self.tmp / "record.jsonl")},
        )


@pytest.fixture
def pair(wine: Wine, demo: Demo, tmp_path: Path, real_micromamba: Path) -> Pair:
    return Pair(wine, demo, tmp_path, real_micromamba)


# setup.bat's own files in the prefix, beside what micromamba leaves
SETUP_FILES = {"envpack-install.log", ".envpack-incomplete"}


def test_setup_bat_line_installs_with_the_real_micromamba(pair: Pair) -> None:
    real = pair.real()
    assert real.returncode == 0, real.stdout + real.stderr
    prefix = pair.real_prefix
    assert {p.stem for p in (prefix / "conda-meta").glob("*.json")} == stems(pair.real_bundle)
    assert (prefix / "Library" / "share" / "tool" / "README.txt").read_text() == "tool 2.0\n"
    assert (prefix / ".mambarc").read_text() == "platform: win-64"
    work = Path(f"{prefix}.envpack-work")
    # the environment registry went to the work folder's home, nothing to the user's
    registry = work / "home" / ".conda" / "environments.txt"
    assert registry.read_text().split("\n")[0] == str(prefix)
    assert tree(pair.home) == set()
    # the packages were extracted in the work folder's pkgs (2.6+: a folder per URL)
    extracted = {p.parent.parent.name for p in (work / "pkgs").rglob("info/index.json")}
    assert extracted == stems(pair.real_bundle)


def test_intact_bundle_real_and_standin_agree(pair: Pair) -> None:
    real = pair.real()
    standin = pair.standin()
    assert real.returncode == 0, real.stderr
    assert standin.rc == 0, standin.out
    for prefix in (pair.real_prefix, pair.wine_prefix):
        assert (prefix / ".mambarc").read_text() == "platform: win-64"
    real_meta = {p.name for p in (pair.real_prefix / "conda-meta").iterdir()}
    standin_meta = {p.name for p in (pair.wine_prefix / "conda-meta").iterdir()}
    assert real_meta == standin_meta
    assert "Transaction finished" in real.stdout
    log = (pair.wine_prefix / "envpack-install.log").read_text("latin-1")
    assert "Transaction finished" in log


def gone_file_url(line: str) -> str:
    # a folder that exists on neither side, named the same on both (no drive letter, which the
    # Linux build would read as part of a path)
    return "file:///channel%20moved%20away/" + line.split("/", 3)[3]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("http", "Download error (7) Couldn't connect to server"),
        ("file", "Download error (37) Couldn't read a file:// file"),
    ],
)
def test_damaged_package_real_and_standin_agree(pair: Pair, where: str, message: str) -> None:
    if where == "file":
        pair.edit(gone_file_url)
    pair.damage("tool-2.0-h1234_0.conda")
    url = next(u for u in (pair.real_bundle / "env.txt").read_text().split() if "/tool-" in u)
    url = url.split("#")[0]

    real = pair.real()
    # exit 1; 2.8.1 has also been seen to crash (SIGSEGV) after its last retry: a failure too
    assert real.returncode in (1, -11), real.stdout + real.stderr
    key = f"critical libmamba {message} [{url}]"
    assert key in critical(real.stderr), real.stderr
    assert "MD5" not in real.stderr  # what the user sees does not mention the md5
    assert tree(pair.real_prefix) == {".mambarc", "conda-meta", "conda-meta/history"}

    standin = pair.standin()
    assert standin.rc == 10, standin.out
    assert "micromamba failed (exit code 1)" in standin.out
    assert key in critical(standin.out)
    assert tree(pair.wine_prefix) - SETUP_FILES == tree(pair.real_prefix)


def test_lines_without_md5_real_and_standin_agree(pair: Pair) -> None:
    pair.edit(lambda line: line.split("#")[0])
    real = pair.real()
    standin = pair.standin()
    warning = "md5 and sha256 sum unknown."
    assert real.returncode == 0, real.stderr
    assert warning in real.stderr
    assert standin.rc == 0, standin.out
    log = (pair.wine_prefix / "envpack-install.log").read_text("latin-1")
    assert warning in log
    real_meta = {p.name for p in (pair.real_prefix / "conda-meta").iterdir()}
    assert real_meta == {p.name for p in (pair.wine_prefix / "conda-meta").iterdir()}


def test_setup_bat_hint_names_what_micromamba_printed(pair: Pair) -> None:
    pair.damage("tool-2.0-h1234_0.conda")
    real = pair.real()
    assert real.returncode != 0
    standin = pair.standin()
    assert standin.rc == 10, standin.out
    after = standin.out.split("micromamba failed (exit code 1)", 1)[1]
    quoted = re.findall(r'"([^"\\:]+)"', after.split("setup: log:", 1)[0])
    assert quoted, after
    for phrase in quoted:
        assert phrase in real.stderr, f"setup.bat points at {phrase!r}: {real.stderr}"
