"""The benchmark's report: the machine and tools it ran on, and the markdown table."""

from __future__ import annotations

import datetime
import os
import platform
import re
import signal
import subprocess
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from bench_common import Report, Row
from bench_reflink import find_mkfs_xfs
from nginx_server import find_nginx

ROOT = Path(__file__).resolve().parents[1]
STATS = "times are medians (min–max), ratios the median of back-to-back pairs"


def _first_line(argv: list[str], pattern: str) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return "absent"
    m = re.search(pattern, proc.stdout + proc.stderr)
    return m.group(1) if m else "unknown"


def machine() -> dict[str, str]:
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    with open("/proc/meminfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
                break
    import envpack

    git = _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], r"(\w+)")
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "builder"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": ram,
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "envpack": f"{envpack.__version__} (git {git}{', builder/ modified' if dirty else ''})",
        "tools": ", ".join(
            [
                "nginx " + _first_line([find_nginx() or "nginx", "-v"], r"nginx/(\S+)"),
                "curl " + _first_line(["curl", "--version"], r"curl (\S+)"),
                "zip " + _first_line(["zip", "-v"], r"This is Zip (\S+)"),
                "bsdtar " + _first_line(["bsdtar", "--version"], r"bsdtar (\S+)"),
                "7zz " + _first_line(["7zz"], r"7-Zip \(z\) (\S+)"),
                "mkfs.xfs " + _first_line([find_mkfs_xfs() or "mkfs.xfs", "-V"], r"version (\S+)"),
            ]
        ),
    }


def signal_names(signums: Sequence[int]) -> str:
    if not signums:
        return ""
    counts = Counter(signal.Signals(n).name for n in signums)
    return " (" + ", ".join(f"{name} x{n}" for name, n in sorted(counts.items())) + ")"


def table(rows: Sequence[Row]) -> str:
    head = ["measure", "envpack", "reference", "ratio", "goal", "met"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.measure, r.envpack, r.reference, r.ratio, r.goal, r.met]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def markdown(
    report: Report, command: str, when: datetime.datetime, *, scale_mode: bool = False
) -> str:
    c = report.context
    notes = "\n".join(f"- {r.measure}: {r.note}" for r in report.rows if r.note)
    if scale_mode:
        title = "envpack benchmark results: 10 GB scale"
        other = (
            "The scale mode runs on its own (`python bench/run.py --scale10g`: about 31 GB of "
            "free disk and ten minutes); the default run's table is in RESULTS.md."
        )
    else:
        title = "envpack benchmark results"
        other = (
            "The 10 GB scale rows (one package over 4 GiB) are a separate run, for disk and "
            "time: `python bench/run.py --scale10g`, table in RESULTS-scale.md."
        )
    return f"""# {title}

Written by `bench/run.py`; see bench/README.md for what each row compares and how. {other}

- Command: `{command}`
- Date: {when.strftime("%Y-%m-%d %H:%M UTC")}
- Machine: {c["cpu"]}, {c["cores"]} cores, {c["ram"]} RAM, {c["kernel"]}, {c["python"]}
- Tools: {c["tools"]}
- envpack: {c["envpack"]}
- Channel: {c["scale"]}, served by nginx on 127.0.0.1
- Repetitions: {c["reps"]}; {c.get("stats", STATS)}
- Crashes: {c["deaths"]}{signal_names(report.crashes)}

{table(report.rows)}

Notes:

{notes}
"""
