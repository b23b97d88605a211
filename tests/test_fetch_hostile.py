"""The downloader against hostile and careless servers (issue 13, items 4-8 and 10; issue 19's
progress defect): every hash, tokens that never leak, Ctrl-C, timeouts and trickles, part files
that are locked, resumed and cleaned up, bodies longer than the package."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from envpack.errors import ChecksumError, DownloadError
from envpack.fetch.download import Fetcher, FetchOptions
from envpack.lock.record import LockedPackage
from fetch_servers import HostileServer

from channel_factory import Pkg, build_package
from conftest import run_cli
from http_server import ChannelServer

SUBPROCESS_LIMIT = 60.0  # a generous bound for a whole CLI run on a slow CI box
STOP_LIMIT = 10.0  # Ctrl-C must end a run in 2 s; measured 0.01 s; generous for a slow CI box


def record(pkg: Path, url: str, **changes: object) -> LockedPackage:
    data = pkg.read_bytes()
    fields: dict[str, object] = dict(
        name=pkg.name.rsplit("-", 2)[0],
        version="1.0",
        build="0",
        build_number=0,
        subdir="win-64",
        fn=pkg.name,
        url=f"{url}/win-64/{pkg.name}",
        channel=url,
        sha256=hashlib.sha256(data).hexdigest(),
        md5=hashlib.md5(data).hexdigest(),
        size=len(data),
    )
    fields.update(changes)
    return LockedPackage(**fields)  # type: ignore[arg-type]


def fetcher(cache: Path, **kw: object) -> Fetcher:
    return Fetcher(FetchOptions(cache_dir=cache, backoff=0.01, **kw))  # type: ignore[arg-type]


def leftovers(*roots: Path) -> list[str]:
    """Part files, lock files and temp files anywhere under ``roots``."""
    return sorted(
        str(p)
        for root in roots
        if root.exists()
        for p in root.rglob("*")
        if p.name.endswith((".part", ".lock", ".tmp"))
    )


@pytest.fixture
def pkgs(tmp_path: Path) -> list[Path]:
    root = tmp_path / "srv" / "win-64"
    return [build_package(Pkg(f"p{i}", random_bytes=200_000), root) for i in range(3)]


@pytest.fixture
def hostile(pkgs: list[Path], tmp_path: Path) -> Iterator[HostileServer]:
    with HostileServer(tmp_path / "srv") as srv:
        yield srv


@pytest.fixture
def small(tmp_path: Path) -> Path:
    return build_package(Pkg("small"), tmp_path / "srv" / "win-64")


# --------------------------------------------------------------------------- 4: every hash


def test_right_sha256_wrong_md5_fails_and_leaves_nothing(
    pkgs: list[Path], hostile: HostileServer, tmp_path: Path
) -> None:
    bad = record(pkgs[0], hostile.url, md5="0" * 32)
    with pytest.raises(ChecksumError, match=r"p0-1\.0-0\.conda.*expected md5 0{32}"):
        fetcher(tmp_path / "cache").fetch(bad)
    assert not list((tmp_path / "cache").rglob("*.conda*"))  # nothing left in the cache


def test_cache_hit_checks_md5_and_size_too(
    pkgs: list[Path], hostile: HostileServer, tmp_path: Path
) -> None:
    good = record(pkgs[0], hostile.url)
    path = fetcher(tmp_path / "cache").fetch(good)
    for wrong in (dict(md5="f" * 32), dict(size=good.size + 1)):
        with pytest.raises(ChecksumError, match=r"p0-1\.0-0\.conda: the lock records"):
            fetcher(tmp_path / "cache").fetch(record(pkgs[0], hostile.url, **wrong))
    assert hostile.hits[pkgs[0].name] == 1  # judged from the hashes kept, not downloaded again
    assert path.read_bytes() == pkgs[0].read_bytes()  # the verified file is kept


# --------------------------------------------------------------------------- 5: tokens


def explicit_file(path: Path, base: str, pkgs: list[Path]) -> Path:
    lines = ["# platform: win-64", "@EXPLICIT"]
    lines += [f"{base}/win-64/{p.name}#{hashlib.md5(p.read_bytes()).hexdigest()}" for p in pkgs]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def everything_written(*roots: Path) -> Iterator[tuple[str, bytes]]:
    """Every file under ``roots``, and every member of every zip among them."""
    for root in roots:
        for p in sorted(root.rglob("*")):
            if not p.is_file():
                continue
            yield str(p), p.read_bytes()
            if zipfile.is_zipfile(p):
                with zipfile.ZipFile(p) as zf:
                    for info in zf.infolist():
                        yield f"{p}!{info.filename}", zf.read(info)


@pytest.mark.parametrize("how", ["token", "password"])
def test_credentials_in_lock_urls_are_used_and_never_written(
    how: str, pkgs: list[Path], hostile: HostileServer, tmp_path: Path, cache_dir: Path
) -> None:
    host = hostile.url.removeprefix("http://")
    if how == "token":
        hostile.bad.token = "SECRET"
        base = f"http://{host}/t/SECRET"
    else:
        hostile.bad.basic = "alice:SECRET"
        base = f"http://alice:SECRET@{host}"
    team = explicit_file(tmp_path / "team.txt", base, pkgs)
    exe = tmp_path / "mm.exe"
    exe.write_bytes(b"MZ stand-in")
    out = tmp_path / "dist"
    args = ["build", team, "--micromamba-exe", exe, "-o", out, "--no-sfx"]
    result = run_cli(*args)
    assert result.exit_code == 0, result.output
    as_json = run_cli(*args, "--json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["packages"] == 3
    assert (out / "team-win-64.zip").is_file()
    for text in (result.stdout, result.stderr, as_json.stdout, as_json.stderr):
        assert "SECRET" not in text
    for where, data in everything_written(out, cache_dir):
        assert b"SECRET" not in data, where
    # and an error quoting the URL does not show it either
    (tmp_path / "srv" / "win-64" / pkgs[1].name).unlink()
    failed = run_cli(
        *args[:-3], "-o", tmp_path / "dist2", "--no-sfx", "--cache-dir", tmp_path / "c2"
    )
    assert failed.exit_code == 5, failed.output
    assert f"{pkgs[1].name}: not found (HTTP 404)" in failed.stderr
    assert "SECRET" not in failed.stdout + failed.stderr


# --------------------------------------------------------------------------- 6: Ctrl-C


def envpack_cli(*args: object, env: dict[str, str], **kw: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "envpack", *map(str, args)], env=env, **kw
    )


def cli_env(cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENVPACK_")}
    return {**env, "ENVPACK_CACHE_DIR": str(cache), "NO_PROXY": "127.0.0.1", **extra}


@pytest.mark.parametrize(("jobs", "stall"), [(4, "body"), (4, "headers"), (2, "body"), (1, "body")])
def test_ctrl_c_against_a_stalled_server_exits_130_and_leaves_no_part(
    jobs: int, stall: str, pkgs: list[Path], hostile: HostileServer, tmp_path: Path
) -> None:
    for p in pkgs:
        if stall == "body":
            hostile.bad.stall_after[p.name] = 50_000
        else:
            hostile.bad.stall_headers.add(p.name)
    team = explicit_file(tmp_path / "team.txt", hostile.url, pkgs)
    exe = tmp_path / "mm.exe"
    exe.write_bytes(b"MZ stand-in")
    cache, out = tmp_path / "cache", tmp_path / "dist"
    proc = envpack_cli(
        "build", team, "--micromamba-exe", exe, "-o", out, "--no-sfx", "-j", jobs,
        env=cli_env(cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        hostile.wait_stalled(min(jobs, len(pkgs)))
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=STOP_LIMIT)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    print(f"\nSIGINT to exit (-j {jobs}, stalled {stall}): {took:.2f} s")
    assert proc.returncode == 130, stderr.decode()
    assert stderr.decode().splitlines()[-1] == "envpack: interrupted"
    assert stdout == b""
    assert leftovers(cache, out) == []
    assert not list(cache.rglob("*.conda"))


def test_stop_ends_backoff_waits(pkgs: list[Path], tmp_path: Path) -> None:
    # Answered 503 every time, the download would wait 30 s, then 60 s... unless stopped.
    f = Fetcher(FetchOptions(cache_dir=tmp_path / "cache", backoff=30.0, retries=3))
    failures: list[BaseException] = []
    with ChannelServer(tmp_path / "srv") as server:
        seen = threading.Event()
        server.faults.status[pkgs[0].name] = _Noting([503] * 10, seen)  # type: ignore[assignment]

        def run() -> None:
            try:
                f.fetch(record(pkgs[0], server.url))
            except BaseException as exc:
                failures.append(exc)

        worker = threading.Thread(target=run)
        worker.start()
        assert seen.wait(SUBPROCESS_LIMIT)
        f.stop()
        worker.join(SUBPROCESS_LIMIT)
    assert not worker.is_alive()
    assert [type(e).__name__ for e in failures] == ["Stopped"]
    assert leftovers(tmp_path / "cache") == []


class _Noting(list[int]):
    """A status queue that tells when the server has answered from it."""

    def __init__(self, items: list[int], seen: threading.Event) -> None:
        super().__init__(items)
        self._seen = seen

    def pop(self, index: int = -1) -> int:  # type: ignore[override]
        self._seen.set()
        return super().pop(index)


# --------------------------------------------------------------------------- 7: timeouts


def test_a_trickle_fails_instead_of_running_forever(
    small: Path, hostile: HostileServer, tmp_path: Path
) -> None:
    hostile.bad.trickle[small.name] = 0.05  # 20 bytes/s, every read well within the timeout
    with pytest.raises(DownloadError, match=r"small-1\.0-0\.conda: .*after 2 attempts.*too slow"):
        fetcher(tmp_path / "cache", timeout=2.0, retries=1).fetch(record(small, hostile.url))
    assert hostile.hits[small.name] == 2
    assert hostile.requests[1][1] is not None  # the retry resumed what had come
    assert leftovers(tmp_path / "cache") == []


def test_a_silent_server_costs_two_timeouts_not_six(
    small: Path, hostile: HostileServer, tmp_path: Path
) -> None:
    hostile.bad.stall_headers.add(small.name)
    with pytest.raises(DownloadError, match=r"after 2 attempts .*no data for 0\.5 s"):
        fetcher(tmp_path / "cache", timeout=0.5, retries=5).fetch(record(small, hostile.url))
    assert hostile.hits[small.name] == 2


@pytest.mark.parametrize("how", ["option", "environment"])
def test_timeout_from_the_command_line(
    how: str, small: Path, hostile: HostileServer, tmp_path: Path, cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    hostile.bad.stall_headers.add(small.name)
    team = explicit_file(tmp_path / "team.txt", hostile.url, [small])
    exe = tmp_path / "mm.exe"
    exe.write_bytes(b"MZ stand-in")
    args = ["build", team, "--micromamba-exe", exe, "-o", tmp_path / "dist", "--no-sfx"]
    if how == "option":
        args += ["--timeout", "0.5"]
    else:
        monkeypatch.setenv("ENVPACK_TIMEOUT", "0.5")
    result = run_cli(*args)
    assert result.exit_code == 5, result.output
    assert "no data for 0.5 s" in result.stderr


def test_timeout_is_documented() -> None:
    text = " ".join(run_cli("build", "--help").stdout.split())
    assert "--timeout SECONDS" in text and "ENVPACK_TIMEOUT" in text and "1 KiB/s" in text


# --------------------------------------------------------------------------- 8: part files


def test_a_killed_runs_part_is_resumed_with_range(
    pkgs: list[Path], hostile: HostileServer, tmp_path: Path
) -> None:
    rec = record(pkgs[0], hostile.url)
    data = pkgs[0].read_bytes()
    folder = tmp_path / "cache" / "pkgs" / rec.sha256
    folder.mkdir(parents=True)
    (folder / f"{rec.fn}.part").write_bytes(data[:70_000])  # as a kill -9 leaves it
    path = fetcher(tmp_path / "cache").fetch(rec)
    assert path.read_bytes() == data
    assert hostile.requests == [(rec.fn, "bytes=70000-")]
    assert leftovers(tmp_path / "cache") == []


def test_two_builds_sharing_a_cache_download_once(
    pkgs: list[Path], hostile: HostileServer, tmp_path: Path
) -> None:
    rec = record(pkgs[0], hostile.url)
    hostile.bad.stall_after[rec.fn] = 10_000
    results: dict[str, Path | BaseException] = {}

    def build(who: str) -> None:
        try:
            results[who] = fetcher(tmp_path / "cache").fetch(rec)
        except BaseException as exc:
            results[who] = exc

    first = threading.Thread(target=build, args=("first",))
    first.start()
    hostile.wait_stalled(1)  # the first build holds the part file now
    second = threading.Thread(target=build, args=("second",))
    second.start()
    second.join(1.0)  # given time to (wrongly) start a download of its own
    hostile.release.set()
    first.join(SUBPROCESS_LIMIT)
    second.join(SUBPROCESS_LIMIT)
    assert results["first"] == results["second"]
    assert Path(str(results["first"])).read_bytes() == pkgs[0].read_bytes()
    assert hostile.hits[rec.fn] == 1
    assert leftovers(tmp_path / "cache") == []


# --------------------------------------------------------------------------- 10: sizes


@pytest.mark.parametrize("announced", [True, False])
def test_a_body_longer_than_the_size_fails_at_once(
    announced: bool, pkgs: list[Path], hostile: HostileServer, tmp_path: Path
) -> None:
    rec = record(pkgs[0], hostile.url)
    hostile.bad.pad[rec.fn] = 40 << 20
    if not announced:
        hostile.bad.hide_length.add(rec.fn)
    with pytest.raises(ChecksumError, match=rf"{rec.fn}: .* than the {rec.size} bytes"):
        fetcher(tmp_path / "cache").fetch(rec)
    assert hostile.hits[rec.fn] == 1
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]  # not even 0 bytes


def test_a_sizeless_record_is_capped(
    pkgs: list[Path], hostile: HostileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVPACK_MAX_PACKAGE_SIZE", "300000")
    rec = record(pkgs[0], hostile.url, size=0, sha256="")
    hostile.bad.pad[rec.fn] = 40 << 20
    hostile.bad.hide_length.add(rec.fn)
    with pytest.raises(DownloadError, match=r"than 300000 bytes.*ENVPACK_MAX_PACKAGE_SIZE"):
        fetcher(tmp_path / "cache").fetch(rec)
    assert hostile.hits[rec.fn] == 1
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_a_sizeless_hash_failure_is_not_downloaded_twice(
    pkgs: list[Path], hostile: HostileServer, tmp_path: Path
) -> None:
    rec = record(pkgs[0], hostile.url, size=0, sha256="")
    hostile.bad.pad[rec.fn] = 1000
    with pytest.raises(ChecksumError, match=rf"{rec.fn} .*expected md5 {rec.md5}"):
        fetcher(tmp_path / "cache").fetch(rec)
    assert hostile.hits[rec.fn] == 1


# --------------------------------------------------------------------------- progress (issue 19)


def run_with_stderr(tty: bool, args: list[object], cache: Path, out: Path) -> tuple[int, str]:
    """Run envpack with stdout redirected to ``out`` and stderr a terminal (a pty) or a pipe;
    return the exit status and everything written to stderr."""
    import pty

    master, slave = pty.openpty() if tty else os.pipe()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the pty's other end is closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    with out.open("wb") as stdout:
        proc = envpack_cli(*args, env=cli_env(cache, COLUMNS="100"), stdout=stdout, stderr=slave)
        os.close(slave)
        try:
            code = proc.wait(SUBPROCESS_LIMIT)
        finally:
            proc.kill()
    reader.join(SUBPROCESS_LIMIT)
    os.close(master)
    return code, b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize("tty", [True, False])
def test_redirected_stdout_holds_only_the_result(
    tty: bool, pkgs: list[Path], hostile: HostileServer, tmp_path: Path
) -> None:
    team = explicit_file(tmp_path / "team.txt", hostile.url, pkgs)
    exe = tmp_path / "mm.exe"
    exe.write_bytes(b"MZ stand-in")
    out = tmp_path / "dist"
    args: list[object] = ["build", team, "--micromamba-exe", exe, "-o", out, "--no-sfx"]
    code, stderr = run_with_stderr(tty, args, tmp_path / "cache", tmp_path / "out.txt")
    assert code == 0, stderr
    assert (tmp_path / "out.txt").read_text() == f"{out / 'team-win-64.zip'}\n"
    assert "win-64: fetching 3 packages" in stderr


def test_a_failed_download_gives_the_cursor_back(
    pkgs: list[Path], hostile: HostileServer, tmp_path: Path
) -> None:
    team = explicit_file(tmp_path / "team.txt", hostile.url, pkgs)
    (tmp_path / "srv" / "win-64" / pkgs[2].name).unlink()
    exe = tmp_path / "mm.exe"
    exe.write_bytes(b"MZ stand-in")
    args: list[object] = ["build", team, "--micromamba-exe", exe, "-o", tmp_path / "dist"]
    code, stderr = run_with_stderr(True, args, tmp_path / "cache", tmp_path / "out.txt")
    assert code == 5, stderr
    hide, show = "\x1b[?25l", "\x1b[?25h"
    assert hide in stderr  # the bar was drawn on the terminal...
    assert stderr.rindex(show) > stderr.rindex(hide)  # ...and the cursor shown again
    assert f"envpack: error: {pkgs[2].name}: not found (HTTP 404)" in stderr
    assert (tmp_path / "out.txt").read_text() == ""


# --------------------------------------------------------------------------- 5: every lock format


def token_lock(kind: str, tmp_path: Path, shared: Path) -> Path:
    """A lock of ``kind`` whose package URLs carry /t/tk-SECRET/ (and, for @EXPLICIT, a
    password on a second channel)."""
    from envpack.lock.lockfile import Lock, PlatformLock, write_lock

    pkg = "https://example.invalid/chan/win-64/zz-1.0-0.conda"
    path = tmp_path / f"{kind}.lock"
    if kind == "explicit":
        path.write_text(
            "@EXPLICIT\n"
            "https://example.invalid/t/tk-SECRET/chan/win-64/zz-1.0-0.conda#" + "a" * 32 + "\n"
            "https://u:SECRET@mirror.invalid/other/noarch/yy-1.0-0.tar.bz2#" + "b" * 32 + "\n"
        )
    elif kind == "conda-lock":
        entry = {
            "name": "zz", "version": "1.0", "manager": "conda", "platform": "win-64",
            "dependencies": {}, "hash": {"md5": "a" * 32},
            "url": "https://example.invalid/t/tk-SECRET/chan/win-64/zz-1.0-0.conda",
        }  # fmt: skip
        meta = {"channels": [{"url": "https://example.invalid/t/tk-SECRET/chan"}]}
        data = {"version": 1, "metadata": {**meta, "platforms": ["win-64"]}, "package": [entry]}
        path.write_text(yaml.safe_dump(data))
    elif kind == "envpack":
        rec = LockedPackage(
            "zz", "1.0", "0", 0, "win-64", "zz-1.0-0.conda", pkg,
            "https://example.invalid/chan", "c" * 64, "a" * 32, 10,
        )  # fmt: skip
        write_lock(Lock(name="x", platforms={"win-64": PlatformLock("win-64", (rec,))}), path)
        text = path.read_text().replace(
            "example.invalid/chan/", "example.invalid/t/tk-SECRET/chan/"
        )
        assert "tk-SECRET" in text
        path.write_text(text)
    else:
        original = (shared / "locks" / "pixi-simple-python.lock").read_text()
        text = original.replace("conda.anaconda.org/conda-forge/", "h.invalid/t/tk-SECRET/cf/")
        assert text != original
        path.write_text(text)
    return path


@pytest.mark.parametrize("kind", ["explicit", "conda-lock", "envpack", "pixi"])
def test_secret_channels_of_every_lock_format(kind: str, tmp_path: Path) -> None:
    from envpack.channels import credentialed_url
    from envpack.lock.importers import load_lock_file, secret_channels

    from channel_factory import SHARED_DATA

    if kind == "pixi" and not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA} (only in the project's CI)")
    path = token_lock(kind, tmp_path, SHARED_DATA)
    lock = load_lock_file(path, "win-64")
    channels = secret_channels(path)
    assert channels and all("SECRET" not in c.given and "SECRET" not in repr(c) for c in channels)
    records = lock.platforms["win-64"].packages
    assert records
    for r in records:
        assert "SECRET" not in r.url + r.channel  # the lock keeps no secret...
        rebuilt = credentialed_url(r.url, channels)  # ...the download gets it back
        assert "/t/tk-SECRET/" in rebuilt or "u:SECRET@" in rebuilt, rebuilt
    if kind == "explicit":
        assert sorted(credentialed_url(r.url, channels) for r in records) == [
            "https://example.invalid/t/tk-SECRET/chan/win-64/zz-1.0-0.conda",
            "https://u:SECRET@mirror.invalid/other/noarch/yy-1.0-0.tar.bz2",
        ]


def test_disk_full_deletes_the_part(
    pkgs: list[Path], hostile: HostileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import envpack.fetch.partfile

    calls = []
    real = envpack.fetch.partfile.Digest.update

    def full_after_one_chunk(self: object, chunk: bytes) -> None:
        calls.append(len(chunk))
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, chunk)  # type: ignore[arg-type]

    monkeypatch.setattr(envpack.fetch.partfile.Digest, "update", full_after_one_chunk)
    rec = record(pkgs[0], hostile.url)
    with pytest.raises(Exception, match="disk full while writing"):
        fetcher(tmp_path / "cache").fetch(rec)
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_every_record_of_one_file_is_checked(
    pkgs: list[Path], hostile: HostileServer, tmp_path: Path
) -> None:
    # An imported lock's record and micromamba's own solve of it share one cache path.
    good = record(pkgs[0], hostile.url)
    bad = record(pkgs[0], hostile.url, md5="e" * 32, depends=("x",))
    # Which of the two the download is checked against first depends on how the records sort
    # (their md5s: the package's bytes differ run to run); either way the bad one is named.
    with pytest.raises(ChecksumError, match=r"p0-1\.0-0\.conda\b.*\bmd5 e{32}"):
        fetcher(tmp_path / "cache").fetch_all([good, bad])
