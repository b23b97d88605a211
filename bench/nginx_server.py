"""Debian's nginx serving a folder on 127.0.0.1, started and stopped by the benchmark.

nginx runs in the foreground (``daemon off``) as a child process with a rendered copy of
``nginx.conf.template``; its pid file, logs and temp folders live in a run folder, so no root is
needed. When the benchmark runs as root, workers are told to stay root: otherwise they would drop
to ``nobody``, who cannot enter a private temp folder, and answer 403 to everything.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

TEMPLATE = Path(__file__).with_name("nginx.conf.template")


class NginxError(RuntimeError):
    pass


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) a live process has used, from /proc/PID/stat;
    0 if it is gone. Resolution: one clock tick (10 ms on Linux)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return 0.0
    # The command name (field 2) is in parentheses and may hold spaces: count from the last ")".
    # Then state is field 3, so utime and stime (fields 14 and 15) are the 12th and 13th after.
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pids(pid: int) -> list[int]:
    """The live children of ``pid``: from /proc/PID/task/*/children where the kernel has it
    (CONFIG_PROC_CHILDREN), else by scanning /proc for processes whose parent is ``pid``."""
    tasks = Path(f"/proc/{pid}/task")
    try:
        listed = [t / "children" for t in tasks.iterdir()]
        if listed and all(f.is_file() for f in listed):
            return sorted({int(c) for f in listed for c in f.read_text().split()})
    except OSError:
        pass
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue  # gone meanwhile
        if int(text[text.rindex(")") + 2 :].split()[1]) == pid:  # field 4: the parent
            found.append(int(entry.name))
    return sorted(found)


def find_nginx() -> str | None:
    # Debian installs it in /usr/sbin, which is not on an ordinary user's PATH
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def _die_with_parent() -> None:
    """In the child before exec: end nginx if the benchmark is killed without cleaning up."""
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def render(root: Path, run_dir: Path, port: int, workers: int) -> str:
    user = ""
    if os.geteuid() == 0:
        user = f"user {pwd.getpwuid(0).pw_name};"
    text = TEMPLATE.read_text(encoding="utf-8")
    for key, value in {
        "USER": user,
        "WORKERS": str(workers),
        "RUN": str(run_dir),
        "PORT": str(port),
        "ROOT": str(root),
    }.items():
        text = text.replace(f"@@{key}@@", value)
    return text


class NginxServer:
    """``with NginxServer(folder, run_dir) as srv: srv.url`` serves ``folder`` over HTTP."""

    def __init__(self, root: Path, run_dir: Path, workers: int = 2) -> None:
        self.root = root.resolve()
        self.run_dir = run_dir.resolve()
        self.workers = workers
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, probe: str = "noarch/repodata.json") -> None:
        exe = find_nginx()
        if exe is None:
            raise NginxError("nginx not found; install it with: apt-get install nginx-light")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # A port can be taken between the probe and nginx's bind: try a few.
        for _ in range(5):
            self.port = free_port()
            conf = self.run_dir / "nginx.conf"
            conf.write_text(render(self.root, self.run_dir, self.port, self.workers), "utf-8")
            argv = [exe, "-p", str(self.run_dir), "-e", str(self.run_dir / "error.log")]
            self._proc = subprocess.Popen(
                [*argv, "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
            if self._wait_ready(probe):
                return
            self.stop()
        log = self.run_dir / "error.log"
        tail = log.read_text("utf-8", "replace")[-600:] if log.is_file() else ""
        raise NginxError(f"nginx did not start on 127.0.0.1; its error log ends with: {tail!r}")

    def cpu_seconds(self) -> float:
        """CPU seconds nginx (master and workers) has used so far; the difference of two
        readings is its CPU between them. sendfile's copies count as the workers' system time."""
        if self._proc is None:
            return 0.0
        master = self._proc.pid
        return process_cpu(master) + sum(process_cpu(w) for w in child_pids(master))

    def _wait_ready(self, probe: str) -> bool:
        assert self._proc is not None
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        for _ in range(100):
            if self._proc.poll() is not None:
                return False
            try:
                with opener.open(f"{self.url}/{probe}", timeout=2) as resp:
                    if resp.status == 200:
                        return True
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGQUIT)  # graceful: the master waits for its workers
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def __enter__(self) -> NginxServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
