"""The one judge of whether a name from outside may become a path.

Every name that envpack turns into a file or an archive member comes from somewhere it does not
control: a lock's ``fn`` (the recipe's lock, an imported conda-lock/pixi/@EXPLICIT file, the
lock inside an old bundle), a channel's repodata keys, a bundle being read. Joined into a path
unchecked, ``../../x`` writes outside the cache, and a member name does the same on the PC that
unpacks the bundle. So every way in (lock records, solver results, importers, bundle writers and
readers) asks these two functions, and nothing else decides.

The rules are Windows' as well as POSIX's, because the bundle is unpacked by Windows' tar.exe
and by cmd.exe: no separators inside a file name, no ``..``, nothing absolute or drive-relative,
no ``:`` (drive letters, alternate data streams), no control characters, no device names
(``CON``, ``NUL``, ``COM1``…, with any extension), no trailing dot or space (Windows drops them,
so two different names would meet in one file).
"""

from __future__ import annotations

import re

# Device names Windows resolves in any folder and with any extension ("nul.txt" is NUL);
# COM¹²³ and LPT¹²³ (superscript digits) are devices too since Windows 10.
_RESERVED = re.compile(r"^(con|prn|aux|nul|conin\$|conout\$|(com|lpt)[0-9¹²³])(\..*)?$", re.I)
MAX_COMPONENT = 255  # NTFS and ext4 both stop at 255 per name


def component_problem(part: str) -> str | None:
    """Why one path component (a file or folder name) is unsafe, or ``None``."""
    if part in ("", "."):
        return "empty or '.' path component"
    if part == "..":
        return "'..' path component"
    if "/" in part or "\\" in part:
        return "a path separator inside a file name"
    if any(ord(c) < 32 or c == "\x7f" for c in part):
        return "control character in name"
    if ":" in part:
        return "':' in name (drive letter or alternate data stream)"
    if part != part.rstrip(" ."):
        return "name component ends with a space or dot (Windows drops it)"
    if _RESERVED.match(part):
        return f"reserved Windows device name {part.split('.')[0]!r}"
    if len(part.encode("utf-8", "surrogatepass")) > MAX_COMPONENT:
        return f"longer than {MAX_COMPONENT} bytes"
    return None


def file_name_problem(name: str) -> str | None:
    """Why ``name`` may not be used as a single file name (a package's ``fn``), or ``None``."""
    return component_problem(name)


def member_problem(name: str) -> str | None:
    """Why a relative, ``/``-separated member name may not be used, or ``None`` when safe."""
    if not name:
        return "empty name"
    if "\\" in name:
        return "backslash in name (a path separator on Windows)"
    if name.startswith("/"):
        return "absolute path"
    for part in name.split("/"):
        problem = component_problem(part)
        if problem:
            return problem
    return None


def printable(text: str) -> str:
    """``text`` with control and other unprintable characters escaped (``\\n``, ``\\x1b``…):
    a hostile name must not split a one-line-per-problem report or drive the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
