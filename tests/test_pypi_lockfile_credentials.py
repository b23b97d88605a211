"""Wheels of a lock made by another tool, from a private index: the lock's URLs carry no
credentials, so they come from the lock file's own URLs, pip's and uv's variables or .netrc
(envpack.pypi.credentials.lock_file_indexes); they reach the index's requests and nothing else."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
import yaml

from envpack.errors import DownloadError
from envpack.fetch.download import FetchOptions
from envpack.lock.importers import load_lock_file
from envpack.pypi.credentials import lock_file_indexes
from envpack.pypi.fetch import fetch_wheels
from pypi_index import IndexServer, standard_dists, write_index

from channel_factory import Pkg, make_channel, standard_packages
from conftest import run_cli

USER, PASSWORD = "deploy", "s3cr3t-Pa55"
AUTH = f"{USER}:{PASSWORD}"
NO_ENV: dict[str, str] = {}


def _lock_text(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "conda-lock.yml"
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- the sources


def test_credentials_in_the_lock_files_own_urls(tmp_path: Path) -> None:
    path = _lock_text(
        tmp_path,
        "package:\n- url: https://u1:p1@Files.Example.invalid:8443/p/a-1-py3-none-any.whl\n"
        "- url: https://plain.example.invalid/p/b-1-py3-none-any.whl\n",
    )
    assert lock_file_indexes(path, NO_ENV) == ["https://u1:p1@files.example.invalid:8443"]


def test_pip_and_uv_variables(tmp_path: Path) -> None:
    path = _lock_text(tmp_path, "package: []\n")
    env = {
        "PIP_INDEX_URL": "https://pa:pb@pip.example.invalid/simple",
        "PIP_EXTRA_INDEX_URL": "https://extra.example.invalid/simple "
        "http://ea:eb@extra2.example.invalid:81/simple",
        "UV_INDEX": "my-corp=https://corp.example.invalid/simple https://ua:ub@uv.example.invalid/s",
        "UV_INDEX_MY_CORP_USERNAME": "ci@corp",
        "UV_INDEX_MY_CORP_PASSWORD": "p:w",
        "UV_DEFAULT_INDEX": "https://da:db@default.example.invalid/simple",
    }
    assert lock_file_indexes(path, env) == [
        "https://pa:pb@pip.example.invalid",
        "http://ea:eb@extra2.example.invalid:81",
        "https://da:db@default.example.invalid",
        # the name's "-" is "_" in uv's variable; ":" and "@" are quoted in the userinfo
        "https://ci%40corp:p%3Aw@corp.example.invalid",
        "https://ua:ub@uv.example.invalid",
    ]


def test_the_lock_file_wins_over_the_environment_for_one_host(tmp_path: Path) -> None:
    path = _lock_text(
        tmp_path, "url: https://lock:one@idx.example.invalid/f/a-1-py3-none-any.whl\n"
    )
    env = {"PIP_INDEX_URL": "https://env:two@idx.example.invalid/simple"}
    assert lock_file_indexes(path, env) == ["https://lock:one@idx.example.invalid"]


def test_netrc_for_the_hosts_the_lock_names(tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(
        "machine idx.example.invalid login nu password np\n"
        "machine other.example.invalid login ou password op\n"
    )
    path = _lock_text(tmp_path, "url: https://idx.example.invalid/f/a-1-py3-none-any.whl\n")
    assert lock_file_indexes(path, {"NETRC": str(netrc)}) == ["https://nu:np@idx.example.invalid"]
    # the same from the home folder's .netrc
    (tmp_path / ".netrc").write_text(netrc.read_text())
    assert lock_file_indexes(path, {"HOME": str(tmp_path)}) == ["https://nu:np@idx.example.invalid"]
    # an unreadable .netrc gives no credentials, as for pip
    netrc.write_text("machine idx.example.invalid login\n")
    assert lock_file_indexes(path, {"NETRC": str(netrc)}) == []


def test_a_netrc_default_entry_goes_to_no_host(tmp_path: Path) -> None:
    """netrc's `default` login would otherwise reach every host the lock names, public ones
    included (pip's requests sends it; envpack does not)."""
    netrc = tmp_path / "netrc"
    netrc.write_text(
        "machine idx.example.invalid login nu password np\ndefault login me password SECRET\n"
    )
    path = _lock_text(
        tmp_path,
        "url: https://idx.example.invalid/f/a-1-py3-none-any.whl\n"
        "url: https://files.example.invalid/f/b-1-py3-none-any.whl\n",
    )
    assert lock_file_indexes(path, {"NETRC": str(netrc)}) == ["https://nu:np@idx.example.invalid"]


def test_no_credentials_anywhere_is_an_empty_list(tmp_path: Path) -> None:
    path = _lock_text(tmp_path, "url: https://idx.example.invalid/f/a-1-py3-none-any.whl\n")
    env = {"PIP_INDEX_URL": "https://idx.example.invalid/simple", "HOME": str(tmp_path)}
    assert lock_file_indexes(path, env) == []


# --------------------------------------------------------------------------- against an index


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


WHEELS = (
    "alpha-1.1-cp39-cp39-win_amd64.whl",
    "beta-1.2-py3-none-any.whl",
    "gamma-0.5-py3-none-any.whl",
)


def _conda_lock(tmp_path: Path, channel: Path, index_root: Path, index_url: str) -> Path:
    """A conda-lock with python and pip from the test channel and three wheels from the index,
    every URL without credentials (as conda-lock writes them)."""
    repodata = {
        sub: json.loads((channel / sub / "repodata.json").read_text())
        for sub in ("win-64", "noarch")
    }
    package = []
    for sub, data in repodata.items():
        for fn, rec in sorted(
            {**data.get("packages", {}), **data.get("packages.conda", {})}.items()
        ):
            if rec["name"] not in ("python", "pip"):
                continue
            package.append(
                {
                    "name": rec["name"],
                    "version": rec["version"],
                    "manager": "conda",
                    "platform": "win-64",
                    "dependencies": {},
                    "url": f"{channel.as_uri()}/{sub}/{fn}",
                    "hash": {"md5": rec["md5"], "sha256": rec["sha256"]},
                    "category": "main",
                    "optional": False,
                }
            )
    for fn in WHEELS:
        name, version = fn.split("-")[:2]
        package.append(
            {
                "name": name,
                "version": version,
                "manager": "pip",
                "platform": "win-64",
                "dependencies": {},
                "url": f"{index_url}/files/{fn}",
                "hash": {"sha256": _file_sha256(index_root / "files" / fn)},
                "category": "main",
                "optional": False,
            }
        )
    path = tmp_path / "conda-lock.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "metadata": {
                    "channels": [{"url": channel.as_uri(), "used_env_vars": []}],
                    "platforms": ["win-64"],
                    "content_hash": {"win-64": "x"},
                    "sources": ["environment.yml"],
                },
                "package": package,
            }
        )
    )
    return path


@pytest.fixture
def private_index(tmp_path: Path) -> tuple[Path, IndexServer]:
    root = write_index(tmp_path / "index", standard_dists())
    return root, IndexServer(root, auth=AUTH)


def test_fetch_with_the_found_credentials(
    tmp_path: Path, cache_dir: Path, private_index: tuple[Path, IndexServer]
) -> None:
    """The function's result is what build_platform's pip_indexes takes: with it the wheels
    download from the basic-auth index; without it the index answers 401."""
    root, index = private_index
    channel = make_channel(tmp_path / "chan", [Pkg("python", "3.9.10", "h0_cp39")])
    with index:
        path = _conda_lock(tmp_path, channel, root, index.url)
        wheels = load_lock_file(path, "win-64").platforms["win-64"].pypi
        options = FetchOptions(cache_dir=cache_dir)
        with pytest.raises(DownloadError, match="401") as refused:
            fetch_wheels(wheels, options, [])
        assert PASSWORD not in str(refused.value)
        env = {"PIP_INDEX_URL": f"http://{AUTH}@{index.url.removeprefix('http://')}/simple"}
        indexes = lock_file_indexes(path, env)
        assert indexes == [f"http://{AUTH}@{index.url.removeprefix('http://')}"]
        fetched = fetch_wheels(wheels, options, indexes)
    assert sorted(w.filename for w in fetched) == sorted(WHEELS)
    for wheel, (_, file) in fetched.items():
        assert _file_sha256(file) == wheel.sha256
    # every wheel request carried the credentials (and only after the 401 test, none did)
    sent = [header for p, header in index.state.requests if p.endswith(".whl")]
    assert sent[-3:] == ["Basic ZGVwbG95OnMzY3IzdC1QYTU1"] * 3
    assert None in sent[:-3]


def test_build_from_a_conda_lock_with_a_private_index(
    tmp_path: Path,
    cache_dir: Path,
    private_index: tuple[Path, IndexServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, index = private_index
    channel = make_channel(
        tmp_path / "chan",
        [
            *standard_packages(),
            Pkg("python", "3.9.10", "h0_cp39"),
            Pkg("pip", "23.0", "pyh0", subdir="noarch", depends=["python >=3.7"]),
        ],
    )
    out = tmp_path / "out"
    with index:
        path = _conda_lock(tmp_path, channel, root, index.url)
        lock_before = path.read_bytes()
        host = index.url.removeprefix("http://")
        monkeypatch.setenv("PIP_INDEX_URL", f"http://{AUTH}@{host}/simple")
        result = run_cli("build", str(path), "-o", str(out), "--json")
        assert result.exit_code == 0, result.output
        # a wrong password: one line naming the refusal, the password nowhere
        monkeypatch.setenv("PIP_INDEX_URL", f"http://{USER}:wrong-Pw@{host}/simple")
        monkeypatch.setenv("ENVPACK_CACHE_DIR", str(tmp_path / "cache2"))
        refused = run_cli("build", str(path), "-o", str(tmp_path / "out2"))
    assert json.loads(result.output.splitlines()[-1])["packages"] == 2
    assert PASSWORD not in result.output and USER not in result.output
    assert path.read_bytes() == lock_before
    [bundle] = out.glob("*.zip")
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
        wheels = sorted(n.rsplit("/", 1)[1] for n in names if "/wheels/" in n)
        for member in names:
            data = zf.read(member)
            assert PASSWORD.encode() not in data and AUTH.encode() not in data, member
    assert wheels == sorted(WHEELS)
    for f in out.rglob("*"):
        if f.is_file():
            assert PASSWORD.encode() not in f.read_bytes(), f
    assert refused.exit_code != 0
    assert "401" in refused.output
    assert "wrong-Pw" not in refused.output and PASSWORD not in refused.output
