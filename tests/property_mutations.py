"""Hypothesis strategies shared by the property tests: hostile strings and damaged bytes.

Every property test runs deterministically (``derandomize``) with no example database, so CI sees
the same examples on every run and nothing is written beside the tests; each example has a
deadline, failures are not shrunk, and the number of examples is kept small enough for the whole
property suite to run in well under a minute on two cores.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

T = TypeVar("T")

# Generous: a 2-core CI box running other work may be slow; a hang is still caught.
DEADLINE_MS = 5000
PEAK_LIMIT = 200 << 20


def bounded(max_examples: int) -> Callable[[T], T]:
    """The settings of every property test: deterministic, time-bounded, few examples."""
    return settings(  # type: ignore[no-any-return]
        max_examples=max_examples,
        deadline=DEADLINE_MS,
        derandomize=True,
        database=None,
        # No shrinking: it can take minutes on a slow failure (a RecursionError per example), and
        # the smallest examples found so far are kept as named tests beside each property.
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# Pieces an attacker or a broken tool puts where a file name, URL or hash belongs.
HOSTILE = (
    "../",
    "..\\",
    "..",
    "/",
    "\\",
    "/etc/passwd",
    "/tmp/victim.txt",
    "C:\\",
    "C:",
    "c:/Windows/x",
    "\\\\server\\share\\x",
    "CON",
    "nul.conda",
    "COM1.tar.bz2",
    "x.conda:stream",
    "\x00",
    "\n",
    "\r\n",
    "\t",
    "\x1b[2J",
    "\x7f",
    " ",
    ".",
    "%APPDATA%",
    "%2e%2e%2f",
    "..%2F",
    "%5c",
    "?x=1#y",
    "!x!",
    "\u202e",
    "é",
    "\ufeff",
    "x" * 300,
    "file:///etc/passwd",
    "https://user:pw@h/t/tok/c/win-64/a-1-0.conda",
)

hostile_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.lists(
        st.sampled_from((*HOSTILE, "a", "b-1.0-0", ".conda", ".tar.bz2", "win-64")), max_size=6
    ).map("".join),
    st.text(max_size=40),
)


@st.composite
def mutated_bytes(draw: st.DrawFn, base: bytes) -> bytes:
    """``base`` with a few bit flips, cuts, insertions or overwrites."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(("flip", "truncate", "insert", "overwrite", "delete")))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[pos : pos + len(chunk)] = chunk
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
    return bytes(data)


def same_length(original: str, hostile: str, where: int) -> str:
    """``hostile`` written into ``original`` at ``where``, cut or padded to the same length."""
    text = (original[:where] + hostile + original[where:])[: len(original)]
    return text.ljust(len(original), "x")


def plain_file_name(name: object) -> bool:
    """A package file name that cannot leave the folder it is joined to, on Linux or Windows."""
    return (
        isinstance(name, str)
        and bool(name)
        and name not in (".", "..")
        and not re.search(r"[/\\:]", name)
        and not any(ord(c) < 32 or c == "\x7f" for c in name)
    )


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root`` with its size and mtime: writes show up here."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            full = Path(folder, name)
            st_ = full.lstat()
            out[str(full.relative_to(root))] = (st_.st_size, st_.st_mtime_ns)
    return out


@contextmanager
def peak_memory(limit: int = PEAK_LIMIT, precise: bool = True) -> Iterator[None]:
    """Fail when the block's memory peaks ``limit`` bytes above what it started with.

    ``precise`` traces Python's allocations (tracemalloc: exact, but slow on deep recursion and
    parsing); otherwise the process's peak RSS may rise by at most ``limit`` (free, but blind
    below an earlier, higher peak of the test process).
    """
    if not precise:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        yield
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
        assert grown < limit, f"peak RSS grew by {grown:,} bytes"
        return
    tracemalloc.start()
    try:
        yield
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < limit, f"peak Python memory {peak:,} bytes"


@contextmanager
def hard_timeout(seconds: float = 60) -> Iterator[None]:
    """Turn a hang (a reader blocked on a FIFO, a loop that never ends) into a failure: the
    hypothesis deadline only judges an example once it has returned."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
