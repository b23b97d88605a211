"""Property: reading a damaged or hostile bundle gives a result or one EnvpackError.

A real bundle (zip, self-extracting .bat and 7z) is built once per session; each example damages
its bytes (bit flips, cuts, inserted bytes, often in the archive's directory at the end) or
renames a member in place (same length, so the archive stays readable) to a hostile name. Then
``open_bundle`` (every member opened and read), ``inspect_bundle``/``format_inspect``,
``verify_bundle``, ``lock_from_bundle`` and ``rebuild_inputs`` (``build --from``) run on it. None may raise anything but an
EnvpackError, write or leave a file anywhere (the example's folder, the working folder and the
temp folder are all checked), or allocate more than 200 MB; a lock read from a bundle must have
plain file names (``build --from`` joins them into cache paths).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from envpack.archive import open_bundle
from envpack.errors import EnvpackError
from envpack.snapshot import (
    format_inspect,
    inspect_bundle,
    lock_from_bundle,
    rebuild_inputs,
    verify_bundle,
)
from property_mutations import (
    bounded,
    hard_timeout,
    hostile_text,
    mutated_bytes,
    peak_memory,
    plain_file_name,
    same_length,
    tree,
)

from conftest import run_cli, write_recipe
from http_server import ChannelServer

READ_CAP = 64 << 20  # more than any member of the test bundle; a reader must not hand out more


@pytest.fixture(scope="session")
def bundles(std_channel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The bytes of one small real bundle in each form: ``.zip``, ``-setup.bat`` and ``.7z``."""
    work = tmp_path_factory.mktemp("property-bundles")
    with ChannelServer(std_channel) as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENVPACK_CACHE_DIR", str(work / "cache"))
        mp.delenv("SOURCE_DATE_EPOCH", raising=False)
        zipped = write_recipe(work / "demo.yaml", [server.url], ["tool", "docs"])
        result = run_cli("build", str(zipped), "-o", str(work / "dist"), "--sfx")
        assert result.exit_code == 0, result.output
        seven = write_recipe(
            work / "seven.yaml", [server.url], ["tool", "docs"], "envpack:\n  format: 7z\n"
        )
        result = run_cli("build", str(seven), "-o", str(work / "dist"), "--no-sfx")
        assert result.exit_code == 0, result.output
    found = {
        ".zip": work / "dist" / "demo-win-64.zip",
        "-setup.bat": work / "dist" / "demo-win-64-setup.bat",
        ".7z": work / "dist" / "seven-win-64.7z",
    }
    out = Bundles({suffix: path.read_bytes() for suffix, path in found.items()})
    for suffix, path in found.items():
        assert verify_bundle(path) == [], suffix  # the mutations start from sound bundles
    return out


class Bundles(dict[str, bytes]):
    """The bundles' bytes, shown by their sizes in a failing example (not as 200 KB of bytes)."""

    def __repr__(self) -> str:
        return f"Bundles({ {k: len(v) for k, v in self.items()} })"


def _read_everything(path: Path) -> None:
    with open_bundle(path) as reader:
        reader.manifest  # noqa: B018 -- parses and checks the manifest
        for name in reader.names():
            reader.size(name)
            if reader.damaged(name):
                continue
            total = 0
            with reader.open(name) as fh:
                while chunk := fh.read(1 << 20):
                    total += len(chunk)
                    assert total <= READ_CAP, f"{name}: more than {READ_CAP:,} bytes"


def _inspect(path: Path) -> None:
    info = inspect_bundle(path)
    format_inspect(info)


def _lock(path: Path) -> None:
    lock, _ = lock_from_bundle(path)
    for pl in lock.platforms.values():
        records = list(pl.packages)
        if pl.micromamba is not None:
            records += list(pl.micromamba.runtime)
            records += [pl.micromamba.record] if pl.micromamba.record else []
        for r in records:
            assert plain_file_name(r.fn), f"unsafe fn {r.fn!r} accepted from a bundle"
            assert plain_file_name(r.subdir), f"unsafe subdir {r.subdir!r} accepted"


def _rebuild(path: Path) -> None:
    inputs = rebuild_inputs(path)  # what build --from writes into the new bundle
    for name, _ in inputs.post_install + inputs.tools:
        assert plain_file_name(name), f"unsafe file name {name!r} taken from a bundle"


def _verify(path: Path) -> None:
    # That each problem is one line is checked by the named tests at the end (a known bug would
    # otherwise hide every other finding of these properties).
    problems = verify_bundle(path)
    assert all(isinstance(p, str) and p for p in problems), problems


ENTRY_POINTS: dict[str, Callable[[Path], None]] = {
    "open_bundle": _read_everything,
    "inspect": _inspect,
    "verify": _verify,
    "lock_from_bundle": _lock,
    "rebuild_inputs": _rebuild,
}


@contextlib.contextmanager
def sandbox() -> Iterator[Path]:
    """A folder that is also the working and temp folder; yields where the input goes."""
    with tempfile.TemporaryDirectory(prefix="envpack-prop-") as tmp:
        root = Path(tmp)
        for sub in ("input", "cwd", "tmp"):
            (root / sub).mkdir()
        saved = tempfile.tempdir
        tempfile.tempdir = str(root / "tmp")
        try:
            with contextlib.chdir(root / "cwd"):
                yield root
        finally:
            tempfile.tempdir = saved


def check(suffix: str, data: bytes) -> None:
    with sandbox() as root:
        path = root / "input" / f"demo-win-64{suffix}"
        path.write_bytes(data)
        before = tree(root)
        for name, entry in ENTRY_POINTS.items():
            try:
                with hard_timeout(), peak_memory():
                    entry(path)
            except EnvpackError as exc:
                assert str(exc).strip(), f"{name}: an error without a message"
            assert tree(root) == before, f"{name} wrote or removed files"


def test_the_bundles_are_read_whole(bundles: dict[str, bytes]) -> None:
    for suffix, data in bundles.items():
        check(suffix, data)


@bounded(90)
@given(st.sampled_from([".zip", "-setup.bat", ".7z"]), st.sampled_from(["all", "end"]), st.data())
def test_damaged_bundles(
    bundles: dict[str, bytes], suffix: str, region: str, data: st.DataObject
) -> None:
    base = bundles[suffix]
    # The directories that say where members are live at the end (zip central directory) or
    # the start (7z signature header, the .bat's header): damage there is the interesting kind.
    cut = 0 if region == "all" else max(len(base) - 4096, 0)
    head = base[:cut]
    if suffix == ".7z" and region == "end":
        head, cut = b"", 0
        damaged = data.draw(mutated_bytes(base[:256])) + base[256:]
    else:
        damaged = head + data.draw(mutated_bytes(base[cut:]))
    check(suffix, damaged)


def _names(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return sorted({i.filename for i in zf.infolist()})


@bounded(90)
@given(st.sampled_from([".zip", "-setup.bat"]), st.data(), hostile_text, st.integers(0, 60))
def test_bundles_with_a_renamed_member(
    bundles: dict[str, bytes], suffix: str, data: st.DataObject, hostile: str, where: int
) -> None:
    base = bundles[suffix]
    old = data.draw(st.sampled_from(_names(base)))
    # Same length in bytes, so every offset in the archive stays right and only the name lies.
    new = same_length(old, hostile, where % (len(old) + 1)).encode("utf-8", "surrogatepass")
    new = new[: len(old.encode())].ljust(len(old.encode()), b"x")
    check(suffix, base.replace(old.encode(), new))


def _unpacked(zipped: bytes, into: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(zipped)) as zf:
        zf.extractall(into)
    (top,) = into.iterdir()
    return top


FOLDER_CHANGES = ("symlink-out", "symlink-dir", "fifo", "hostile-name", "bytes", "remove")


@bounded(40)
@given(st.sampled_from(FOLDER_CHANGES), st.data(), hostile_text)
def test_unpacked_bundles_with_a_hostile_change(
    bundles: dict[str, bytes], change: str, data: st.DataObject, hostile: str
) -> None:
    with sandbox() as root:
        top = _unpacked(bundles[".zip"], root / "input")
        files = sorted(p.relative_to(top).as_posix() for p in top.rglob("*") if p.is_file())
        victim = top / data.draw(st.sampled_from(files))
        secret = root / "outside.txt"
        secret.write_bytes(b"not part of the bundle")
        if change == "symlink-out":
            victim.unlink()
            victim.symlink_to(data.draw(st.sampled_from([secret, Path("/etc/passwd"), root])))
        elif change == "symlink-dir":
            victim.unlink()
            victim.symlink_to(top.parent, target_is_directory=True)
        elif change == "fifo":
            victim.unlink()
            os.mkfifo(victim)  # opening it would block: a reader must not try
        elif change == "hostile-name":
            name = hostile.replace("/", "_").replace("\x00", "_") or "_"
            with contextlib.suppress(OSError):  # a name Linux cannot hold either (too long)
                (victim.parent / name).write_bytes(b"hostile")
        elif change == "bytes":
            victim.write_bytes(data.draw(mutated_bytes(victim.read_bytes() or b"x")))
        else:
            victim.unlink()
        before = tree(root)
        for name, entry in ENTRY_POINTS.items():
            for where in (top, top.parent):
                try:
                    with hard_timeout(), peak_memory():
                        entry(where)
                except EnvpackError as exc:
                    assert str(exc).strip(), f"{name}: an error without a message"
                assert tree(root) == before, f"{name} wrote or removed files"


MANIFEST_PLACES = (
    ("lock", "packages", 0, "fn"),
    ("lock", "packages", 1, "subdir"),
    ("lock", "packages", 2, "url"),
    ("lock", "packages", 3, "name"),
    ("lock", "packages", 4, "sha256"),
    ("lock", "packages", 5, "size"),
    ("lock", "micromamba", "record", "fn"),
    ("lock", "micromamba", "runtime", 0, "fn"),
    ("lock", "micromamba", "source"),
    ("lock", "packages"),
    ("files",),
    ("install", "default_prefix"),
    ("install", "variables"),
    ("install", "post_install"),
    ("name",),
    ("platform",),
    ("format_version",),
    ("sfx_header", "size"),
)


def _with_manifest_value(zipped: bytes, place: tuple[str | int, ...], value: object) -> bytes:
    """The zip with one value of its envpack.json replaced (the hashes are left as they were)."""
    with zipfile.ZipFile(io.BytesIO(zipped)) as zf:
        members = [(i, zf.read(i)) for i in zf.infolist()]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for info, content in members:
            if info.filename.endswith("/envpack.json"):
                manifest = json.loads(content)
                target = manifest
                for key in place[:-1]:
                    target = target[key]
                target[place[-1]] = value
                content = json.dumps(manifest, ensure_ascii=False).encode("utf-8", "surrogatepass")
            zf.writestr(info, content)
    return out.getvalue()


@bounded(100)
@given(
    st.sampled_from(MANIFEST_PLACES),
    st.one_of(
        hostile_text,
        st.integers(),
        st.none(),
        st.lists(hostile_text, max_size=2),
        st.dictionaries(hostile_text, hostile_text, max_size=2),
    ),
)
def test_bundles_with_a_hostile_manifest_value(
    bundles: dict[str, bytes], place: tuple[str | int, ...], value: object
) -> None:
    check(".zip", _with_manifest_value(bundles[".zip"], place, value))


@pytest.mark.parametrize(
    "name_of",
    [
        lambda top: f"{top}/../../../../tmp/x.conda",
        lambda top: "/tmp/envpack-escape.conda",
        lambda top: f"{top}/channel/win-64/..\\..\\..\\x.conda",
        lambda top: f"{top}/C:/x.conda",
        lambda top: f"{top}/channel/win-64/CON",
        lambda top: f"{top}/channel/win-64/x\x01.conda",
    ],
    ids=["dotdot", "absolute", "backslash", "drive", "reserved", "control"],
)
def test_bundles_with_a_hostile_member_added(
    bundles: dict[str, bytes], name_of: Callable[[str], str]
) -> None:
    buf = io.BytesIO(bundles[".zip"])
    top = _names(bundles[".zip"])[0].split("/", 1)[0]
    with zipfile.ZipFile(buf, "a") as zf:
        info = zipfile.ZipInfo("placeholder")
        info.filename = name_of(top)  # ZipInfo() itself would rewrite backslashes
        zf.writestr(info, b"hostile")
    check(".zip", buf.getvalue())
    with sandbox() as root:
        path = root / "input" / "demo-win-64.zip"
        path.write_bytes(buf.getvalue())
        assert any(name_of(top) in p or "unsafe" in p for p in verify_bundle(path))


# The smallest examples the properties above found while issue 13 was being fixed, kept as plain
# tests so that each names its bug.


def test_zip_missing_its_first_two_bytes(bundles: dict[str, bytes]) -> None:
    with sandbox() as root:
        path = root / "input" / "demo-win-64.zip"
        path.write_bytes(bundles[".zip"][2:])
        assert verify_bundle(path)
        try:
            info = inspect_bundle(path)
        except EnvpackError:
            pass  # refusing it is as good as listing what is wrong
        else:
            assert info["problems"]


def test_problem_lines_show_control_characters_escaped(bundles: dict[str, bytes]) -> None:
    with sandbox() as root:
        path = root / "input" / "demo-win-64.zip"
        path.write_bytes(bundles[".zip"].replace(b"demo/README.txt", b"\nemo/README.txt"))
        problems = verify_bundle(path)
        assert any("unsafe member name (control character in name)" in p for p in problems)
        assert not any("\n" in p for p in problems), problems


def test_folder_problem_lines_show_control_characters_escaped(bundles: dict[str, bytes]) -> None:
    with sandbox() as root:
        top = _unpacked(bundles[".zip"], root / "input")
        (top / "\n").write_bytes(b"hostile")
        problems = verify_bundle(top)
        assert any("unsafe file name (control character in name)" in p for p in problems)
        assert not any("\n" in p for p in problems), problems


@pytest.mark.parametrize("listed", ["x.bat", "../../etc/passwd"])
def test_rebuild_inputs_with_a_post_install_script_not_in_the_bundle(
    bundles: dict[str, bytes], listed: str
) -> None:
    with sandbox() as root:
        path = root / "input" / "demo-win-64.zip"
        path.write_bytes(
            _with_manifest_value(bundles[".zip"], ("install", "post_install"), [listed])
        )
        with pytest.raises(EnvpackError):
            rebuild_inputs(path)
