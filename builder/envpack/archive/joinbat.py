"""The files beside a split bundle's parts: ``join.bat`` (rebuilds the bundle on Windows and
checks every part first), ``NAME.sha256`` and ``README.txt``; and the rules for the folder
they live in (one split bundle per folder, stale parts of an older build removed)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from envpack.bundle.stubs import batch_quote, load_template, render, to_crlf
from envpack.errors import BundleError
from envpack.limits import CHUNK

JOIN_SCRIPT = "join.bat"


SPLIT_README = "README.txt"


README_MARKER = "envpack split bundle:"


PART_RE = re.compile(r"(?P<base>.+)\.(?P<num>\d{3})")


@dataclass(frozen=True)
class SplitInfo:
    """What join.bat and the readers need to know about a split bundle."""

    target: str
    parts: int
    part_size: int
    last_size: int
    total_size: int


def write_split_files(
    tmp: Path, info: SplitInfo, parts: list[Path], top: str, fmt: str, sfx: bool
) -> list[Path]:
    whole = hashlib.sha256()
    lines: list[str] = []
    for path in parts:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                h.update(chunk)
                whole.update(chunk)
        lines.append(f"{h.hexdigest()}  {path.name}\n")
    sums = tmp / f"{info.target}.sha256"
    # sha256sum format, the whole file first: "sha256sum -c" checks the parts before joining
    # (with --ignore-missing) and everything after.
    sums.write_text(f"{whole.hexdigest()}  {info.target}\n" + "".join(lines), encoding="utf-8")
    join = tmp / JOIN_SCRIPT
    join.write_bytes(render_join(info, top, fmt, sfx))
    readme = tmp / SPLIT_README
    readme.write_bytes(to_crlf(split_readme_text(info, top, fmt, sfx)))
    return [sums, readme, join]


def render_join(info: SplitInfo, top: str, fmt: str, sfx: bool) -> bytes:
    if sfx:
        nxt = (
            'echo join: starting the installer "%TARGET%" ...\n'
            # No CALL: it would read the line again, doubling a "^" and expanding a "%" of the
            # path. Running the installer as the last command hands over control and its exit
            # code alike.
            '"%OUT%" %*\n'
        )
    elif fmt == "7z":
        nxt = (
            'echo join: next, extract "%TARGET%" here with 7-Zip, or in cmd.exe with:\n'
            'echo     tar -xf "%TARGET%"\n'
            'echo   then run setup.bat in the "%TOP%" folder.'
        )
    else:
        nxt = (
            'echo join: next, extract "%TARGET%" here (Explorer: right-click, Extract All),\n'
            'echo   or in cmd.exe with:  tar -xf "%TARGET%"\n'
            'echo   then run setup.bat in the "%TOP%" folder.'
        )
    values = {
        "TARGET": batch_quote(info.target),
        "TOP": batch_quote(top),
        "PARTS": str(info.parts),
        "PART_SIZE": str(info.part_size if info.parts > 1 else info.last_size),
        "LAST_SIZE": str(info.last_size),
        "TOTAL_SIZE": str(info.total_size),
        "LAST_NUM": f"{info.parts:03d}",
        "NEXT": nxt,
    }
    return render(load_template(JOIN_SCRIPT), values)


def split_readme_text(info: SplitInfo, top: str, fmt: str, sfx: bool) -> str:
    last = f"{info.target}.{info.parts:03d}"
    if sfx:
        then = "join.bat then starts the installer (it passes its arguments on, e.g. a prefix)."
    elif fmt == "7z":
        then = f'Then extract {info.target} (7-Zip, or "tar -xf") and run {top}\\setup.bat.'
    else:
        then = f'Then extract {info.target} (Extract All, or "tar -xf") and run {top}\\setup.bat.'
    return f"""{README_MARKER} {info.target}
{"=" * (len(README_MARKER) + 1 + len(info.target))}

{info.target} ({info.total_size} bytes) is split into {info.parts} parts:
{info.target}.001 to {last}.

1. Copy ALL the files of this folder ({info.parts} parts, join.bat, {info.target}.sha256) into one
   folder on the PC's own disk (NTFS). A FAT32 stick can carry the parts but cannot hold the
   joined file when it is over 4 GiB.
2. Double-click join.bat (or run it in cmd.exe). It checks that every part is there with its
   size, joins them into {info.target}, and checks the result.
3. {then}

With 7-Zip, {info.target}.001 also opens directly, without joining.
{info.target}.sha256 lists the SHA-256 of every part and of {info.target}
(check one with: certutil -hashfile {info.target} SHA256).
"""


def read_join_vars(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        text = path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return values
    for line in text.splitlines():
        m = re.fullmatch(r'set "([A-Z_]+)=(.*)"', line.strip())
        if m and m.group(1) not in values:
            values[m.group(1)] = m.group(2).replace("%%", "%")
    return values


def check_split_folder(out_dir: Path, name: str) -> None:
    join = out_dir / JOIN_SCRIPT
    if join.is_file():
        target = read_join_vars(join).get("TARGET")
        if target != name:
            raise BundleError(
                f"{out_dir} already holds {JOIN_SCRIPT} for {target or 'another file'}; "
                f"write the split parts of {name} to a folder of their own"
            )
    readme = out_dir / SPLIT_README
    if readme.is_file() and not _readme_is_ours(readme, name):
        raise BundleError(
            f"{out_dir} already holds a {SPLIT_README} that is not {name}'s; "
            f"write the split parts of {name} to a folder of their own"
        )


def _readme_is_ours(path: Path, name: str) -> bool:
    try:
        with path.open("rb") as fh:
            first = fh.readline().decode("utf-8", "replace").strip()
    except OSError:
        return False
    return first == f"{README_MARKER} {name}"


def remove_stale(out_dir: Path, name: str, parts: int) -> None:
    """Remove what an earlier build of ``name`` left that the new one does not replace."""
    for path in out_dir.iterdir():
        m = PART_RE.fullmatch(path.name)
        if m and m.group("base") == name and int(m.group("num")) > parts and path.is_file():
            path.unlink()
    if parts:
        (out_dir / name).unlink(missing_ok=True)
        return
    (out_dir / f"{name}.sha256").unlink(missing_ok=True)
    join = out_dir / JOIN_SCRIPT
    if join.is_file() and read_join_vars(join).get("TARGET") == name:
        join.unlink()
    readme = out_dir / SPLIT_README
    if readme.is_file() and _readme_is_ours(readme, name):
        readme.unlink()
