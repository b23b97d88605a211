"""What every benchmark of bench/ shares: running a command under the clock (sync before, a
timeout, its own session, its CPU time, peak RSS from /usr/bin/time), pairs run back to back, and
medians."""

from __future__ import annotations

import os
import re
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from make_channel import Scale

TIME = "/usr/bin/time"


class BenchError(Exception):
    pass


class Crashed(BenchError):
    """The process died of a signal (envpack: py-rattler at interpreter exit, see README)."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


@dataclass(frozen=True)
class Config:
    scale: Scale
    work: Path
    reps: int
    startup_reps: int
    timeout: float


@dataclass(frozen=True)
class Sample:
    seconds: float
    rss_kb: int | None
    stdout: str = ""
    # CPU seconds of the command and every descendant it waited for (getrusage of the children):
    # immune to the wall clock's noise
    user_cpu: float | None = None
    sys_cpu: float | None = None
    server_cpu: float | None = None  # nginx's CPU seconds (user + system) during the run

    @property
    def cpu(self) -> float | None:
        """user + system CPU seconds, when known."""
        if self.user_cpu is None or self.sys_cpu is None:
            return None
        return self.user_cpu + self.sys_cpu


@dataclass
class Row:
    key: str
    measure: str
    envpack: str
    reference: str
    ratio: str
    goal: str
    met: str  # "yes", "NO" or "n/a"
    note: str = ""


@dataclass
class Report:
    rows: list[Row]
    context: dict[str, str] = field(default_factory=dict)
    crashes: list[int] = field(default_factory=list)


# --------------------------------------------------------------------------- running things


def clean_env(**extra: str) -> dict[str, str]:
    # PYTHONDONTWRITEBYTECODE goes too: envpack is timed as installed, from the bytecode
    # compile_envpack made (see there), not compiling its sources again on every run.
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in {"http_proxy", "https_proxy", "all_proxy"}
        and k not in {"SOURCE_DATE_EPOCH", "ENVPACK_CACHE_DIR", "PYTHONDONTWRITEBYTECODE"}
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


def compile_envpack() -> str:
    """Compile envpack's modules to bytecode, as installing its wheel does, before any timing.

    An editable install (this repository's) has no ``.pyc`` until a module is first imported
    with bytecode writing on, and a machine with PYTHONDONTWRITEBYTECODE set never gets one: every
    run would then compile about 14,000 lines again, ~45 ms that no installed envpack pays.
    Returns what was done, for the results' context.
    """
    import envpack

    package = Path(envpack.__file__).parent
    env = clean_env()
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(package)],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return "envpack's bytecode compiled before timing (as an installed wheel has it)"


def run_timed(
    argv: Sequence[str],
    *,
    env: dict[str, str],
    timeout: float,
    cwd: Path | None = None,
    stdin: bytes | None = None,
    rss_file: Path | None = None,
    server_cpu: Callable[[], float] | None = None,
) -> Sample:
    """Run ``argv`` to completion and time it, with its user and system CPU; with ``rss_file``,
    also take its peak RSS; with ``server_cpu`` (a reading of the server's CPU seconds so far),
    the server's CPU during the run."""
    wrapped = list(argv)
    if rss_file is not None and Path(TIME).is_file():
        rss_file.unlink(missing_ok=True)
        wrapped = [TIME, "-v", "-o", str(rss_file), *wrapped]
    # Earlier runs' dirty pages must not be flushed on this run's clock.
    os.sync()
    # RUSAGE_CHILDREN grows when a child is reaped, by its CPU and that of every descendant it
    # reaped: so `sh -c 'curl; cat'` counts curl and cat, and `time -v envpack` counts envpack
    # (plus time's own, a millisecond). Nothing else is reaped meanwhile: the benchmark runs one
    # command at a time, and nginx, its other child, lives until the end.
    server_before = server_cpu() if server_cpu is not None else 0.0
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # A session of its own, so a timeout can end the whole tree (time -> envpack, nginx aside).
    proc = subprocess.Popen(
        wrapped,
        env=env,
        cwd=cwd,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise BenchError(f"{shlex.join(argv[:3])}... took more than {timeout:.0f} s") from None
    elapsed = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    server = server_cpu() - server_before if server_cpu is not None else None
    if proc.returncode < 0:
        what = f"{shlex.join(list(argv)[:3])}... died of signal {-proc.returncode}"
        raise Crashed(what, -proc.returncode)
    if proc.returncode != 0:
        tail = err.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise BenchError(
            f"{shlex.join(list(argv)[:4])}... failed (exit {proc.returncode}): {' | '.join(tail)}"
        )
    rss = None
    if rss_file is not None and rss_file.is_file():
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", rss_file.read_text())
        rss = int(m.group(1)) if m else None
    return Sample(
        elapsed,
        rss,
        out.decode("utf-8", "replace"),
        user_cpu=usage.ru_utime - usage_before.ru_utime,
        sys_cpu=usage.ru_stime - usage_before.ru_stime,
        server_cpu=server,
    )


@dataclass
class Deaths:
    """envpack runs, and those that died of a signal (each was run again, and is reported)."""

    runs: int = 0
    signals: list[int] = field(default_factory=list)


def run_retrying(argv: Sequence[str], deaths: Deaths, **kw: Any) -> Sample:
    for _ in range(4):
        deaths.runs += 1
        try:
            return run_timed(argv, **kw)
        except Crashed as exc:
            deaths.signals.append(exc.signum)
    deaths.runs += 1
    return run_timed(argv, **kw)


def envpack_argv() -> list[str]:
    """The console script beside this interpreter (not a pyenv shim), else ``-m envpack.cli``."""
    script = Path(sys.executable).with_name("envpack")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "envpack.cli"]


def paired(
    reps: int,
    variants: dict[str, Callable[[], Sample]],
    log: Callable[[str], None],
    label: str,
) -> dict[str, list[Sample]]:
    """Run every variant once per repetition, rotating the order so drift hits all alike."""
    names = list(variants)
    out: dict[str, list[Sample]] = {n: [] for n in names}
    for i in range(reps):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            out[name].append(variants[name]())
        summary = ", ".join(f"{n} {out[n][-1].seconds:.2f} s" for n in names)
        log(f"  {label} {i + 1}/{reps}: {summary}")
    return out


def rm(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- statistics


def med(samples: Sequence[Sample]) -> float:
    return statistics.median(s.seconds for s in samples)


def pair_ratio(a: Sequence[Sample], b: Sequence[Sample]) -> float:
    return statistics.median(x.seconds / y.seconds for x, y in zip(a, b, strict=True))


def secs(samples: Sequence[Sample]) -> str:
    values = [s.seconds for s in samples]
    text = f"{statistics.median(values):.2f} s"
    if len(values) > 1:
        text += f" ({min(values):.2f}–{max(values):.2f})"
    return text


def user_cpu(samples: Sequence[Sample]) -> float | None:
    values = [s.user_cpu for s in samples if s.user_cpu is not None]
    return statistics.median(values) if values else None


def rss_mb(samples: Sequence[Sample]) -> float | None:
    values = [s.rss_kb for s in samples if s.rss_kb is not None]
    return statistics.median(values) / 1024 if values else None


def verdict(ok: bool) -> str:
    return "yes" if ok else "NO"


# --------------------------------------------------------------------------- the benchmark


def write_recipe(path: Path, channel: str, specs: Sequence[str]) -> Path:
    lines = [f"name: {path.stem}", "channels:", f"  - {channel}", "dependencies:"]
    lines += [f"  - {s}" for s in specs]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def locked_records(lock_file: Path) -> list[tuple[str, str, int]]:
    """(url, fn, size) of every package the build will fetch."""
    from envpack.lock.lockfile import read_lock

    pl = read_lock(lock_file).for_platform("win-64")
    return sorted({(r.url, r.fn, r.size) for r in pl.all_records()})


def dir_bytes(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)
