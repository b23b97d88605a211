"""Packages' etc/conda/env_vars.d/*.json reach activation (GDAL_DATA, PROJ_DATA and the like),
as conda's and micromamba's own activation would set them."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from channel_factory import Pkg, make_channel, standard_packages
from conftest import run_cli, write_recipe
from http_server import ChannelServer


def test_env_vars_d_of_packages_reach_activate(tmp_path: Path, cache_dir: Path) -> None:
    gdal = Pkg(
        "gdal",
        files={
            "etc/conda/env_vars.d/gdal.json": json.dumps(
                {"GDAL_DATA": "%CONDA_PREFIX%\\Library\\share\\gdal", "GDAL_DRIVER_PATH": "x"}
            ).encode(),
            "etc/conda/env_vars.d/zz-override.json": b'{"GDAL_DRIVER_PATH": "y & z"}',
            "Library/share/gdal/header.dxf": b"0\n",
        },
    )
    channel = make_channel(tmp_path / "chan", [*standard_packages(), gdal])
    with ChannelServer(channel) as server:
        recipe = write_recipe(tmp_path / "geo.yaml", [server.url], ["gdal"])
        result = run_cli("build", recipe, "-o", tmp_path / "dist", "--no-sfx")
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(tmp_path / "dist" / "geo-win-64.zip") as zf:
        setup = zf.read("geo/setup.bat").decode("utf-8")
    # Lines of the embedded activate.bat ("A|"), which setup.bat writes into the prefix: the
    # later file wins for a variable both set; % doubled for the embedding, & inert in quotes.
    lines = [line for line in setup.splitlines() if "GDAL" in line]
    assert lines == [
        'A|set "GDAL_DATA=%%CONDA_PREFIX%%\\Library\\share\\gdal"',
        'A|set "GDAL_DRIVER_PATH=y & z"',
    ]


def test_readme_txt_warns_about_mark_of_the_web_and_conda_init(
    recipe: Path, tmp_path: Path, cache_dir: Path
) -> None:
    result = run_cli("build", recipe, "-o", tmp_path / "dist", "--no-sfx")
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(tmp_path / "dist" / "demo-win-64.zip") as zf:
        text = zf.read("demo/README.txt").decode("utf-8")
    assert 'tick "Unblock", OK; then "Extract All..."' in text
    assert 'Never run "conda init",\r\n   "mamba init" or "micromamba shell init"' in text
    assert '"!", "%" and "^"\r\n   are not' in text
