"""envpack build of an environment.yml with a pip: list (needs the integration diffs in
recipe.py, lockfile.py, pipeline.py, bundle/layout.py, bundle/stubs.py and setup.bat)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pypi_index import IndexServer, standard_dists, write_index

from channel_factory import Pkg, make_channel, standard_packages
from conftest import run_cli

pytest.importorskip("uv")


@pytest.fixture
def index(tmp_path: Path) -> Iterator[IndexServer]:
    with IndexServer(write_index(tmp_path / "index", standard_dists()), auth="bob:pw9") as srv:
        yield srv


def test_build_with_pip_section(index: IndexServer, tmp_path: Path, cache_dir: Path) -> None:
    pkgs = [*standard_packages(), Pkg("python", "3.9.10", "h0_cp39"), Pkg("pip", "23.0", "pyh0",
            subdir="noarch", depends=["python >=3.7"])]  # fmt: skip
    channel = make_channel(tmp_path / "chan", pkgs)
    url = index.url.replace("http://", "http://bob:pw9@") + "/simple"
    env = tmp_path / "environment.yml"
    env.write_text(
        f"name: pipenv\nchannels: [{channel.as_uri()}]\nplatform: win-64\n"
        f"dependencies:\n  - python=3.9.10=h0_cp39\n  - pip:\n    - --index-url {url}\n"
        "    - alpha\n"
    )
    out = tmp_path / "out"
    result = run_cli("build", str(env), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "unknown key 'platform'" in result.output
    lock_text = (tmp_path / "environment.lock.yaml").read_text()
    assert "bob" not in lock_text and "pw9" not in lock_text
    lock = yaml.safe_load(lock_text)
    wheels = lock["platforms"]["win-64"]["pypi"]
    assert [w["filename"] for w in wheels] == [
        "alpha-1.1-cp39-cp39-win_amd64.whl",
        "beta-1.2-py3-none-any.whl",
        "gamma-0.5-py3-none-any.whl",
    ]
    assert lock["recipe"]["specs"] == ["python ==3.9.10 h0_cp39", "pip"]
    [bundle] = out.glob("*.zip")
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
        setup = zf.read("pipenv/setup.bat").decode()
        manifest = json.loads(zf.read("pipenv/envpack.json"))
        sbom = json.loads(zf.read("pipenv/sbom.cdx.json"))
        txt = zf.read("pipenv/wheels.txt").decode()
    assert "pipenv/wheels/alpha-1.1-cp39-cp39-win_amd64.whl" in names
    assert "pipenv/pip-step.bat" in names
    assert 'call "%EP_BUNDLE%pip-step.bat"' in setup
    assert txt.startswith("alpha==1.1 --hash=sha256:")
    assert "pipenv/wheels/beta-1.2-py3-none-any.whl" in {f"pipenv/{k}" for k in manifest["files"]}
    assert any(c["purl"].startswith("pkg:pypi/alpha@1.1") for c in sbom["components"])
    assert "bob" not in json.dumps(manifest)
