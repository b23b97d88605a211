"""A warm ``build --locked`` (every package cached, no wheels) imports neither the solvers, nor
envpack.pypi's resolver and packaging, nor the HTTP transports (issue 18: they were a third of
its start-up); the modules that need them still find them when they do."""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import rattler

from envpack.errors import RecipeError
from envpack.pypi.envfile import canonical_match_spec

from conftest import run_cli, write_recipe
from http_server import ChannelServer

# Modules a warm build of a lock without wheels must not import (each was imported before).
NOT_ON_WARM_PATH = (
    "envpack.pypi.resolve",
    "envpack.pypi.requirements",
    "envpack.pypi.plan",
    "envpack.pypi.target",
    "envpack.pypi.credentials",
    "envpack.pypi.fetch",
    "packaging",
    "packaging.specifiers",
    "packaging.utils",
    "envpack.fetch.direct",
    "envpack.fetch.http",
    "envpack.fetch.receive",
    "http.client",
    "ssl",
    "httpx",
    "envpack.resolve.solvers",
    "envpack.resolve.rattler_backend",
    "envpack.resolve.micromamba_backend",
    "asyncio",
    "rattler",
    "envpack.bundle.multi",
)
# Modules it does import: the list above is read from a real trace, not an empty one.
ON_WARM_PATH = (
    "envpack.cli",
    "envpack.pipeline",
    "envpack.assemble",
    "envpack.fetch.download",
    "envpack.pypi.bundle",
    "envpack.lock.wheel",
    "envpack.resolve.recipe",
    "yaml",
    "click",
)


def imported_modules(stderr: str) -> set[str]:
    """The modules ``python -X importtime`` reported (one ``import time:`` line each)."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                names.add(name)
    return names


def run_envpack(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """envpack as a user runs it (the CLI ends with os._exit, so the trace is read from
    -X importtime's lines on stderr, not from sys.modules)."""
    env = dict(os.environ)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "envpack", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_warm_locked_build_skips_pypi_solvers_and_http(
    tmp_path: Path, server: ChannelServer, cache_dir: Path
) -> None:
    recipe = write_recipe(tmp_path / "warm.yaml", [server.url], ["tool", "docs"])
    cold = run_cli("build", recipe, "-o", tmp_path / "cold", "--no-sfx")
    assert cold.exit_code == 0, cold.output
    asked = len(server.requests)

    warm = run_envpack("build", recipe, "--locked", "-q", "-o", tmp_path / "warm", "--no-sfx")

    assert warm.returncode == 0, warm.stderr[-3000:]
    assert len(server.requests) == asked  # warm indeed: nothing was downloaded
    assert (tmp_path / "warm" / "warm-win-64.zip").read_bytes() == (
        tmp_path / "cold" / "warm-win-64.zip"
    ).read_bytes()
    seen = imported_modules(warm.stderr)
    assert [m for m in ON_WARM_PATH if m not in seen] == []
    assert [m for m in NOT_ON_WARM_PATH if m in seen] == []


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("numpy", "numpy"),
        ("  ruamel.yaml ", "ruamel.yaml"),
        ("_libgcc_mutex", "_libgcc_mutex"),
        ("NumPy", "numpy"),  # not bare lower case: rattler's reading
        ("numpy >= 1.20, < 2", "numpy >=1.20,<2"),
        ("python=3.11", "python 3.11.*"),
    ],
)
def test_canonical_spec(written: str, canonical: str) -> None:
    assert canonical_match_spec(written) == canonical


def test_glob_name_is_still_refused() -> None:
    with pytest.raises(RecipeError, match=r"dependency 'numpy\*' is not a conda match spec"):
        canonical_match_spec("numpy*")


def rattler_canonical(text: str) -> str:
    canonical = str(rattler.MatchSpec(text, strict=False))
    rattler.MatchSpec(canonical, strict=True)
    return canonical


def test_bare_names_are_their_own_canonical_spelling() -> None:
    """The shortcut that spares a recipe of bare names the rattler import agrees with rattler:
    every name of up to three characters over a sample alphabet, and 20,000 random longer ones."""
    short = ("".join(t) for n in (1, 2, 3) for t in itertools.product("az09_.-", repeat=n))
    rng = random.Random(18)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789_.-"
    longer = ("".join(rng.choices(alphabet, k=rng.randint(4, 40))) for _ in range(20_000))
    differ = [
        name
        for name in itertools.chain(short, longer)
        if canonical_match_spec(name) != rattler_canonical(name)
    ]
    assert differ == []
