"""Real environment files from public projects' sdists (tests/data/envfiles/real, README there):
each loads as written and locks, conda side and pip side, against a channel and a PyPI index
served on 127.0.0.1 that hold a package for every name the files ask for (at a version each
file's specs accept).

The copy that is locked differs from the file only where it points at the internet: its channels
(and ``channel::`` qualifiers) become the served channel, its pip index options become the served
index, and its direct pip references (``-e ../..``, ``git+https://...``) are left out (building
them needs their source; test_pypi_sdist.py covers that). The specs and requirements themselves
are kept as written, so a spelling envpack cannot read fails the test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from envpack.errors import SolveError
from envpack.lock.lockfile import Lock
from envpack.options import LockOptions
from envpack.pipeline import lock
from envpack.pypi.envfile import spec_name
from envpack.pypi.requirements import parse_pip_list
from envpack.resolve.recipe import Recipe, load_recipe
from pypi_index import Dist, IndexServer, write_index

from channel_factory import Pkg, make_channel
from http_server import ChannelServer

CORPUS = Path(__file__).parent / "data" / "envfiles" / "real"
FILES = sorted(str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*.y*ml"))
# The python versions tried first for an unpinned or loosely pinned python (uv needs a real one).
PYTHONS = ("3.12", "3.11", "3.10", "3.9")
_NUMBER = re.compile(r"\d+(?:\.\d+)*")
# Files whose pins name the builds of one platform are locked for that platform (as their own
# "# platform:" header says); every other file for win-64.
PLATFORMS = {"conda_lock-0.13.2/tests/test-cuda/conda-linux-64.lock.yml": "linux-64"}


# Files that ask for a package no channel has, on purpose: the served channel lacks it too, and
# the lock must fail with envpack's solve error naming it (never a spelling error).
MISSING = {
    "conda_store_server-2024.11.2/tests/user_journeys/test_data/broken_environment.yaml": (
        "invalidpackagenamefaasdfagksdjfhgaskdf"
    ),
}


def _platform(name: str) -> str:
    return PLATFORMS.get(name, "win-64")


def test_the_corpus_has_every_file() -> None:
    # Literal: a file lost from the corpus (or a glob that stops finding them) fails here.
    assert len(FILES) == 25
    for project in {f.split("/", 1)[0] for f in FILES}:
        licences = [p.name for p in (CORPUS / project).iterdir() if p.name.startswith("LICENSE")]
        assert licences, f"{project}: its licence text is not beside its files"
    readme = (CORPUS.parent / "README.md").read_text(encoding="utf-8")
    for name in FILES:
        assert f"real/{name}" in readme, f"{name} is not listed in the README"


def _candidates(version_text: str | None) -> list[str]:
    """Versions to try for a constraint: the numbers it names, each one step up, and fallbacks."""
    out: list[str] = []
    for number in _NUMBER.findall(version_text or ""):
        parts = number.split(".")
        out += [number, ".".join([*parts[:-1], str(int(parts[-1]) + 1)]), number + ".1"]
    return [*out, "1.0", "0.1", "99.0"]


def _conda_pick(name: str, specs: list[Any]) -> tuple[str, str]:
    """(version, build) that every spec of ``name`` in one file accepts."""
    import rattler

    texts = [s.version for s in specs if s.version]
    tried = [*(PYTHONS if name == "python" else ()), *_candidates(" ".join(texts))]
    for candidate in tried:
        if name == "python" and candidate.count(".") != 1:
            continue  # a python uv can target: major.minor
        version = rattler.Version(candidate)
        if all(rattler.VersionSpec(t).matches(version) for t in texts):
            builds = {s.build.replace("*", "") for s in specs if s.build}
            return candidate, (builds.pop() if builds else "0") or "0"
    raise AssertionError(f"no test version satisfies {name} {texts}")


def _pip_pick(requirements: list[Requirement]) -> str:
    joined = " ".join(str(r.specifier) for r in requirements)
    for candidate in _candidates(joined):
        try:
            version = Version(candidate)
        except InvalidVersion:
            continue
        if all(r.specifier.contains(version, prereleases=True) for r in requirements):
            return candidate
    raise AssertionError(f"no test version satisfies {[str(r) for r in requirements]}")


@dataclass
class Served:
    channel: str
    index: str


def _conda_specs(recipe: Recipe) -> dict[str, list[Any]]:
    import rattler

    by_name: dict[str, list[Any]] = {}
    for spec in recipe.specs:
        by_name.setdefault(spec_name(spec), []).append(rattler.MatchSpec(spec, strict=False))
    return by_name


def _pip_requirements(recipe: Recipe) -> list[Requirement]:
    return parse_pip_list(list(recipe.pip), recipe.path).requirements


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One channel and one index for the whole corpus: per file, a version of each name its
    specs accept (no dependencies, except pip on python, as conda-forge's pip has)."""
    root = tmp_path_factory.mktemp("corpus")
    pkgs: dict[tuple[str, str, str, str], Pkg] = {}
    dists: dict[tuple[str, str], Dist] = {}
    for name in FILES:
        subdir = _platform(name)
        recipe = load_recipe(CORPUS / name, platform=subdir)
        for conda_name, specs in _conda_specs(recipe).items():
            if conda_name == MISSING.get(name):
                continue
            version, build = _conda_pick(conda_name, specs)
            depends = ["python"] if conda_name == "pip" else []
            pkg = Pkg(conda_name, version, build, depends=depends, subdir=subdir)
            pkgs[(conda_name, version, build, subdir)] = pkg
        by_project: dict[str, list[Requirement]] = {}
        for req in _pip_requirements(recipe):
            by_project.setdefault(str(canonicalize_name(req.name)), []).append(req)
        for project, reqs in by_project.items():
            version = _pip_pick(reqs)
            dists[(project, version)] = Dist(project, version)
    channel = make_channel(root / "channel", list(pkgs.values()))
    index_root = write_index(root / "index", list(dists.values()))
    with ChannelServer(channel) as chan, IndexServer(index_root) as index:
        yield Served(chan.url, index.url)


def _local_copy(source: Path, dest: Path, served: Served) -> tuple[Path, int]:
    """The file with its channels, qualifiers and index options pointing at the served ones,
    its direct pip references left out (their number is returned)."""
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    data["channels"] = [served.channel]
    deps: list[Any] = []
    dropped = 0
    for item in data.get("dependencies") or []:
        if isinstance(item, str):
            _, sep, spec = item.rpartition("::")
            deps.append(f"{served.channel}::{spec}" if sep else item)
            continue
        pip = parse_pip_list(list(item["pip"]), source)
        dropped += len(pip.direct)
        kept = [
            line
            for line in item["pip"]
            if not line.lstrip().startswith(("-e", "--editable", "-i", "--index-url", "--extra"))
            and not re.match(r"^(git|hg|svn|bzr)\+|^[./]", line.strip())
        ]
        deps.append({"pip": [f"--index-url {served.index}/simple", *kept]})
    data["dependencies"] = deps
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return dest, dropped


def _lock(recipe_path: Path, tmp_path: Path, platform: str = "win-64") -> Lock:
    exe = tmp_path / ("micromamba.exe" if platform.startswith("win-") else "micromamba")
    exe.write_bytes(b"stand-in micromamba")
    options = LockOptions(
        recipe=recipe_path,
        platform=platform,
        micromamba_exe=exe,
        cache_dir=tmp_path / "cache",
        lock_file=tmp_path / "env.lock.yaml",
    )
    return lock(options).lock


@pytest.mark.parametrize("name", FILES)
def test_each_file_loads_and_locks(
    name: str, served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVPACK_CACHE_DIR", str(tmp_path / "cache"))
    source = CORPUS / name
    platform = _platform(name)
    recipe = load_recipe(source, platform=platform)  # as written: every spelling must read
    pip = parse_pip_list(list(recipe.pip), source)
    copy, dropped = _local_copy(source, tmp_path / "copy" / Path(name).name, served)
    assert dropped == len(pip.direct)
    if recipe.pip:
        pytest.importorskip("uv")
    if name in MISSING:
        with pytest.raises(SolveError) as failed:
            _lock(copy, tmp_path, platform)
        assert MISSING[name] in str(failed.value)
        return
    pl = _lock(copy, tmp_path, platform).platforms[platform]
    locked = {r.name for r in pl.packages}
    assert set(_conda_specs(recipe)) <= locked
    wheels = {w.name for w in pl.pypi}
    for req in pip.requirements:
        project = str(canonicalize_name(req.name))
        # conda first: a pip requirement conda already provides is not a wheel
        assert project in wheels or project in locked, f"{name}: pip {req} not locked"
    assert len(pl.pypi) == len({str(canonicalize_name(r.name)) for r in pip.requirements} - locked)


def test_real_shapes_read_as_written() -> None:
    """The shapes the corpus is for, read into the recipe as conda reads them (literal values)."""
    gammapy = load_recipe(CORPUS / "gammapy-2.1/environment-dev.yml", platform="win-64")
    assert dict(gammapy.variables) == {"PYTHONNOUSERSITE": "1"}
    assert [c.given for c in gammapy.channels] == [
        "conda-forge",
        "https://cxc.cfa.harvard.edu/conda/sherpa",
    ]
    pins = load_recipe(CORPUS / "conda_lock-0.13.2/tests/test-cuda/conda-linux-64.lock.yml")
    assert pins.specs == (
        "_libgcc_mutex ==0.1 conda_forge",
        "libstdcxx-ng ==11.1.0 h56837e0_8",
        "libgomp ==11.1.0 hc902ee8_8",
        "_openmp_mutex ==4.5 1_gnu",
        "libgcc-ng ==11.1.0 hc902ee8_8",
        "cudatoolkit ==11.0.3 h15472ef_8",
        "cudnn ==8.0.5.39 ha5ca753_1",
    )
    fastqc = "nf_core-4.2.1/nf_core/pipeline-template/modules/nf-core/fastqc/environment.yml"
    assert load_recipe(CORPUS / fastqc, platform="win-64").specs == ("bioconda::fastqc 0.13.0.*",)


def test_build_pins_lock_exactly_those_builds(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """name=version=build pins for linux-64: the lock holds those builds and nothing else."""
    monkeypatch.setenv("ENVPACK_CACHE_DIR", str(tmp_path / "cache"))
    name = "conda_lock-0.13.2/tests/test-cuda/conda-linux-64.lock.yml"
    copy, _ = _local_copy(CORPUS / name, tmp_path / "copy" / "pins.yml", served)
    pl = _lock(copy, tmp_path, "linux-64").platforms["linux-64"]
    assert {(r.name, r.version, r.build, r.subdir) for r in pl.packages} == {
        ("_libgcc_mutex", "0.1", "conda_forge", "linux-64"),
        ("libstdcxx-ng", "11.1.0", "h56837e0_8", "linux-64"),
        ("libgomp", "11.1.0", "hc902ee8_8", "linux-64"),
        ("_openmp_mutex", "4.5", "1_gnu", "linux-64"),
        ("libgcc-ng", "11.1.0", "hc902ee8_8", "linux-64"),
        ("cudatoolkit", "11.0.3", "h15472ef_8", "linux-64"),
        ("cudnn", "8.0.5.39", "ha5ca753_1", "linux-64"),
    }
