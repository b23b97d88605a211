"""A bundle with wheels, built through the CLI from a test channel and a local 127.0.0.1 index
(the wheels come from pypi_index.py; nothing leaves the machine)."""

from __future__ import annotations

from pathlib import Path

from pypi_index import IndexServer

from channel_factory import Pkg, make_channel, standard_packages
from conftest import run_cli


def pip_packages() -> list[Pkg]:
    return [
        *standard_packages(),
        Pkg("python", "3.9.10", "h0_cp39"),
        Pkg("pip", "23.0", "pyh0", subdir="noarch", depends=["python >=3.7"]),
    ]


def build_wheel_bundle(
    tmp_path: Path,
    index: IndexServer,
    packages: list[Pkg] | None = None,
    wheels: tuple[str, ...] = ("alpha",),
    name: str = "pipenv",
    platform: str = "win-64",
    extra_args: tuple[str, ...] = (),
) -> Path:
    """Build ``name`` (python 3.9 from the test channel plus the pip: ``wheels``) and return
    the zip."""
    channel = make_channel(tmp_path / "chan", packages or pip_packages())
    env = tmp_path / "environment.yml"
    pip_lines = "".join(f"    - {w}\n" for w in wheels)
    env.write_text(
        f"name: {name}\nchannels: [{channel.as_uri()}]\n"
        f"dependencies:\n  - python=3.9.10=h0_cp39\n  - pip:\n"
        f"    - --index-url {index.url}/simple\n{pip_lines}"
    )
    out = tmp_path / "out"
    result = run_cli("build", str(env), "-o", str(out), "--platform", platform, *extra_args)
    assert result.exit_code == 0, result.output
    [bundle] = out.glob("*.zip")
    return bundle
