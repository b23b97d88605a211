"""Property: every lock reader returns sound records or raises one EnvpackError.

envpack's own lock (``read_lock``) and the imported conda-lock, pixi and @EXPLICIT files
(``load_lock_file``) are fed valid files with damaged bytes and with hostile values where a file
name, URL, subdir or hash belongs. A record that comes out must have a plain file name and subdir:
they are joined into cache and bundle paths (issue 13, item 1).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from envpack.errors import EnvpackError
from envpack.lock.importers import load_lock_file
from envpack.lock.lockfile import Lock, read_lock
from property_mutations import (
    bounded,
    hostile_text,
    mutated_bytes,
    peak_memory,
    plain_file_name,
    tree,
)

CH = "https://conda.anaconda.org/conda-forge"
SHA_A = "db8dead3dd30fb1a032737554ce91e2819b43496a0db09927edf01c32b577450"
MD5_A = "6797b005cd0f439c4c5c9ac565783700"
SHA_B = "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"
MD5_B = "d41d8cd98f00b204e9800998ecf8427e"


def _record(name: str, version: str, build: str, subdir: str, sha: str, md5: str) -> dict[str, Any]:
    fn = f"{name}-{version}-{build}.conda"
    return {
        "name": name,
        "version": version,
        "build": build,
        "build_number": 1,
        "subdir": subdir,
        "fn": fn,
        "url": f"{CH}/{subdir}/{fn}",
        "channel": CH,
        "sha256": sha,
        "md5": md5,
        "size": 559710,
        "depends": ["ucrt >=10"] if name != "ucrt" else [],
        "constrains": [],
        "license": "MIT",
        "timestamp": 1728377723347,
    }


UCRT = _record("ucrt", "10.0.22621.0", "h57928b3_1", "win-64", SHA_A, MD5_A)
TZDATA = _record("tzdata", "2024a", "h0c530f3_0", "noarch", SHA_B, MD5_B)
MAMBA = _record("micromamba", "2.0.5", "0", "win-64", SHA_B, MD5_A)
ENVPACK_LOCK: dict[str, Any] = {
    "version": 1,
    "envpack": "0.1.0",
    "recipe": {"name": "demo", "path": "demo.yaml", "channels": [CH], "specs": ["ucrt"]},
    "platforms": {
        "win-64": {
            "input_hash": "0" * 64,
            "virtual_packages": ["__win=10.0.19045=0"],
            "packages": [TZDATA, UCRT],
            # copies: YAML would write one record twice as an alias, and mutate both at once
            "micromamba": {"source": "package", "record": MAMBA, "runtime": [dict(UCRT)]},
        }
    },
}
CONDA_LOCK: dict[str, Any] = {
    "version": 1,
    "metadata": {"channels": [{"url": "conda-forge"}], "platforms": ["win-64"]},
    "package": [
        {
            "name": r["name"],
            "version": r["version"],
            "manager": "conda",
            "platform": "win-64",
            "dependencies": {"ucrt": ">=10"} if r["name"] != "ucrt" else {},
            "url": r["url"],
            "hash": {"md5": r["md5"], "sha256": r["sha256"]},
            "category": "main",
            "optional": False,
        }
        for r in (UCRT, TZDATA)
    ],
}
PIXI = f"""\
version: 6
environments:
  default:
    channels:
    - url: {CH}/
    packages:
      win-64:
      - conda: {UCRT["url"]}
      - conda: {TZDATA["url"]}
packages:
- conda: {UCRT["url"]}
  sha256: {SHA_A}
  md5: {MD5_A}
  license: MIT
  size: 559710
  timestamp: 1728377723347
- conda: {TZDATA["url"]}
  sha256: {SHA_B}
  md5: {MD5_B}
  size: 120
"""
EXPLICIT = f"""\
# platform: win-64
@EXPLICIT
{UCRT["url"]}#{MD5_A}
{TZDATA["url"]}#sha256:{SHA_B}
"""
SAMPLES = {
    "demo.lock.yaml": yaml.safe_dump(ENVPACK_LOCK).encode(),
    "conda-lock.yml": yaml.safe_dump(CONDA_LOCK).encode(),
    "pixi.lock": PIXI.encode(),
    "team.txt": EXPLICIT.encode(),
}


def check_records(lock: Lock) -> None:
    for pl in lock.platforms.values():
        records = list(pl.packages)
        if pl.micromamba is not None:
            records += list(pl.micromamba.runtime)
            if pl.micromamba.record is not None:
                records.append(pl.micromamba.record)
        for r in records:
            assert plain_file_name(r.fn), f"unsafe fn {r.fn!r} accepted"
            assert plain_file_name(r.subdir), f"unsafe subdir {r.subdir!r} accepted"


def check(file_name: str, text: bytes) -> None:
    """Read ``text`` as ``file_name`` with every reader that applies: records or EnvpackError."""
    with tempfile.TemporaryDirectory(prefix="envpack-prop-") as tmp:
        folder = Path(tmp)
        path = folder / "project" / file_name
        path.parent.mkdir()
        path.write_bytes(text)
        before = tree(folder)
        readers = [lambda: load_lock_file(path), lambda: load_lock_file(path, "win-64")]
        if file_name.endswith(".lock.yaml"):
            readers.append(lambda: read_lock(path))
        for read in readers:
            try:
                with peak_memory(precise=False):
                    lock = read()
            except EnvpackError as exc:
                assert str(exc).strip(), "an error without a message"
            else:
                check_records(lock)
        assert tree(folder) == before


def test_the_samples_load() -> None:
    for file_name, text in SAMPLES.items():
        lock = load_lock_file(_write(file_name, text))
        assert sorted(r.fn for r in lock.platforms["win-64"].packages) == [
            "tzdata-2024a-h0c530f3_0.conda",
            "ucrt-10.0.22621.0-h57928b3_1.conda",
        ], file_name


_KEEP: list[tempfile.TemporaryDirectory[str]] = []


def _write(file_name: str, text: bytes) -> Path:
    tmp = tempfile.TemporaryDirectory(prefix="envpack-prop-")
    _KEEP.append(tmp)
    path = Path(tmp.name) / file_name
    path.write_bytes(text)
    return path


@bounded(160)
@given(st.sampled_from(sorted(SAMPLES)), st.data())
def test_damaged_lock_files(file_name: str, data: st.DataObject) -> None:
    check(file_name, data.draw(mutated_bytes(SAMPLES[file_name])))


def _hostile_url(piece: str, where: int) -> str:
    fn = str(UCRT["fn"])
    return [
        f"{CH}/win-64/{piece}",
        f"{CH}/win-64/{piece}{fn}",
        f"{CH}/win-64/{piece}/{fn}",
        f"{CH}/{piece}/{fn}",
        f"{CH}/win-64/{fn[:where]}{piece}{fn[where:]}",
        f"{piece}{CH}/win-64/{fn}",
    ][where % 6]


@bounded(120)
@given(
    st.sampled_from(["fn", "url", "subdir", "sha256", "md5", "name", "size", "build", "version"]),
    st.sampled_from(["packages", "runtime", "record"]),
    st.one_of(hostile_text, st.integers(), st.none(), st.lists(st.text(max_size=3), max_size=2)),
)
def test_envpack_lock_with_a_hostile_field(field: str, where: str, value: Any) -> None:
    data = yaml.safe_load(SAMPLES["demo.lock.yaml"])
    body = data["platforms"]["win-64"]
    record = {
        "packages": body["packages"][1],
        "runtime": body["micromamba"]["runtime"][0],
        "record": body["micromamba"]["record"],
    }[where]
    record[field] = value
    check(
        "demo.lock.yaml", yaml.safe_dump(data, allow_unicode=True).encode("utf-8", "surrogatepass")
    )


@bounded(120)
@given(
    st.sampled_from(["conda-lock.yml", "pixi.lock", "team.txt"]), hostile_text, st.integers(0, 40)
)
def test_imported_lock_with_a_hostile_url(file_name: str, piece: str, where: int) -> None:
    url = _hostile_url(piece, where)
    if file_name == "conda-lock.yml":
        data = yaml.safe_load(SAMPLES[file_name])
        data["package"][0]["url"] = url
        text = yaml.safe_dump(data, allow_unicode=True)
    elif file_name == "pixi.lock":
        text = PIXI.replace(
            str(UCRT["url"]), yaml.safe_dump(url, allow_unicode=True).split("\n")[0]
        )
    else:
        text = EXPLICIT.replace(str(UCRT["url"]), url)
    check(file_name, text.encode("utf-8", "surrogatepass"))


@bounded(80)
@given(
    st.sampled_from(["name", "version", "platform", "hash", "manager", "category"]),
    st.one_of(
        hostile_text,
        st.none(),
        st.integers(),
        st.dictionaries(hostile_text, hostile_text, max_size=2),
    ),
)
def test_conda_lock_with_a_hostile_field(field: str, value: Any) -> None:
    data = yaml.safe_load(SAMPLES["conda-lock.yml"])
    data["package"][0][field] = value
    check(
        "conda-lock.yml", yaml.safe_dump(data, allow_unicode=True).encode("utf-8", "surrogatepass")
    )


def test_envpack_lock_that_is_not_utf8() -> None:
    path = _write("demo.lock.yaml", b"version: 1\nenvpack: \xff\nplatforms: {}\nrecipe: {}\n")
    with pytest.raises(EnvpackError):
        read_lock(path)
    with pytest.raises(EnvpackError):
        load_lock_file(path)


# Scalars PyYAML's safe loader turns into an exception other than a YAMLError while constructing
# them: a tag the value does not fit, an impossible date, an integer past Python's digit limit.
YAML_TRAPS = (
    "!!int abc",
    "!!int 0x",
    "!!float x",
    "!!bool maybe",
    "!!timestamp x",
    "2020-13-45",
    "9" * 5000,
    "!!binary '@@@'",
    "!!set {a}",
    "!!python/name:os.system",
    "*undefined",
    "&a [*a]",
    "[" * 2000,
)


@bounded(120)
@given(
    st.sampled_from(["demo.lock.yaml", "conda-lock.yml", "pixi.lock"]),
    st.data(),
    st.one_of(st.sampled_from(YAML_TRAPS), hostile_text.map(lambda t: yaml.safe_dump(t)[:-1])),
)
def test_lock_files_with_a_hostile_yaml_value(
    file_name: str, data: st.DataObject, value: str
) -> None:
    lines = SAMPLES[file_name].decode().splitlines()
    keyed = [i for i, line in enumerate(lines) if ": " in line]
    at = data.draw(st.sampled_from(keyed))
    lines[at] = lines[at].split(": ", 1)[0] + ": " + value.replace("\n", " ")
    check(file_name, "\n".join(lines).encode("utf-8", "surrogatepass") + b"\n")


@pytest.mark.parametrize(
    ("file_name", "value"),
    [
        pytest.param(file_name, value, id=f"{file_name}-{label}")
        for file_name in ("demo.lock.yaml", "conda-lock.yml")
        for label, value in (
            ("int-tag", "!!int abc"),
            ("bool-tag", "!!bool maybe"),
            ("timestamp-tag", "!!timestamp x"),
            ("bad-date", "2020-13-45"),
            ("deep", "[" * 2000 + "]" * 2000),
        )
    ],
)
def test_yaml_values_their_tag_cannot_hold(file_name: str, value: str) -> None:
    text = SAMPLES[file_name].decode().replace("version: 1\n", f"version: {value}\n", 1)
    assert text != SAMPLES[file_name].decode()
    path = _write(file_name, text.encode())
    with pytest.raises(EnvpackError):
        load_lock_file(path)
    if file_name.endswith(".lock.yaml"):
        with pytest.raises(EnvpackError):
            read_lock(path)
