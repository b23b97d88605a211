"""The self-extracting -setup.bat keeps the zip's 4 KiB alignment: its batch header is padded to
a multiple of 4096 bytes, so every package's and wheel's data sits on a 4096-byte boundary of
the .bat as of the zip, and the kernel copy that makes the .bat from the zip can share blocks
(reflinks, tests/test_reflink.py). The padding is part of the header the manifest records:
verify and inspect check it byte for byte."""

from __future__ import annotations

import json
import shutil
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from envpack.bundle.stubs import render_sfx_header, sfx_padding
from envpack.snapshot.verify import verify_bundle
from pypi_index import IndexServer, standard_dists, write_index
from test_stubs_static import CTX

from channel_factory import Pkg, make_channel, standard_packages
from conftest import run_cli, write_recipe
from http_server import ChannelServer

LOCAL = struct.Struct("<IHHHHHIIIHH")  # a zip local file header, APPNOTE 4.3.7
LAST_LINE = b"rem Nothing after this line is run.\r\n"


@dataclass
class Built:
    bat: Path
    zip: Path
    name: str  # the bundle's top folder


def _build(args: list[str], out: Path, cache: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENVPACK_CACHE_DIR", str(cache))
        mp.delenv("SOURCE_DATE_EPOCH", raising=False)
        result = run_cli("build", *args, "-o", str(out), "--sfx")
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def conda_only(std_channel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    base = tmp_path_factory.mktemp("align-conda")
    served = base / "served"
    shutil.copytree(std_channel, served)
    with ChannelServer(served) as server:
        recipe = write_recipe(base / "demo.yaml", [server.url], ["tool", "docs"])
        _build([str(recipe)], base / "dist", base / "cache")
    dist = base / "dist"
    yield Built(dist / "demo-win-64-setup.bat", dist / "demo-win-64.zip", "demo")


@pytest.fixture(scope="module")
def with_wheels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    pytest.importorskip("uv")
    base = tmp_path_factory.mktemp("align-wheels")
    pkgs = [*standard_packages(), Pkg("python", "3.9.10", "h0_cp39"), Pkg("pip", "23.0", "pyh0",
            subdir="noarch", depends=["python >=3.7"])]  # fmt: skip
    channel = make_channel(base / "chan", pkgs)
    with IndexServer(write_index(base / "index", standard_dists())) as index:
        env = base / "environment.yml"
        env.write_text(
            f"name: pipenv\nchannels: [{channel.as_uri()}]\n"
            f"dependencies:\n  - python=3.9.10=h0_cp39\n  - pip:\n"
            f"    - --index-url {index.url}/simple\n    - alpha\n"
        )
        _build([str(env)], base / "dist", base / "cache")
    dist = base / "dist"
    yield Built(dist / "pipenv-win-64-setup.bat", dist / "pipenv-win-64.zip", "pipenv")


def data_offsets(path: Path) -> dict[str, tuple[int, int]]:
    """name -> (where the member's data starts in the file, its size), from the local headers."""
    out = {}
    with zipfile.ZipFile(path) as zf, path.open("rb") as fh:
        for info in zf.infolist():
            fh.seek(info.header_offset)
            fields = LOCAL.unpack(fh.read(LOCAL.size))
            assert fields[0] == 0x04034B50, info.filename
            n_name, n_extra = fields[9], fields[10]
            out[info.filename] = (
                info.header_offset + LOCAL.size + n_name + n_extra,
                info.file_size,
            )
    return out


def header_of(bat: Path) -> bytes:
    with zipfile.ZipFile(bat) as zf:
        first = min(i.header_offset for i in zf.infolist())
    return bat.read_bytes()[:first]


def _check_aligned(built: Built, suffixes: tuple[str, ...], at_least: int) -> None:
    header = header_of(built.bat)
    assert len(header) > 0 and len(header) % 4096 == 0, len(header)
    in_bat, in_zip = data_offsets(built.bat), data_offsets(built.zip)
    assert sorted(in_bat) == sorted(in_zip)
    aligned = [n for n in in_bat if n.endswith(suffixes)]
    assert len(aligned) >= at_least, sorted(in_bat)
    bat, plain = built.bat.read_bytes(), built.zip.read_bytes()
    for name in aligned:
        at, size = in_bat[name]
        assert at % 4096 == 0, f"{name}: data at {at} in the .bat"
        assert in_zip[name][0] % 4096 == 0, f"{name}: data at {in_zip[name][0]} in the zip"
        # the same bytes, moved by the header's length alone
        assert at == in_zip[name][0] + len(header)
        assert bat[at : at + size] == plain[at - len(header) : at - len(header) + size]


def test_every_package_starts_on_a_4096_byte_boundary_of_the_bat(conda_only: Built) -> None:
    _check_aligned(conda_only, (".conda", ".tar.bz2"), at_least=3)


def test_every_package_and_wheel_starts_on_a_4096_byte_boundary_of_the_bat(
    with_wheels: Built,
) -> None:
    wheels = [n for n in data_offsets(with_wheels.bat) if n.endswith(".whl")]
    assert f"{with_wheels.name}/wheels/alpha-1.1-cp39-cp39-win_amd64.whl" in wheels
    _check_aligned(with_wheels, (".conda", ".tar.bz2", ".whl"), at_least=4)


def test_the_padding_is_blank_lines_after_the_last_command(conda_only: Built) -> None:
    header = header_of(conda_only.bat)
    assert len(header) % 4096 == 0
    assert header.endswith(b"\r\n" + LAST_LINE)
    lines = header[: -len(LAST_LINE)].split(b"\r\n")
    assert lines[-1] == b""  # every line before the last one ends in CRLF
    lines.pop()
    blank = []
    while lines[-1].strip(b" ") == b"":
        blank.append(lines.pop())
    # the padding: lines of spaces alone (no label, no command), short ones
    assert len(blank) > 2 and all(set(line) <= {0x20} and len(line) <= 62 for line in blank)
    # before it, the script's last command is the last subroutine's return: nothing runs on
    # into the padding
    assert lines[-1] == b"goto :eof"
    # and it is the header the manifest records
    with zipfile.ZipFile(conda_only.zip) as zf:
        manifest = json.loads(zf.read("demo/envpack.json"))
    assert manifest["sfx_header"]["size"] == len(header)


def test_padding_brings_any_length_to_a_multiple_of_4096() -> None:
    for length in [*range(1, 8300), 12287, 40961, 1 << 20]:
        pad = sfx_padding(length)
        assert (length + len(pad)) % 4096 == 0, length
        assert len(pad) <= 4097, length
        if pad:
            assert pad.endswith(b"\r\n"), length
            rest = pad.replace(b"\r\n", b"")
            assert set(rest) <= {0x20}, length
            assert all(len(line) <= 62 for line in pad.split(b"\r\n")), length


def test_a_length_already_aligned_gets_no_padding() -> None:
    assert sfx_padding(4096) == b""
    assert sfx_padding(3 * 4096) == b""
    assert sfx_padding(4094) == b"\r\n"
    # one byte short cannot take a CRLF line: a whole further block
    assert len(sfx_padding(4095)) == 4097


def test_every_rendered_header_is_a_multiple_of_4096() -> None:
    scripts = set()
    for n in range(40):
        ctx = replace(CTX, name="e" * (1 + n), default_prefix="C:\\envs\\" + "p" * n)
        header = render_sfx_header(ctx)
        assert len(header) % 4096 == 0, n
        assert header.endswith(b"\r\n" + LAST_LINE), n
        assert render_sfx_header(ctx) == header  # deterministic
        scripts.add(sum(len(line) for line in header.split(b"\r\n") if line.strip(b" ")))
    assert len(scripts) > 20  # the script's own length varied; the padding took it up


def test_verify_and_inspect_take_the_padded_bat(conda_only: Built) -> None:
    assert verify_bundle(conda_only.bat) == []
    assert run_cli("verify", str(conda_only.bat)).exit_code == 0
    inspected = run_cli("inspect", str(conda_only.bat), "--json")
    assert inspected.exit_code == 0, inspected.output
    assert json.loads(inspected.stdout)["problems"] == []


def test_an_edit_inside_the_padding_is_named(conda_only: Built, tmp_path: Path) -> None:
    data = conda_only.bat.read_bytes()
    header = header_of(conda_only.bat)
    blank = b"\r\n" + b" " * 62 + b"\r\n"
    at = header.rindex(blank) + 2
    # same size: a command hidden in the padding, only the hash can tell
    evil = tmp_path / "evil-setup.bat"
    cmd = b"start evil.exe"
    evil.write_bytes(data[:at] + cmd + data[at + len(cmd) :])
    assert len(evil.read_bytes()) == len(data)
    assert verify_bundle(evil) == [
        "batch header: its sha256 differs from the manifest (the script was changed: do not run it)"
    ]
    assert run_cli("verify", str(evil)).exit_code == 8
    inspected = run_cli("inspect", str(evil), "--json")
    assert inspected.exit_code == 8
    (problem,) = json.loads(inspected.stdout)["problems"]
    assert problem.startswith("batch header: its sha256 differs")

    # the padding cut short (one blank line less): the size tells
    short = tmp_path / "short-setup.bat"
    cut = header.rindex(blank) + 2
    short.write_bytes(data[:cut] + data[cut + 64 :])
    problems = verify_bundle(short)
    assert any(p.startswith("batch header: ") for p in problems), problems
