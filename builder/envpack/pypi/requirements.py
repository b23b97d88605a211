"""The ``pip:`` list of an environment file, read as pip reads a requirements file.

conda writes the list to a temporary requirements file and runs pip on it, so each entry is one
requirements-file line: a PEP 508 requirement (markers included), or an option line
(``--index-url``, ``--extra-index-url``, ``--find-links``, ``--pre``, ``-r FILE``, ``-c FILE``).
``-r``/``-c`` paths are relative to the environment file (conda runs pip from its folder).
Editable installs, local paths and VCS/URL requirements are kept apart (``direct``): they are
built into wheels when pure Python (see :mod:`envpack.pypi.sdist`).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..errors import RecipeError

MAX_INCLUDE_DEPTH = 10  # -r files including each other: a cycle, not a real project
_VCS = re.compile(r"^(git|hg|svn|bzr)\+", re.I)
_OPTIONS_WITH_VALUE = {
    "-i": "index_url",
    "--index-url": "index_url",
    "--extra-index-url": "extra_index_urls",
    "-f": "find_links",
    "--find-links": "find_links",
    "-r": "requirement",
    "--requirement": "requirement",
    "-c": "constraint",
    "--constraint": "constraint",
}
_FLAGS = {"--pre": "pre", "--no-index": "no_index"}
# Lines pip accepts that change nothing about which files are chosen for an offline install.
_IGNORED = {"--prefer-binary", "--only-binary", "--no-binary", "--trusted-host", "--use-pep517"}


@dataclass
class PipInput:
    """Everything the ``pip:`` list says; ``source`` names the file for error messages."""

    source: Path
    requirements: list[Requirement] = field(default_factory=list)
    constraints: list[Requirement] = field(default_factory=list)
    direct: list[str] = field(default_factory=list)  # -e PATH, local paths, VCS and file URLs
    index_url: str | None = None
    extra_index_urls: list[str] = field(default_factory=list)
    find_links: list[str] = field(default_factory=list)
    pre: bool = False
    no_index: bool = False

    @property
    def names(self) -> list[str]:
        return [str(canonicalize_name(r.name)) for r in self.requirements]


def _split_option(line: str) -> tuple[str, str | None]:
    """``--index-url=URL``, ``--index-url URL`` and ``-iURL`` -> (option, value)."""
    if line.startswith("--"):
        head, sep, rest = line.partition("=")
        if sep:
            return head, rest.strip()
        parts = line.split(None, 1)
        return parts[0], parts[1].strip() if len(parts) > 1 else None
    parts = line.split(None, 1)
    if len(parts[0]) > 2:  # -iURL, -rfile.txt
        return parts[0][:2], parts[0][2:]
    return parts[0], parts[1].strip() if len(parts) > 1 else None


def _strip_comment(line: str) -> str:
    # pip: a comment starts at '#' at the line start or after whitespace (URLs keep #sha256=...).
    return re.sub(r"(^|\s+)#.*$", "", line).strip()


def _is_direct(text: str) -> bool:
    if _VCS.match(text) or text.startswith(("file:", "./", "../", "/", ".\\", "..\\")):
        return True
    if text in {".", ".."} or re.match(r"^[A-Za-z]:[\\/]", text):
        return True
    # "name @ https://..." is a direct URL reference too
    return bool(re.match(r"^[A-Za-z0-9._-]+\s*(\[[^\]]*\])?\s*@\s*\S", text))


def parse_pip_list(
    lines: list[str], source: Path, *, into: PipInput | None = None, depth: int = 0
) -> PipInput:
    """Read ``lines`` (the ``pip:`` list, or an included file's lines) into a :class:`PipInput`.

    One bad line is one :class:`RecipeError` naming the file, the line and what to do.
    """
    out = into if into is not None else PipInput(source)
    base = source.parent
    for raw in lines:
        line = _strip_comment(str(raw))
        if not line:
            continue
        if line.startswith("-e ") or line.startswith("--editable"):
            _, value = _split_option(line)
            if not value:
                raise RecipeError(f"{source}: pip line {raw!r} names nothing to install")
            out.direct.append(value)
            continue
        if line.startswith("-"):
            option, value = _split_option(line)
            if option in _FLAGS:
                setattr(out, _FLAGS[option], True)
                continue
            if option in _IGNORED:
                continue
            target = _OPTIONS_WITH_VALUE.get(option)
            if target is None:
                raise RecipeError(
                    f"{source}: pip option {option!r} is not supported in an offline bundle; "
                    "remove it (supported: --index-url, --extra-index-url, --find-links, --pre, "
                    "-r, -c, -e)"
                )
            if not value:
                raise RecipeError(f"{source}: pip option {option!r} needs a value")
            value = shlex.split(value)[0] if value[:1] in "\"'" else value
            if target == "index_url":
                out.index_url = value
            elif target == "extra_index_urls":
                out.extra_index_urls.append(value)
            elif target == "find_links":
                local = base / value
                out.find_links.append(str(local) if "://" not in value else value)
            else:
                _include(out, base / value, target == "constraint", source, depth)
            continue
        if _is_direct(line):
            out.direct.append(line)
            continue
        try:
            out.requirements.append(Requirement(line))
        except InvalidRequirement as exc:
            raise RecipeError(
                f"{source}: pip requirement {line!r} is not valid ({exc}); "
                "write it as pip would read it, e.g. 'requests>=2,<3'"
            ) from None
    return out


def _include(out: PipInput, path: Path, constraint: bool, source: Path, depth: int) -> None:
    if depth >= MAX_INCLUDE_DEPTH:
        raise RecipeError(f"{source}: -r/-c files nest deeper than {MAX_INCLUDE_DEPTH} (a cycle?)")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RecipeError(
            f"{source}: cannot read {path} ({exc.strerror}); -r and -c paths are relative to "
            "the environment file"
        ) from None
    if not constraint:
        parse_pip_list(text.splitlines(), path, into=out, depth=depth + 1)
        return
    sub = parse_pip_list(text.splitlines(), path, depth=depth + 1)
    out.constraints.extend(sub.requirements)
