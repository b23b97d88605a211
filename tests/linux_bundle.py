"""A test-side builder of Linux/macOS bundles through envpack.archive.tar and envpack.bundle.shstubs.

It lays out the entries as core.bundle_entries does (channel/<subdir>/<fn>, both repodata.json,
env.txt, micromamba, envpack.json, the scripts) until core builds these targets itself; then the
tests switch to ``envpack build --platform linux-64``.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from envpack.archive.tar import write_tar_stream
from envpack.bundle.manifest import Entry, json_bytes, manifest_files
from envpack.bundle.shstubs import render_sfx_header_sh, script_entries
from envpack.bundle.stubs import StubContext

SHARED = Path(__file__).resolve().parents[2] / "shared"
ZLIB_CHANNEL = SHARED / "data" / "anaconda-zlib-channel"
ZLIB_FN = "zlib-1.2.11-h7b6447c_3.conda"
ZLIB_MD5 = "cb23839f06da92ec92c6d2d2d5e0cb4a"
REAL_MICROMAMBA = SHARED / "tools" / "micromamba-linux" / "micromamba"
EPOCH = 1542814864


@dataclass
class Built:
    tar: Path
    sfx: Path | None
    entries: list[Entry]


def _file_entry(rel: str, path: Path) -> Entry:
    data = path.read_bytes()
    return Entry.from_file(rel, path, len(data), hashlib.sha256(data).hexdigest())


def build_bundle(
    out: Path,
    *,
    name: str = "zlibenv",
    platform: str = "linux-64",
    micromamba: Path = REAL_MICROMAMBA,
    package: Path = ZLIB_CHANNEL / "linux-64" / ZLIB_FN,
    md5: str = ZLIB_MD5,
    post_install: Sequence[tuple[str, bytes]] = (),
    default_prefix: str = "$HOME/envs/zlibenv",
    sfx: bool = False,
) -> Built:
    subdir = platform
    pkg_rel = f"channel/{subdir}/{package.name}"
    entries = [_file_entry(pkg_rel, package)]
    repodata = package.parent / "repodata.json"
    if repodata.is_file() and package.parent.name == subdir:
        entries.append(_file_entry(f"channel/{subdir}/repodata.json", repodata))
    else:
        entries.append(Entry.from_bytes(f"channel/{subdir}/repodata.json", json_bytes({})))
    entries.append(Entry.from_bytes("channel/noarch/repodata.json", json_bytes({"packages": {}})))
    # The lock's URL: the package is found in setup.sh's pre-filled cache by name and md5, and
    # the host is unreachable (setup.sh's dead proxy) whatever it is.
    url = f"https://channel.invalid/pkgs/main/{subdir}/{package.name}"
    entries.append(Entry.from_bytes("env.txt", f"@EXPLICIT\n{url}#{md5}\n".encode()))
    entries.append(_file_entry("micromamba", micromamba))
    post: list[str] = []
    for i, (script, content) in enumerate(post_install, 1):
        rel = f"post-install/{i:02d}-{script}"
        entries.append(Entry.from_bytes(rel, content))
        post.append(rel)
    ctx = StubContext(
        name=name,
        platform=platform,
        default_prefix=default_prefix,
        explicit_file="env.txt",
        channel_dir="channel",
        micromamba_files=("micromamba",),
        files=tuple((e.arcname, e.size) for e in sorted(entries, key=lambda e: e.arcname)),
        packages=(pkg_rel,),
        installed_size=400_000,
        longest_path=30,
        post_install=tuple(post),
        envpack_version="test",
        lock_sha256="5" * 64,
    )
    entries.extend(script_entries(ctx))
    manifest = {
        "format": "envpack-bundle",
        "format_version": 1,
        "name": name,
        "platform": platform,
        "created": EPOCH,
        "files": manifest_files(entries),
    }
    entries.append(Entry.from_bytes("envpack.json", json_bytes(manifest)))
    out.mkdir(parents=True, exist_ok=True)
    tar = out / f"{name}-{platform}.tar"
    with tar.open("wb") as fh:
        write_tar_stream(fh, name, entries, EPOCH)
    sfx_path = None
    if sfx:
        sfx_path = out / f"{name}-{platform}-setup.sh"
        with sfx_path.open("wb") as fh:
            write_tar_stream(fh, name, entries, EPOCH, header=render_sfx_header_sh(ctx))
    return Built(tar, sfx_path, entries)


def unpack(tar: Path, dest: Path) -> Path:
    """The bundle folder, unpacked with GNU tar as a user would."""
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-xf", str(tar), "-C", str(dest)], check=True, timeout=120)
    (folder,) = [p for p in dest.iterdir() if p.is_dir()]
    return folder


def shells() -> list[tuple[str, list[str] | None]]:
    """(id, argv prefix) of each POSIX shell to run setup.sh with; None when it is absent."""
    found: list[tuple[str, list[str] | None]] = []
    for ident, argv in (
        ("dash", ["dash"]),
        ("bash", ["bash", "--posix"]),
        ("busybox", ["busybox", "sh"]),
    ):
        found.append((ident, argv if shutil.which(argv[0]) else None))
    return found


def repaired_zlib(dest: Path) -> tuple[Path, str]:
    """The real zlib 1.2.11 linux-64 .tar.bz2 of the shared data, with its two symlinks restored.

    In that copy ``lib/libz.so`` and ``lib/libz.so.1`` are empty regular files while its
    ``info/paths.json`` says "softlink", so micromamba 2.8.1 cannot link it ("cannot copy
    symlink: Invalid argument", measured). Every other member is copied unchanged; returns the
    package and its md5 (for env.txt).
    """
    import tarfile

    src = ZLIB_CHANNEL / "linux-64" / "zlib-1.2.11-h7b6447c_3.tar.bz2"
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / src.name
    with tarfile.open(src, "r:bz2") as tin, tarfile.open(out, "w:bz2") as tout:
        for member in tin.getmembers():
            if member.name in ("lib/libz.so", "lib/libz.so.1"):
                member.type, member.linkname, member.size = tarfile.SYMTYPE, "libz.so.1.2.11", 0
                tout.addfile(member)
            else:
                tout.addfile(member, tin.extractfile(member) if member.isfile() else None)
    return out, hashlib.md5(out.read_bytes()).hexdigest()
