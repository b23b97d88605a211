"""Every user mistake gets one line naming the culprit, a non-zero exit, and nothing half-written."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from conftest import run_cli, write_recipe
from http_server import ChannelServer


def one_line_error(result, code: int) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("envpack: error: ")]
    assert len(starts) == 1, result.stderr
    # A solver's explanation may follow, indented under the one error line.
    assert all(line.startswith("  ") for line in lines[starts[0] + 1 :]), result.stderr
    assert "Traceback" not in result.output
    return result.stderr


def no_debris(folder: Path) -> None:
    if folder.exists():
        leftovers = [p.name for p in folder.rglob("*") if p.name.endswith((".part", ".tmp"))]
        assert leftovers == []
        assert not any(p.suffix in {".zip", ".bat"} for p in folder.iterdir())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\nchannels: [a\n", r"line \d+, column \d+: malformed YAML"),
        ("- just\n- a list\n", "a recipe is a YAML mapping"),
        (
            "name: x\nchannels: [conda-forge]\ndependencies: [a]\nenvpack:\n  solvr: rattler\n",
            "unknown key 'solvr' in the 'envpack' block; did you mean 'solver'",
        ),
        (
            "name: x\nchannels: [conda-forge]\ndependencies: [a, {npm: [requests]}]\n",
            r"dependencies: \['npm'\] is not supported",
        ),
        ("name: x\nchannels: [conda-forge]\n", "no dependencies"),
        (
            "name: x\nchannels: [./nope]\ndependencies: [a]\n",
            "channel folder './nope' does not exist",
        ),
        (
            "name: x\nchannels: [conda-forge]\ndependencies: [a]\nplatforms: [win64]\n",
            "unsupported platform 'win64' \\(did you mean 'win-64'\\?\\)",
        ),
        ("name: 'a/b'\nchannels: [conda-forge]\ndependencies: [a]\n", "not a valid folder name"),
    ],
)
def test_bad_recipes(tmp_path: Path, text: str, expected: str) -> None:
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(text)
    err = one_line_error(run_cli("build", recipe, "-o", tmp_path / "out"), 2)
    assert str(recipe) in err
    import re

    assert re.search(expected, err), err
    no_debris(tmp_path / "out")
    assert not (tmp_path / "bad.lock.yaml").exists()


def test_missing_recipe(tmp_path: Path) -> None:
    err = one_line_error(run_cli("build", tmp_path / "nope.yaml"), 2)
    assert "nope.yaml: no such file" in err


def test_unsupported_platform_option(recipe: Path, tmp_path: Path, cache_dir: Path) -> None:
    err = one_line_error(run_cli("build", recipe, "--platform", "win-46", "-o", tmp_path / "o"), 2)
    assert "unsupported platform 'win-46'" in err


def test_unknown_package(tmp_path: Path, server: ChannelServer, cache_dir: Path) -> None:
    recipe = write_recipe(tmp_path / "r.yaml", [server.url], ["no-such-package"])
    err = one_line_error(run_cli("build", recipe, "-o", tmp_path / "o"), 3)
    assert "no-such-package" in err
    no_debris(tmp_path / "o")


def test_unsatisfiable(tmp_path: Path, server: ChannelServer, cache_dir: Path) -> None:
    recipe = write_recipe(tmp_path / "r.yaml", [server.url], ["tool >=3"])
    err = one_line_error(run_cli("build", recipe, "-o", tmp_path / "o"), 3)
    assert "cannot solve" in err and "win-64" in err and "tool" in err


def test_channel_unreachable(tmp_path: Path, cache_dir: Path) -> None:
    recipe = write_recipe(tmp_path / "r.yaml", ["http://127.0.0.1:9/chan"], ["tool"])
    err = one_line_error(run_cli("build", recipe, "-o", tmp_path / "o"), 5)
    assert "cannot fetch repodata from http://127.0.0.1:9/chan" in err


def test_checksum_mismatch_during_build(
    recipe: Path, tmp_path: Path, server: ChannelServer, cache_dir: Path
) -> None:
    server.faults.corrupt.add("tool-2.0-h1234_0.conda")
    err = one_line_error(run_cli("build", recipe, "-o", tmp_path / "o"), 6)
    assert "checksum mismatch for tool-2.0-h1234_0.conda" in err
    assert "expected sha256" in err and "got sha256" in err
    no_debris(tmp_path / "o")


def test_package_404_during_build(
    recipe: Path, tmp_path: Path, server: ChannelServer, channel_copy: Path, cache_dir: Path
) -> None:
    assert run_cli("lock", recipe).exit_code == 0
    (channel_copy / "noarch" / "docs-0.1-pyh0.conda").unlink()
    err = one_line_error(run_cli("build", recipe, "-o", tmp_path / "o", "--frozen"), 5)
    assert "docs-0.1-pyh0.conda: not found (HTTP 404)" in err
    no_debris(tmp_path / "o")


def test_recovers_from_503_and_a_cut_connection(
    recipe: Path, tmp_path: Path, server: ChannelServer, cache_dir: Path
) -> None:
    server.faults.status["tool-2.0-h1234_0.conda"] = [503]
    server.faults.cut_after["vc14_runtime-14.38.33130-h82b7239_18.conda"] = 100
    result = run_cli("build", recipe, "-o", tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert server.hits["tool-2.0-h1234_0.conda"] == 2


def test_output_is_a_file(recipe: Path, tmp_path: Path, cache_dir: Path) -> None:
    out = tmp_path / "file"
    out.write_text("x")
    err = one_line_error(run_cli("build", recipe, "-o", out / "sub"), 7)
    assert f"cannot write to {out / 'sub'}" in err


def test_disk_full_leaves_nothing(
    recipe: Path, tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_cli("lock", recipe).exit_code == 0
    import envpack.archive.zip as bundle_mod
    import envpack.archive.zip as formats_mod

    orig = bundle_mod.write_zip_entries

    def write_then_fail(zf, top, entries, epoch, advance=None):  # type: ignore[no-untyped-def]
        orig(zf, top, entries[:2], epoch, advance)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(formats_mod, "write_zip_entries", write_then_fail)
    err = one_line_error(run_cli("build", recipe, "-o", tmp_path / "o"), 7)
    assert "disk full" in err
    assert list((tmp_path / "o").iterdir()) == []


def test_credentials_never_written(tmp_path: Path, channel_copy: Path, cache_dir: Path) -> None:
    with ChannelServer(channel_copy) as server:
        server.faults.require_auth = "/t/tok-SECRET-123/"
        url = server.url.replace("http://", "http://alice:pw-SECRET@") + "/t/tok-SECRET-123"
        recipe = write_recipe(tmp_path / "cred.yaml", [url], ["tool"])
        result = run_cli("build", recipe, "-o", tmp_path / "o")
        assert result.exit_code == 0, result.output
    assert "SECRET" not in result.output
    lock_text = (tmp_path / "cred.lock.yaml").read_text()
    assert "SECRET" not in lock_text and "tok-" not in lock_text
    for bundle in (tmp_path / "o").iterdir():
        assert b"SECRET" not in bundle.read_bytes()
    assert any(p.startswith("/t/tok-SECRET-123/") for p, _ in server.requests)
