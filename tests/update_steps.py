"""update.bat's micromamba steps, read from the rendered file and run natively (real micromamba).

As wine.setup_step does for setup.bat: the work folder, the packages copied into it, the variables
set (cleared ones removed), micromamba's current folder and each command line come from the
rendered update.bat, with %EP_WORK%, %EP_PREFIX%, %EP_BUNDLE% and %EP_RM% replaced by this
machine's values. The per-package ``if exist`` lines that decide what to remove, and that check
the result and the drift, are evaluated against the real prefix the same way.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from wine import cmd_words

_VAR = re.compile(r'\s*set "([A-Za-z_][A-Za-z0-9_]*)=(.*)"\s*')
_COPY = re.compile(r'\s*copy /b /y "(%EP_BUNDLE%[^"]+)" "(%EP_WORK%\\pkgs\\)"')
_MM = re.compile(r'\s*"%EP_WORK%\\bin\\micromamba\.exe"\s+(remove|install)\s')
_RM = re.compile(
    r'if exist "%EP_PREFIX%\\conda-meta\\(.+)\.json" set "EP_RM=%EP_RM% ([A-Za-z0-9_.+-]+)"'
)
_KNOWN = re.compile(r'set "EP_K_(.+)=1"')
_MISSING = re.compile(r'if not exist "%EP_PREFIX%\\conda-meta\\(.+)\.json" >>"%EP_OUT%" echo')
_NOT_INSTALLED = re.compile(
    r'if not exist "%EP_PREFIX%\\conda-meta\\(.+)\.json" set "EP_NOTINSTALLED='
)
_LEFTOVER = re.compile(r'if exist "%EP_PREFIX%\\conda-meta\\(.+)\.json" set "EP_LEFTOVER=')


def script_lines(bundle: Path) -> list[str]:
    return (bundle / "update.bat").read_text("utf-8").replace("\r\n", "\n").split("\n")


def installed(prefix: Path) -> set[str]:
    return {p.stem for p in (prefix / "conda-meta").glob("*.json")}


def drift(bundle: Path, prefix: Path) -> tuple[set[str], set[str]]:
    """(records the base lacks, base records missing), as update.bat's lines decide them."""
    lines = script_lines(bundle)
    known = {m.group(1) for line in lines if (m := _KNOWN.fullmatch(line.strip()))}
    have = installed(prefix)
    missing = {m.group(1) for line in lines if (m := _MISSING.match(line.strip()))}
    return have - known, missing - have


def result_problems(bundle: Path, prefix: Path) -> tuple[set[str], set[str]]:
    """(NEW records not installed, replaced records still installed) by update.bat's checks."""
    lines = script_lines(bundle)
    have = installed(prefix)
    wanted = {m.group(1) for line in lines if (m := _NOT_INSTALLED.match(line.strip()))}
    gone = {m.group(1) for line in lines if (m := _LEFTOVER.match(line.strip()))}
    return wanted - have, gone & have


@dataclass
class Step:
    argv: list[str]
    env: dict[str, str]
    cwd: Path


def apply_update(
    bundle: Path,
    prefix: Path,
    micromamba: Path,
    user_env: Mapping[str, str],
    timeout: int = 300,
) -> list[subprocess.CompletedProcess[str]]:
    """Run update.bat's micromamba steps natively, in order, as update.bat runs them."""
    lines = script_lines(bundle)
    work = Path(f"{prefix}.envpack-update")
    if work.exists():
        shutil.rmtree(work)
    for sub in ("pkgs", "root", "bin", "home", "tmp"):
        (work / sub).mkdir(parents=True)
    names = {"%EP_WORK%": str(work), "%EP_PREFIX%": str(prefix), "%EP_BUNDLE%": f"{bundle}\\"}

    def linux(value: str) -> str:
        for name, path in names.items():
            value = value.replace(name, path)
        assert "%" not in value, f"a variable the native run cannot fill: {value}"
        return value.replace("\\", "/")

    env = dict(user_env)
    results = []
    for line in lines:
        if found := _COPY.match(line):
            shutil.copy(linux(found.group(1)), linux(found.group(2)))
        elif line.strip().startswith("call :clear_prefixed"):
            env = {k: v for k, v in env.items() if not k.upper().startswith(("CONDA_", "MAMBA_"))}
        elif (found := _VAR.fullmatch(line)) and not found.group(1).startswith("EP_"):
            key, value = found.groups()
            env = {k: v for k, v in env.items() if k.upper() != key.upper()}
            if value:
                env[key] = linux(value)
        elif found := _MM.match(line):
            words = cmd_words(line)
            if found.group(1) == "remove":
                have = installed(prefix)
                remove = [
                    m.group(2)
                    for rm in lines
                    if (m := _RM.match(rm.strip())) and m.group(1) in have
                ]
                if not remove:
                    continue  # update.bat skips the step: "if not defined EP_RM"
                assert words[-1] == "%EP_RM%", words
                words = words[:-1] + remove
            argv = [linux(w) for w in words]
            argv[0] = str(micromamba)
            run_env = dict(env)
            for key in [k for k in run_env if "PROXY" in k.upper()]:
                run_env[key.lower()] = run_env[key]
            proc = subprocess.run(
                argv, env=run_env, cwd=work, capture_output=True, text=True, timeout=timeout
            )
            results.append(proc)
            if proc.returncode != 0:
                break
    return results
