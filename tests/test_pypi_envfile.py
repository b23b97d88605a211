"""Environment files read as conda reads them: lenient specs, default channels, unknown sections,
pip: lists; the corpus in tests/data/envfiles parses, and solves or fails only for a missing
package (never for a spelling)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from envpack.channels import resolve_channel
from envpack.errors import RecipeError, SolveError
from envpack.platforms import virtual_packages
from envpack.pypi.envfile import canonical_match_spec, read_env_file, spec_name, with_pip
from envpack.pypi.requirements import parse_pip_list
from envpack.resolve.rattler_backend import RattlerSolver
from envpack.resolve.solver import SolveRequest

CORPUS = Path(__file__).parent / "data" / "envfiles"


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("numpy=1.21.5=py39h7a0a035_1", "numpy ==1.21.5 py39h7a0a035_1"),
        ("jupyterlab 4.5.4", "jupyterlab ==4.5.4"),
        ("pytorch-lightning=1.9.*", "pytorch-lightning 1.9.*"),
        ("conda-forge::h5py=*=*mpi_openmpi*", "conda-forge::h5py * *mpi_openmpi*"),
        ("numpy >=1.20,<2", "numpy >=1.20,<2"),
        ("numpy >= 1.20, < 2", "numpy >=1.20,<2"),
        ("scipy>=1.7, <2", "scipy >=1.7,<2"),
        ("python=3.9", "python 3.9.*"),
        ("blas=*=mkl", "blas * mkl"),
        ('numpy[version=">=1.20"]', "numpy >=1.20"),
        ("  pip  ", "pip"),
    ],
)
def test_every_conda_spelling_becomes_one_canonical_spec(text: str, canonical: str) -> None:
    assert canonical_match_spec(text) == canonical


def test_a_spec_conda_refuses_too_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"env.yml: dependency 'numpy >=<1' is not a conda"):
        canonical_match_spec("numpy >=<1", tmp_path / "env.yml")
    # lenient parsing takes it, but its canonical form is not a valid strict spec
    with pytest.raises(RecipeError, match=r"dependency 'tool>=1=\*=\*=x' is not a conda match"):
        canonical_match_spec("tool>=1=*=*=x", tmp_path / "env.yml")


def test_pip_is_added_when_pip_entries_exist() -> None:
    assert with_pip(["python 3.9.*"], ["six"]) == ["python 3.9.*", "pip"]
    assert with_pip(["python 3.9.*", "pip ==21.2.4 py39haa95532_0"], ["six"]) == [
        "python 3.9.*",
        "pip ==21.2.4 py39haa95532_0",
    ]
    assert with_pip(["python 3.9.*"], []) == ["python 3.9.*"]
    assert spec_name("conda-forge::h5py * *mpi*") == "h5py"


def load(name: str):  # type: ignore[no-untyped-def]
    path = CORPUS / name
    return path, read_env_file(yaml.safe_load(path.read_text()), path)


def test_export_with_build_pins_and_prefix() -> None:
    path, env = load("export-pins.yml")
    assert env.conda_specs[:2] == [
        "ca-certificates ==2022.3.29 haa95532_0",
        "numpy ==1.21.5 py39h7a0a035_1",
    ]
    assert env.channels == ["defaults"]
    assert any("'prefix:" in n and "ignored" in n for n in env.notes)
    pip = parse_pip_list(env.pip_lines, path)
    assert pip.names == ["charset-normalizer", "requests", "urllib3"]


def test_pip_options_and_included_files() -> None:
    path, env = load("pip-options.yml")
    pip = parse_pip_list(env.pip_lines, path)
    assert pip.index_url == "https://index.example.invalid/simple"
    assert pip.extra_index_urls == ["https://mirror.example.invalid/simple"]
    assert pip.find_links == [str(CORPUS / "wheels")]
    assert pip.pre is True
    assert pip.names == ["tqdm", "attrs", "colorama", "requests"]
    assert [str(c) for c in pip.constraints] == ["urllib3<2"]
    assert str(pip.requirements[2].marker) == 'sys_platform == "win32"'
    assert pip.requirements[3].extras == {"socks"}


def test_variables_nodefaults_and_channel_qualified() -> None:
    _, geo = load("variables-nodefaults.yml")
    assert geo.channels == ["conda-forge"]
    assert geo.conda_specs == ["python >=3.9,<3.10", "gdal >=3.4", "pyproj"]
    _, hpc = load("channel-qualified.yml")
    assert hpc.conda_specs == [
        "conda-forge::numpy",
        "conda-forge::h5py * *mpi_openmpi*",
        "numpy >=1.20,<2",
        "jupyterlab ==4.5.4",
        "pytorch-lightning 1.9.*",
        "scipy >=1.7,<2",
    ]


def test_no_channels_and_an_unknown_section_are_notes() -> None:
    _, env = load("no-channels.yml")
    assert env.channels == ["conda-forge"]
    assert env.conda_specs == ["python 3.9.*", "pip"]
    assert len(env.notes) == 2
    assert "unknown section 'platform' ignored" in env.notes[0]
    assert "no channels: given; using conda-forge" in env.notes[1]


def test_editable_and_vcs_entries_are_direct() -> None:
    path, env = load("editable.yml")
    pip = parse_pip_list(env.pip_lines, path)
    assert pip.requirements == []
    assert pip.direct == [".", "git+https://git.example.invalid/org/tool.git@v1.2",
                          "./vendor/helper"]  # fmt: skip


def test_dependencies_other_than_pip_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"env.yml: dependencies: \['npm'\] is not supported"):
        read_env_file({"dependencies": [{"npm": ["x"]}]}, tmp_path / "env.yml")


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.yml")))
def test_corpus_solves_or_misses_a_package_only(name: str, shared_data: Path) -> None:
    """Against the real conda-forge python 3.9 subset: the specs parse and reach the solver;
    the only acceptable failure is a package the subset does not have."""
    _, env = load(name)
    channel = resolve_channel(str(shared_data / "conda-forge-py39-subset"), shared_data)
    # channel-qualified specs name conda-forge; the subset stands in for it here
    specs = [s.replace("conda-forge::", "") for s in env.conda_specs]
    request = SolveRequest(
        channels=[channel],
        specs=specs,
        platform="win-64",
        virtual_packages=virtual_packages("win-64", {}),
    )
    try:
        records = RattlerSolver().solve(request)
    except SolveError as exc:
        message = str(exc)
        assert "not valid" not in message and "parse" not in message.lower(), message
        missing = {"numpy", "gdal", "pyproj", "h5py", "jupyterlab", "pytorch-lightning", "scipy",
                   "ca-certificates ==2022.3.29"}  # fmt: skip
        assert any(m in message for m in missing), message
    else:
        assert "python" in {r.name for r in records}
