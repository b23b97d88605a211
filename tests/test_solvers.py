"""The two solver backends: same lock from the same inputs, and readable errors from both.

Tests marked ``micromamba`` run the real micromamba from ../shared/tools (skipped where absent).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from envpack.bundle import mamba_cli
from envpack.channels import resolve_channel
from envpack.errors import DownloadError, SolveError
from envpack.lock.record import LockedPackage
from envpack.platforms import virtual_packages
from envpack.resolve.micromamba_backend import MicromambaSolver, parse_dry_run
from envpack.resolve.rattler_backend import RattlerSolver
from envpack.resolve.solver import SolveRequest, summarise_problems

from conftest import run_cli, write_recipe

BACKENDS = [
    pytest.param("rattler", id="rattler"),
    pytest.param("micromamba", id="micromamba", marks=pytest.mark.micromamba),
]


# --------------------------------------------------------------------------- helpers


def rec(
    name: str,
    version: str = "1.0",
    build: str = "0",
    depends: tuple[str, ...] = (),
    subdir: str = "win-64",
    **extra: Any,
) -> tuple[str, dict[str, Any]]:
    """A repodata record (metadata only: solving never opens the package file)."""
    key = f"{name}-{version}-{build}"
    data: dict[str, Any] = {
        "name": name,
        "version": version,
        "build": build,
        "build_number": 0,
        "depends": list(depends),
        "md5": hashlib.md5(key.encode()).hexdigest(),
        "sha256": hashlib.sha256(key.encode()).hexdigest(),
        "size": 1000 + len(key),
        "subdir": subdir,
        "license": "MIT",
        "timestamp": 1700000000123,
        **extra,
    }
    return f"{key}.conda", data


def repodata_channel(path: Path, records: list[tuple[str, dict[str, Any]]]) -> Path:
    for subdir in ("win-64", "noarch"):
        (path / subdir).mkdir(parents=True, exist_ok=True)
        packages = {fn: r for fn, r in records if r["subdir"] == subdir}
        doc = {"info": {"subdir": subdir}, "packages": {}, "packages.conda": packages}
        (path / subdir / "repodata.json").write_text(json.dumps(doc), encoding="utf-8")
    return path


def request_for(
    channels: list[str], specs: list[str], tmp_path: Path, vps: dict[str, str | None] | None = None
) -> SolveRequest:
    return SolveRequest(
        channels=[resolve_channel(c, tmp_path) for c in channels],
        specs=specs,
        platform="win-64",
        virtual_packages=virtual_packages("win-64", vps or {}),
        cache_dir=tmp_path / "repodata-cache",
    )


def both(request: SolveRequest, mm: Path) -> tuple[list[LockedPackage], list[LockedPackage]]:
    return RattlerSolver().solve(request), MicromambaSolver(str(mm)).solve(request)


@pytest.fixture
def stand_in_exe(tmp_path: Path) -> Path:
    """The bundle's micromamba.exe for locks that must not solve for one (any file will do)."""
    path = tmp_path / "micromamba.exe"
    path.write_bytes(b"MZ stand-in")
    return path


@pytest.fixture
def solver_args(request: pytest.FixtureRequest) -> Callable[[str], list[str]]:
    def args(backend: str) -> list[str]:
        if backend == "rattler":
            return ["--solver", "rattler"]
        mm = request.getfixturevalue("real_micromamba")
        return ["--solver", "micromamba", "--solver-micromamba", str(mm)]

    return args


def platforms_of(lock_file: Path) -> Any:
    return yaml.safe_load(lock_file.read_text(encoding="utf-8"))["platforms"]


# --------------------------------------------------------------------------- equivalence


@pytest.mark.micromamba
def test_same_lock_on_conda_forge_subset(
    shared_data: Path, real_micromamba: Path, tmp_path: Path, stand_in_exe: Path
) -> None:
    subset = shared_data / "conda-forge-py39-subset"
    recipe = write_recipe(tmp_path / "py.yaml", [str(subset)], ["python=3.9", "pip"])
    locks = {}
    for backend in ("rattler", "micromamba"):
        lock_file = tmp_path / f"{backend}.lock.yaml"
        result = run_cli(
            "lock", recipe, "--solver", backend, "--solver-micromamba", real_micromamba,
            "--micromamba-exe", stand_in_exe, "--lock-file", lock_file,
            "--cache-dir", tmp_path / "cache", "-q",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        locks[backend] = platforms_of(lock_file)
    assert locks["rattler"] == locks["micromamba"]
    packages = locks["rattler"]["win-64"]["packages"]
    assert len(packages) == 17
    by_name = {p["name"]: p for p in packages}
    assert by_name["python"]["version"].startswith("3.9.")
    assert {"pip", "vc14_runtime", "ucrt", "openssl", "setuptools"} <= set(by_name)
    assert all(len(p["sha256"]) == 64 and len(p["md5"]) == 32 and p["size"] > 0 for p in packages)
    assert all(p["url"].startswith(subset.resolve().as_uri() + "/") for p in packages)


@pytest.mark.micromamba
def test_same_lock_on_http_test_channel(
    recipe: Path, real_micromamba: Path, tmp_path: Path, cache_dir: Path
) -> None:
    """Over HTTP, and with the bundle's micromamba (and its runtime) solved by the same backend."""
    locks = {}
    for backend in ("rattler", "micromamba"):
        lock_file = tmp_path / f"{backend}.lock.yaml"
        result = run_cli(
            "lock", recipe, "--solver", backend, "--solver-micromamba", real_micromamba,
            "--lock-file", lock_file, "-q",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        locks[backend] = platforms_of(lock_file)
    assert locks["rattler"] == locks["micromamba"]
    win = locks["rattler"]["win-64"]
    assert [p["name"] for p in win["packages"]] == [
        "docs", "libzlib", "tool", "ucrt", "vc", "vc14_runtime",
    ]  # fmt: skip
    assert win["micromamba"]["record"]["version"] == "2.8.1"
    assert [r["name"] for r in win["micromamba"]["runtime"]] == ["vc14_runtime"]
    assert all(p["url"].startswith("http://127.0.0.1:") for p in win["packages"])


@pytest.mark.micromamba
def test_micromamba_found_on_path(
    recipe: Path, real_micromamba: Path, tmp_path: Path, cache_dir: Path, stand_in_exe: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "micromamba").symlink_to(real_micromamba)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    result = run_cli(
        "lock", recipe, "--solver", "micromamba", "--micromamba-exe", stand_in_exe, "-q"
    )
    assert result.exit_code == 0, result.output


@pytest.mark.micromamba
def test_normalised_fields_on_real_anaconda_records(
    shared_data: Path, real_micromamba: Path, tmp_path: Path
) -> None:
    """Real records with no licence, no timestamp, and both .conda and .tar.bz2 of one build.

    micromamba reports "" and 0 where the repodata has nothing, and seconds where it has
    milliseconds; the lock has None, None and milliseconds truncated to the second.
    """
    channel = str(shared_data / "anaconda-zlib-channel")
    new = request_for([channel], ["zlib"], tmp_path)
    old = request_for([channel], ["zlib=1.2.8"], tmp_path)
    for req in (new, old):
        from_rattler, from_micromamba = both(req, real_micromamba)
        assert from_rattler == from_micromamba
    by_name = {r.name: r for r in RattlerSolver().solve(new)}
    assert by_name["zlib"].fn == "zlib-1.2.11-h62dcd97_3.conda"  # .conda preferred by both
    assert by_name["zlib"].timestamp == 1542815182000  # repodata: 1542815182812
    assert by_name["vs2015_runtime"].license is None
    (zlib_128,) = RattlerSolver().solve(old)
    assert zlib_128.timestamp is None and zlib_128.subdir == "win-64"  # neither in its repodata


@pytest.mark.micromamba
def test_depends_spelled_the_same_by_both(real_micromamba: Path, tmp_path: Path) -> None:
    """micromamba re-renders dependency specs, rattler keeps the repodata's text: the lock has one
    canonical spelling."""
    raw = ("ucrt>=10", "vc  14.*", "libzlib >=1.3 , <2", "vc14_runtime ==14.38", "x 1.0 h1*")
    channel = repodata_channel(
        tmp_path / "chan",
        [
            rec("app", depends=raw, constrains=["docs  >0.0", "foo>=1"]),
            rec("ucrt", "10.0"),
            rec("vc", "14.3"),
            rec("libzlib", "1.3.1"),
            rec("vc14_runtime", "14.38"),
            rec("x", "1.0", "h1_0"),
        ],
    )
    req = request_for([str(channel)], ["app"], tmp_path)
    from_rattler, from_micromamba = both(req, real_micromamba)
    assert from_rattler == from_micromamba
    app = next(r for r in from_rattler if r.name == "app")
    assert app.depends == (
        "ucrt >=10", "vc 14.*", "libzlib >=1.3,<2", "vc14_runtime ==14.38", "x ==1.0 h1*",
    )  # fmt: skip
    assert app.constrains == ("docs >0.0", "foo >=1")


@pytest.mark.micromamba
def test_ties_and_channel_order_resolved_alike(real_micromamba: Path, tmp_path: Path) -> None:
    ties = repodata_channel(
        tmp_path / "ties",
        [
            rec("a", "1.0", "b1", timestamp=1000000000000),
            rec("a", "1.0", "b2", timestamp=2000000000000),  # same version and build number
            rec("t", "1.0", "feat", build_number=1, track_features="x"),
            rec("t", "1.0", "plain"),
            rec("e", "1.0", "x", depends=("f 2.*",)),
            rec("e", "2.0", "x", depends=("f 1.*",)),
            rec("f", "1.0", "x"),
            rec("f", "2.0", "x"),
        ],
    )
    first = repodata_channel(tmp_path / "first", [rec("p", "1.0", "a")])
    second = repodata_channel(tmp_path / "second", [rec("p", "2.0", "b")])
    cases = [
        ([str(ties)], ["a", "t", "e", "f"]),
        ([str(first), str(second)], ["p"]),
        ([str(second), str(first)], ["p"]),
        ([str(first), str(second)], ["p>=2"]),
    ]
    picked = []
    for channels, specs in cases:
        from_rattler, from_micromamba = both(
            request_for(channels, specs, tmp_path), real_micromamba
        )
        assert from_rattler == from_micromamba, (channels, specs)
        picked.append(sorted(r.fn for r in from_rattler))
    assert picked[0] == ["a-1.0-b2.conda", "e-2.0-x.conda", "f-1.0-x.conda", "t-1.0-plain.conda"]
    assert picked[1] == ["p-1.0-a.conda"]  # the first channel wins when it can
    assert picked[2] == ["p-2.0-b.conda"]
    assert picked[3] == ["p-2.0-b.conda"]  # a later channel only where the first cannot


@pytest.mark.parametrize("backend", BACKENDS)
def test_virtual_packages_reach_the_solver(
    backend: str, solver_args: Callable[[str], list[str]], tmp_path: Path, stand_in_exe: Path
) -> None:
    """Both backends solve against the target's virtual packages, not the Linux host's."""
    channel = repodata_channel(
        tmp_path / "chan",
        [rec("winonly", depends=("__win >=10",)), rec("gpu", depends=("__cuda >=11",))],
    )

    def lock(name: str, deps: list[str], extra: str = "") -> Any:
        recipe = write_recipe(tmp_path / f"{name}.yaml", [str(channel)], deps, extra)
        return run_cli(
            "lock", recipe, *solver_args(backend), "--micromamba-exe", stand_in_exe,
            "--cache-dir", tmp_path / "cache", "-q",
        )  # fmt: skip

    assert lock("ok", ["winonly"]).exit_code == 0
    old_windows = lock("old", ["winonly"], "envpack:\n  virtual_packages:\n    __win: '6.1'\n")
    assert old_windows.exit_code == 3, old_windows.output
    assert "winonly cannot be installed (unsatisfiable requirements on __win)" in old_windows.stderr
    no_gpu = lock("gpu", ["gpu"])  # a bundle must not assume the builder's (or any) GPU
    assert no_gpu.exit_code == 3, no_gpu.output
    assert "for win-64: gpu cannot be installed (unsatisfiable requirements on __cuda)" in (
        no_gpu.stderr
    )
    with_gpu = lock("gpu2", ["gpu"], "envpack:\n  virtual_packages:\n    __cuda: '12.0'\n")
    assert with_gpu.exit_code == 0, with_gpu.output


# --------------------------------------------------------------------------- errors

ERROR_CASES = {
    "unknown-name": (["tool", "nosuchpkg"], "no package matches nosuchpkg in file://"),
    "missing-version": (["tool=9"], "no package matches tool "),
    "unsatisfiable": (["a", "b"], "cannot be installed (unsatisfiable requirements on c"),
    # refused when the recipe is read (exit 2), before any solver sees it
    "bad-spec": (["tool>=1=*=*=x"], "dependency 'tool>=1=*=*=x' is not a conda match spec"),
}


def assert_one_line_error(result: Any, exit_code: int, starts: str, contains: str) -> str:
    assert result.exit_code == exit_code, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("envpack: error: " + starts), line
    assert contains in line, line
    for junk in ("Traceback", "{", "│", "└", "libmamba", "\\n"):
        assert junk not in line, line
    return line


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
@pytest.mark.parametrize("backend", BACKENDS)
def test_solve_errors_are_one_readable_line(
    backend: str, case: str, solver_args: Callable[[str], list[str]], std_channel: Path,
    tmp_path: Path, stand_in_exe: Path,
) -> None:  # fmt: skip
    conflict = repodata_channel(
        tmp_path / "conflict",
        [
            rec("a", depends=("c 1.*",)),
            rec("b", depends=("c 2.*",)),
            rec("c", "1.0"),
            rec("c", "2.0"),
        ],
    )
    specs, expected = ERROR_CASES[case]
    channel = conflict if case == "unsatisfiable" else std_channel
    recipe = write_recipe(tmp_path / "bad.yaml", [str(channel)], specs)
    result = run_cli(
        "lock", recipe, *solver_args(backend), "--micromamba-exe", stand_in_exe,
        "--cache-dir", tmp_path / "cache", "-q",
    )  # fmt: skip
    # the recipe's specs are canonical match specs: "tool=9" is solved (and named) as "tool 9.*"
    written = " ".join({"tool=9": "tool 9.*"}.get(s, s) for s in specs)
    starts = "" if case == "bad-spec" else f"cannot solve {written!r} for win-64: "
    assert_one_line_error(result, 2 if case == "bad-spec" else 3, starts, expected)
    assert not (tmp_path / "bad.lock.yaml").exists()


@pytest.mark.parametrize("backend", BACKENDS)
def test_unsatisfiable_on_conda_forge_subset(
    backend: str, solver_args: Callable[[str], list[str]], shared_data: Path, tmp_path: Path,
    stand_in_exe: Path,
) -> None:  # fmt: skip
    subset = shared_data / "conda-forge-py39-subset"
    recipe = write_recipe(tmp_path / "bad.yaml", [str(subset)], ["python=3.9", "openssl=1.0"])
    result = run_cli(
        "lock", recipe, *solver_args(backend), "--micromamba-exe", stand_in_exe,
        "--cache-dir", tmp_path / "cache", "-q",
    )  # fmt: skip
    line = assert_one_line_error(
        result,
        3,
        "cannot solve 'python 3.9.* openssl 1.0.*' for win-64: python ",
        "cannot be installed",
    )
    assert "unsatisfiable requirements on " in line and "openssl" in line


def test_no_micromamba_on_path(
    recipe: Path, tmp_path: Path, cache_dir: Path, stand_in_exe: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = run_cli(
        "lock", recipe, "--solver", "micromamba", "--micromamba-exe", stand_in_exe, "-q"
    )
    assert_one_line_error(
        result, 3, "the micromamba solver needs a micromamba on PATH or --solver-micromamba", ""
    )


def test_solver_micromamba_that_cannot_run(
    recipe: Path, tmp_path: Path, cache_dir: Path, stand_in_exe: Path
) -> None:
    not_executable = tmp_path / "micromamba"
    not_executable.write_text("not a program")
    script = tmp_path / "impostor"
    script.write_text("#!/bin/sh\necho hello\nexit 2\n")
    script.chmod(0o755)
    for exe, contains in [
        (not_executable, "Permission denied (is it executable?)"),
        (script, "exited with status 2 and printed no result for"),
    ]:
        result = run_cli(
            "lock", recipe, "--solver", "micromamba", "--solver-micromamba", exe,
            "--micromamba-exe", stand_in_exe, "-q",
        )  # fmt: skip
        assert_one_line_error(result, 3, "", contains)
    with pytest.raises(SolveError, match=r"micromamba '/no/such/micromamba' not found"):
        MicromambaSolver("/no/such/micromamba").solve(request_for(["x"], ["tool"], tmp_path))


@pytest.mark.micromamba
def test_micromamba_download_error(
    real_micromamba: Path, tmp_path: Path, stand_in_exe: Path
) -> None:
    empty = tmp_path / "no-repodata"
    (empty / "win-64").mkdir(parents=True)
    recipe = write_recipe(tmp_path / "dl.yaml", [str(empty)], ["tool"])
    result = run_cli(
        "lock", recipe, "--solver", "micromamba", "--solver-micromamba", real_micromamba,
        "--micromamba-exe", stand_in_exe, "-q",
    )  # fmt: skip
    assert_one_line_error(
        result, 5, f"micromamba could not fetch repodata from {empty.as_uri()}: ", "repodata.json"
    )


def test_micromamba_offline_needs_local_channels(
    recipe: Path, tmp_path: Path, stand_in_exe: Path
) -> None:
    """Each micromamba solve starts from an empty cache, so --offline has nothing to offer."""
    result = run_cli(
        "lock", recipe, "--solver", "micromamba", "--solver-micromamba", stand_in_exe,
        "--micromamba-exe", stand_in_exe, "--offline", "-q",
    )  # fmt: skip
    assert_one_line_error(result, 5, "--offline with the micromamba solver works with local", "")


@pytest.mark.micromamba
def test_micromamba_solver_is_isolated(
    std_channel: Path, real_micromamba: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller's conda settings, caches and home folder neither change nor receive anything."""
    req = request_for([str(std_channel)], ["tool", "docs"], tmp_path)
    clean = MicromambaSolver(str(real_micromamba)).solve(req)
    other = repodata_channel(tmp_path / "other", [rec("tool", "9.0")])
    rc = tmp_path / "condarc"
    rc.write_text(f"channels: [{other.as_uri()}]\nchannel_priority: disabled\n")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".condarc").write_text(f"channels: [{other.as_uri()}]\n")
    hostile = {
        "CONDARC": str(rc),
        "MAMBARC": str(rc),
        "HOME": str(home),
        "CONDA_CHANNELS": other.as_uri(),
        "CONDA_SUBDIR": "linux-64",
        "CONDA_PKGS_DIRS": str(tmp_path / "their-pkgs"),
        "MAMBA_ROOT_PREFIX": str(tmp_path / "their-root"),
        "CONDA_PREFIX": str(tmp_path / "their-env"),
        "CONDA_OVERRIDE_WIN": "0",
        "CONDA_CHANNEL_PRIORITY": "disabled",
        "MAMBA_PINNED_PACKAGES": "tool=1.0",  # honoured despite --no-rc (measured with 2.8.1)
    }
    for key, value in hostile.items():
        monkeypatch.setenv(key, value)
    assert MicromambaSolver(str(real_micromamba)).solve(req) == clean
    for name in ("their-pkgs", "their-root", "their-env"):
        assert not (tmp_path / name).exists()
    assert sorted(p.name for p in home.iterdir()) == [".condarc"]


def test_builder_env_drops_micromamba_settings(tmp_path: Path) -> None:
    base = {
        "PATH": "/bin",
        "HOME": "/home/u",
        "CONDA_CHANNELS": "x",
        "CONDA_CHANNEL_PRIORITY": "disabled",
        "MAMBA_PINNED_PACKAGES": "tool=1.0",
        "MAMBA_ROOT_PREFIX": "/r",
        "CONDARC": "/rc",
        "PYTHONPATH": "/p",
        "CONDA_SSL_VERIFY": "/ca.pem",
        "HTTPS_PROXY": "http://proxy:3128",
    }
    env = mamba_cli.builder_env(base, tmp_path / "root", tmp_path / "pkgs")
    assert env == {
        "PATH": "/bin",
        "HOME": "/home/u",
        "CONDA_SSL_VERIFY": "/ca.pem",
        "HTTPS_PROXY": "http://proxy:3128",
        mamba_cli.ROOT_PREFIX_VAR: str(tmp_path / "root"),
        mamba_cli.PKGS_DIRS_VAR: str(tmp_path / "pkgs"),
    }


# --------------------------------------------------------------------------- parse_dry_run


def link_entry(channel: str, timestamp: int, **extra: Any) -> dict[str, Any]:
    url = "https://conda.anaconda.org/conda-forge/win-64/zlib-1.3.1-h2466b09_2.conda"
    return {
        "build": "h2466b09_2",
        "build_number": 2,
        "build_string": "h2466b09_2",
        "channel": channel,
        "constrains": ["zlib 1.3.1 *_2"],
        "depends": ["ucrt >=10.0.20348.0", "vc >=14.2,<15", "vc14_runtime >=14.29.30139"],
        "fn": "zlib-1.3.1-h2466b09_2.conda",
        "license": "Zlib",
        "md5": "41fbfac52c601159df6c01f875de31b9",
        "name": "libzlib",
        "sha256": "ba945c6493449bed0e6e29883c4943817f7c79cbff52b83360f7b341277c6402",
        "size": 55476,
        "subdir": "win-64",
        "timestamp": timestamp,
        "track_features": "",
        "url": url,
        "version": "1.3.1",
        **extra,
    }


def test_parse_dry_run_reads_1x_and_2x_json(tmp_path: Path) -> None:
    """1.x names the channel by URL with the subdir, 2.x by name; 2.8 adds log_history."""
    req = request_for(["conda-forge"], ["libzlib"], tmp_path)
    v2 = {
        "actions": {
            "FETCH": [],
            "LINK": [link_entry("conda-forge", 1716874495)],
            "PREFIX": "/tmp/p",
        },
        "dry_run": True,
        "log_history": [],
        "prefix": "/tmp/p",
        "success": True,
    }
    v1_entry = link_entry("https://conda.anaconda.org/conda-forge/win-64", 1716874495)
    v1 = {"actions": {"LINK": [v1_entry], "PREFIX": "/tmp/p"}, "dry_run": True, "success": True}
    from_v2 = parse_dry_run(json.dumps(v2, indent=4), "", 0, req)
    # 1.x may print a line before its JSON document
    from_v1 = parse_dry_run("info     libmamba loading\n" + json.dumps(v1), "", 0, req)
    assert from_v1 == from_v2
    (record,) = from_v2
    assert record.channel == "https://conda.anaconda.org/conda-forge"
    assert record.timestamp == 1716874495000
    assert record.depends[0] == "ucrt >=10.0.20348.0"
    empty = {"actions": {"LINK": []}, "success": True}
    assert parse_dry_run(json.dumps(empty), "", 0, req) == []


def test_parse_dry_run_failures(tmp_path: Path) -> None:
    req = request_for(["conda-forge"], ["python=3.9", "nosuchpkg"], tmp_path)
    unsupported = json.dumps({"solver_problems": ["unsupported request"], "success": False})
    stderr = "critical libmamba Could not solve for environment specs\n"
    explanation = (
        "error    libmamba Could not solve for environment specs\n"
        "    The following package could not be installed\n"
        "    └─ nosuchpkg =* * does not exist (perhaps a typo or a missing channel).\n"
        "critical libmamba Could not solve for environment specs\n"
    )
    expected = (
        "cannot solve 'python=3.9 nosuchpkg' for win-64: no package matches nosuchpkg "
        "in https://conda.anaconda.org/conda-forge"
    )
    with pytest.raises(SolveError) as caught:
        parse_dry_run(unsupported, stderr, 1, req, explanation)
    assert str(caught.value) == expected
    # micromamba 1.x: libsolv's problems in the JSON
    v1 = json.dumps({"solver_problems": ["nothing provides requested nosuchpkg"], "success": False})
    with pytest.raises(SolveError) as caught:
        parse_dry_run(v1, stderr, 1, req, None)
    assert str(caught.value) == expected
    v1_dep = json.dumps(
        {
            "solver_problems": ["nothing provides vc 10.* needed by openssl-1.0.2h-vc10_0"],
            "success": False,
        }
    )
    with pytest.raises(SolveError, match=r"openssl-1.0.2h-vc10_0 cannot be installed \("):
        parse_dry_run(v1_dep, stderr, 1, req, None)
    with pytest.raises(SolveError, match=r"^invalid spec .*: Error parsing version"):
        parse_dry_run("", 'critical libmamba Error parsing version "3.9=*".\n', 1, req, None)
    with pytest.raises(DownloadError, match=r"Download error \(7\) Couldn't connect"):
        parse_dry_run(
            "",
            "critical libmamba Multiple errors occurred:\n"
            "    Download error (7) Couldn't connect to server [https://x/noarch/repodata.json]\n",
            1,
            req,
            None,
        )
    with pytest.raises(SolveError, match=r"exited with status 0 and printed no result"):
        parse_dry_run("", "", 0, req, None)


def test_summaries_of_problem_reports() -> None:
    text = (
        "Cannot solve the request because of: python 3.9.* cannot be installed because there "
        "are no viable options:\n"
        "├─ python 3.9.19 would require\n"
        "│  └─ openssl >=3.2.1,<4.0a0, for which no candidates were found.\n"
        "└─ python 3.9.10 would require\n"
        "   └─ pypy3.9 7.3.8.*, which cannot be installed because there are no viable options:\n"
        "      └─ pypy3.9 7.3.8 would require\n"
        "         └─ openssl >=3.0.0,<4.0a0, for which no candidates were found.\n"
    )
    assert summarise_problems(text) == (
        "python 3.9.* cannot be installed (unsatisfiable requirements on openssl)"
    )
    # micromamba 1.x without --json: libsolv's list under a heading that says nothing
    libsolv = (
        "Encountered problems while solving:\n"
        "  - package app-1.0-0 requires lib >=2, but none of the providers can be installed\n"
    )
    assert summarise_problems(libsolv) == (
        "package app-1.0-0 requires lib >=2, but none of the providers can be installed"
    )
    long_text = "x" * 1000
    assert len(summarise_problems(long_text)) == 400
