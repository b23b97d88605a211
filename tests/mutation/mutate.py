"""Hand-written mutation check of the code that guards safety (see tests/README.md).

Each mutant is one small change to the product (a check dropped, a flag or variable left out, an
exit code changed). For each, a scratch git worktree of REF gets the change and a fast targeted
subset of the tests runs there with ``-x``: the mutant is *killed* when a test fails, *survives*
when all pass. The product checkout is never touched.

    python tests/mutation/mutate.py [--ref main] [--only ID ...] [--keep]

Needs wine and mingw for the setup.bat mutants and the real micromamba (../shared/tools or
ENVPACK_TEST_MICROMAMBA) for the real-binary ones. Not run in CI (about 20 minutes).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

STUB_TESTS = (
    "tests/test_setup_bat.py",
    "tests/test_real_vs_standin.py",
    "tests/test_micromamba_real.py",
)
NAME_TESTS = ("tests/test_mutants_member_names.py", "tests/test_verify_tamper.py")
# (test_fetch_hostile.py is left out: its Ctrl-C test has a 10 s limit that a loaded machine misses)
DOWNLOAD_TESTS = (
    "tests/test_download.py",
    "tests/test_resume_stale_part.py",
    "tests/test_mutants_size_checks.py",
)
VERIFY_TESTS = (
    "tests/test_verify_tamper.py",
    "tests/test_snapshot.py",
    "tests/test_mutants_size_checks.py",
)
RENDER_TESTS = ("tests/test_stubs_static.py", *STUB_TESTS)


@dataclass(frozen=True)
class Mutant:
    id: str
    path: str
    old: str  # must occur exactly once
    new: str
    tests: tuple[str, ...]
    what: str


MUTANTS = [
    # ---- stubs/setup.bat (CRLF text)
    Mutant(
        "bat-rc9",
        "stubs/setup.bat",
        'run setup.bat again.\r\nset "EP_RC=9"',
        'run setup.bat again.\r\nset "EP_RC=0"',
        STUB_TESTS,
        "exit 9 -> 0 when the old prefix cannot be deleted",
    ),
    Mutant(
        "bat-rc10",
        "stubs/setup.bat",
        'set "EP_RC=10"',
        'set "EP_RC=0"',
        STUB_TESTS,
        "exit 10 -> 0 when micromamba failed",
    ),
    # ---- bundle/mamba_cli.py
    Mutant(
        "cli-offline",
        "builder/envpack/bundle/mamba_cli.py",
        '("--yes", OFFLINE_FLAG, *ISOLATION_FLAGS)',
        '("--yes", *ISOLATION_FLAGS)',
        STUB_TESTS,
        "--offline dropped from setup.bat's create",
    ),
    Mutant(
        "cli-norc",
        "builder/envpack/bundle/mamba_cli.py",
        '("--no-rc", "--override-channels")',
        '("--override-channels",)',
        STUB_TESTS,
        "--no-rc dropped",
    ),
    Mutant(
        "cli-https-proxy",
        "builder/envpack/bundle/mamba_cli.py",
        '("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")',
        '("HTTP_PROXY", "ALL_PROXY")',
        STUB_TESTS,
        "HTTPS_PROXY not pointed at the dead proxy",
    ),
    Mutant(
        "cli-http-proxy",
        "builder/envpack/bundle/mamba_cli.py",
        '("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")',
        '("HTTPS_PROXY", "ALL_PROXY")',
        STUB_TESTS,
        "HTTP_PROXY not pointed at the dead proxy",
    ),
    Mutant(
        "cli-all-proxy",
        "builder/envpack/bundle/mamba_cli.py",
        '("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")',
        '("HTTP_PROXY", "HTTPS_PROXY")',
        STUB_TESTS,
        "ALL_PROXY not pointed at the dead proxy",
    ),
    Mutant(
        "cli-dead-proxy",
        "builder/envpack/bundle/mamba_cli.py",
        'DEAD_PROXY = "http://127.0.0.1:9"',
        'DEAD_PROXY = ""',
        STUB_TESTS,
        "proxies cleared instead of pointed at a closed port",
    ),
    Mutant(
        "cli-home",
        "builder/envpack/bundle/mamba_cli.py",
        'HOME_VARS: tuple[str, ...] = ("USERPROFILE", "HOME")',
        'HOME_VARS: tuple[str, ...] = ("HOME",)',
        STUB_TESTS,
        "USERPROFILE not moved to the work folder",
    ),
    Mutant(
        "cli-condarc",
        "builder/envpack/bundle/mamba_cli.py",
        '    "CONDARC",\n',
        "",
        STUB_TESTS,
        "CONDARC not cleared",
    ),
    Mutant(
        "cli-pythonpath",
        "builder/envpack/bundle/mamba_cli.py",
        '    "PYTHONPATH",\n',
        "",
        STUB_TESTS,
        "PYTHONPATH not cleared",
    ),
    # ---- bundle/stubs.py (the renderer)
    Mutant(
        "stubs-noproxy",
        "builder/envpack/bundle/stubs.py",
        "    lines.append(f'set \"{NO_PROXY_VAR}=\"')\n",
        "",
        STUB_TESTS,
        "NO_PROXY not emptied for micromamba",
    ),
    Mutant(
        "stubs-meta-first",
        "builder/envpack/bundle/stubs.py",
        "    lines = []\n    for rel in ctx.packages:\n        stem = _stem(_file_name(rel))",
        "    lines = []\n    for rel in ctx.packages[1:]:\n        stem = _stem(_file_name(rel))",
        STUB_TESTS,
        "the check after micromamba skips the first package",
    ),
    Mutant(
        "stubs-meta-last",
        "builder/envpack/bundle/stubs.py",
        "    lines = []\n    for rel in ctx.packages:\n        stem = _stem(_file_name(rel))",
        "    lines = []\n    for rel in ctx.packages[:-1]:\n        stem = _stem(_file_name(rel))",
        STUB_TESTS,
        "the check after micromamba skips the last package",
    ),
    Mutant(
        "stubs-files-first",
        "builder/envpack/bundle/stubs.py",
        "    for rel, size in ctx.files:\n",
        "    for rel, size in ctx.files[1:]:\n",
        STUB_TESTS,
        "the bundle check skips the first file",
    ),
    Mutant(
        "stubs-files-last",
        "builder/envpack/bundle/stubs.py",
        "    for rel, size in ctx.files:\n",
        "    for rel, size in ctx.files[:-1]:\n",
        STUB_TESTS,
        "the bundle check skips the last file",
    ),
    Mutant(
        "stubs-unsafe-quote",
        "builder/envpack/bundle/stubs.py",
        "_UNSAFE = re.compile(r'[\"%\\x00-\\x1f]')",
        "_UNSAFE = re.compile(r'[%\\x00-\\x1f]')",
        RENDER_TESTS,
        "a '\"' in a bundle file name is no longer refused",
    ),
    Mutant(
        "stubs-unsafe-caret",
        "builder/envpack/bundle/stubs.py",
        "_UNSAFE_CALLED = re.compile(r'[\"%^\\x00-\\x1f]')",
        "_UNSAFE_CALLED = re.compile(r'[\"%\\x00-\\x1f]')",
        RENDER_TESTS,
        "a '^' in a post-install script name is no longer refused",
    ),
    Mutant(
        "stubs-arch",
        "builder/envpack/bundle/stubs.py",
        '"win-64": ("AMD64", "ARM64"),',
        '"win-64": ("AMD64", "ARM64", "x86"),',
        STUB_TESTS,
        "32-bit Windows accepted for a win-64 bundle",
    ),
    Mutant(
        "stubs-need-mb",
        "builder/envpack/bundle/stubs.py",
        "(ctx.installed_size + packages)",
        "(packages)",
        STUB_TESTS,
        "the installed size left out of the disk-space check",
    ),
    Mutant(
        "stubs-max-path",
        "builder/envpack/bundle/stubs.py",
        "MAX_PATH_CHARS = 259",
        "MAX_PATH_CHARS = 299",
        STUB_TESTS,
        "the long-path limit raised to 299",
    ),
    # ---- names.py (member and file names: reader.admit_members asks it)
    Mutant(
        "names-dotdot",
        "builder/envpack/names.py",
        '    if part == "..":\n        return "\'..\' path component"\n',
        "",
        NAME_TESTS,
        "the '..' component check dropped",
    ),
    Mutant(
        "names-backslash",
        "builder/envpack/names.py",
        '    if "\\\\" in name:\n        return "backslash in name (a path separator on Windows)"\n',
        "",
        NAME_TESTS,
        "the backslash check dropped",
    ),
    Mutant(
        "names-absolute",
        "builder/envpack/names.py",
        '    if name.startswith("/"):\n        return "absolute path"\n',
        "",
        NAME_TESTS,
        "the absolute-path check dropped",
    ),
    Mutant(
        "names-colon",
        "builder/envpack/names.py",
        '    if ":" in part:\n',
        "    if False:\n",
        NAME_TESTS,
        "the ':' check dropped",
    ),
    Mutant(
        "names-device",
        "builder/envpack/names.py",
        "    if _RESERVED.match(part):\n",
        "    if False:\n",
        NAME_TESTS,
        "the device-name check dropped",
    ),
    Mutant(
        "reader-symlink",
        "builder/envpack/archive/base.py",
        "        if is_symlink:\n",
        "        if False:\n",
        NAME_TESTS,
        "symlink members admitted",
    ),
    Mutant(
        "reader-dup",
        "builder/envpack/archive/base.py",
        "        folded = name.casefold()\n        if folded in seen:\n",
        "        folded = name.casefold()\n        if False:\n",
        NAME_TESTS,
        "members equal up to case admitted",
    ),
    # ---- fetch/partfile.py: every hash checked
    Mutant(
        "dl-size",
        "builder/envpack/fetch/partfile.py",
        "    if record.size and hashes.size != record.size:",
        "    if False and record.size and hashes.size != record.size:",
        DOWNLOAD_TESTS,
        "size not compared",
    ),
    Mutant(
        "dl-sha256",
        "builder/envpack/fetch/partfile.py",
        "    if record.sha256 and hashes.sha256 != record.sha256:",
        "    if False and record.sha256 and hashes.sha256 != record.sha256:",
        DOWNLOAD_TESTS,
        "sha256 not compared",
    ),
    Mutant(
        "dl-md5",
        "builder/envpack/fetch/partfile.py",
        "    if record.md5 and hashes.md5 != record.md5:",
        "    if False and record.md5 and hashes.md5 != record.md5:",
        DOWNLOAD_TESTS,
        "md5 not compared",
    ),
    # ---- snapshot/verify.py
    Mutant(
        "verify-file-sha",
        "builder/envpack/snapshot/verify.py",
        "            if digest is not None and digest.sha256 != sha256:",
        "            if False:",
        VERIFY_TESTS,
        "verify: a file's sha256 not compared with the manifest",
    ),
    Mutant(
        "verify-file-size",
        "builder/envpack/snapshot/verify.py",
        "            if self.reader.size(name) != size:",
        "            if False:",
        VERIFY_TESTS,
        "verify: a file's size not compared with the manifest",
    ),
    Mutant(
        "verify-pkg-sha",
        "builder/envpack/snapshot/verify.py",
        "        if r.sha256 and digest.sha256 != r.sha256:",
        "        if False:",
        VERIFY_TESTS,
        "verify: a package's sha256 not compared with the lock",
    ),
]


def sh(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> int:
    return subprocess.run(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    ).returncode


def run_tests(wt: Path, tests: tuple[str, ...], select: str = "") -> tuple[int, float, str]:
    env = dict(os.environ, PYTHONPATH=str(wt / "builder"))
    shared = REPO.parent / "shared" / "tools" / "micromamba-linux" / "micromamba"
    if shared.is_file() and "ENVPACK_TEST_MICROMAMBA" not in env:
        env["ENVPACK_TEST_MICROMAMBA"] = str(shared)
    present = [t for t in tests if (wt / t).is_file()]
    start = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-x",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            *present,
            *(["-k", select] if select else []),
        ],
        cwd=wt,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )
    return proc.returncode, time.monotonic() - start, proc.stdout.decode(errors="replace")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ref", default="main")
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--keep", action="store_true", help="keep the scratch worktree")
    parser.add_argument("--tests", nargs="*", help="run these test files instead of each mutant's")
    parser.add_argument("-k", dest="select", default="", help="pytest -k for every run")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if not args.only or m.id in args.only]
    if args.tests:
        chosen = [replace(m, tests=tuple(args.tests)) for m in chosen]
    wt = Path(tempfile.mkdtemp(prefix="mutation-worktree-"))
    shutil.rmtree(wt)
    if sh(["git", "worktree", "add", "--detach", str(wt), args.ref], REPO) != 0:
        print(f"cannot make a worktree of {args.ref}")
        return 2
    try:
        print(f"mutating {args.ref} ({len(chosen)} mutants) in {wt}")
        broken: set[tuple[str, ...]] = set()
        for tests in sorted({m.tests for m in chosen}):
            rc, secs, out = run_tests(wt, tests, args.select)
            if rc != 0:
                print(f"baseline FAILS ({rc}) for {' '.join(tests)}; its mutants are not run:")
                print("\n".join(out.splitlines()[-15:]))
                broken.add(tests)
        chosen = [m for m in chosen if m.tests not in broken]
        killed, survived = [], []
        for m in chosen:
            target = wt / m.path
            original = target.read_bytes()
            text = original.decode("utf-8")
            if text.count(m.old) != 1:
                print(f"{m.id:20} STALE: the text to change occurs {text.count(m.old)} times")
                survived.append(m)
                continue
            target.write_bytes(text.replace(m.old, m.new).encode("utf-8"))
            try:
                rc, secs, _ = run_tests(wt, m.tests, args.select)
            finally:
                target.write_bytes(original)
            verdict = "killed" if rc == 1 else ("SURVIVED" if rc == 0 else f"error {rc}")
            (survived if rc == 0 else killed).append(m)
            print(f"{m.id:20} {verdict:9} {secs:6.0f} s  {m.what}", flush=True)
        total = len(killed) + len(survived)
        print(f"score: {len(killed)}/{total} killed; survivors: {[m.id for m in survived]}")
        return 0 if not survived else 1
    finally:
        if not args.keep:
            sh(["git", "worktree", "remove", "--force", str(wt)], REPO)


if __name__ == "__main__":
    sys.exit(main())
