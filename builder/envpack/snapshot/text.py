"""The terminal views of inspect and diff (the CLI prints them; nothing here prints)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from envpack.bundle.manifest import SBOM_NAME
from envpack.errors import BundleError
from envpack.lock.record import LockedPackage
from envpack.snapshot.diff import DiffResult
from envpack.snapshot.update import format_update


def format_inspect(info: Mapping[str, Any], sbom: bool = False) -> str:
    """A terminal view of :func:`inspect_bundle`'s result; ``sbom=True`` gives the SBOM itself."""
    if sbom:
        document = info.get("sbom")
        if not isinstance(document, dict):
            raise BundleError(f"{info.get('path')}: this bundle has no {SBOM_NAME}")
        return json.dumps(document, indent=2, ensure_ascii=False)
    recipe = info.get("recipe") or {}
    install = info.get("install") or {}
    mm = info.get("micromamba") or {}
    kind = "envpack update bundle" if info.get("update") else "envpack bundle"
    lines = [
        f"{info.get('name')} ({info.get('platform')}): {kind}, {info.get('form')}, "
        f"{human_size(info.get('bundle_size') or 0)}",
        f"  created      {info.get('created_utc') or '?'} by envpack {info.get('envpack_version')}",
    ]
    if recipe:
        specs = " ".join(recipe.get("specs") or [])
        chans = ", ".join(recipe.get("channels") or [])
        lines.append(f"  recipe       {recipe.get('file') or '?'}: {specs}")
        lines.append(f"  channels     {chans}")
    else:
        lines.append("  recipe       (none: built from a lock)")
    lines.append(f"  micromamba   {_micromamba_text(mm)}")
    if install and install.get("installed_size") is not None:
        lines.append(
            f"  install      {install.get('default_prefix')}; "
            f"{human_size(int(install.get('installed_size') or 0))} installed, "
            f"longest path {install.get('longest_path')} characters"
        )
    if info.get("virtual_packages"):
        lines.append(f"  assumes      {' '.join(info['virtual_packages'])}")
    lines.append(f"  SBOM         {SBOM_NAME if info.get('sbom_present') else 'none'}")
    if info.get("update"):
        lines.append(format_update(info["update"]))
    for env in info.get("environments") or []:
        lines.append(
            f"  environment  {env['name']}: {env['package_count']} packages "
            f"({human_size(int(env['size'] or 0))}), into {env.get('default_prefix')}"
        )
    if info.get("environments"):
        shared = info.get("shared_packages") or []
        lines.append(
            f"  shared       {len(shared)} packages used by two or more environments, stored "
            "once" + (f": {', '.join(shared)}" if shared else "")
        )
    lines.append("")
    rows: list[tuple[str, ...]] = [
        (
            p["name"],
            p["version"],
            p["build"],
            p["subdir"],
            human_size(int(p["size"] or 0)),
            p.get("license") or "?",
        )
        for p in info.get("packages") or []
    ]
    lines += _table(("name", "version", "build", "subdir", "size", "licence"), rows, right={4})
    wheels = info.get("wheels") or []
    if wheels:  # bundles without a pip: list keep their view as it was
        lines.append("")
        rows = [
            (w["name"], w["version"], w["filename"], human_size(int(w["size"] or 0)))
            for w in wheels
        ]
        lines += _table(("wheel", "version", "file", "size"), rows, right={3})
    lines.append("")
    lines.append(
        f"{info.get('package_count')} packages, {human_size(int(info.get('total_size') or 0))} "
        "of packages" + (f", {len(wheels)} wheels (installed by pip after them)" if wheels else "")
    )
    lines += problem_lines(info.get("problems") or ())
    return "\n".join(lines)


def _micromamba_text(mm: Mapping[str, Any]) -> str:
    if not mm:
        return "not recorded"
    if mm.get("source") == "file":
        return f"{mm.get('file')} (a local file, sha256 {str(mm.get('sha256'))[:12]}…)"
    runtime = f", runtime {', '.join(mm['runtime'])}" if mm.get("runtime") else ""
    return f"{mm.get('version')} (package {mm.get('fn')}{runtime})"


def _table(
    header: tuple[str, ...], rows: Sequence[tuple[str, ...]], right: frozenset[int] | set[int]
) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]

    def line(cells: tuple[str, ...]) -> str:
        out = [
            str(c).rjust(w) if i in right else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    return [line(header), line(tuple("-" * w for w in widths)), *(line(r) for r in rows)]


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def format_diff(result: DiffResult) -> str:
    lines = [f"{result.a} -> {result.b} ({result.platform})"]
    width = max(
        [len(r.name) for r in _all(result)]
        + [len("pip:" + w.name) for w in result.wheels_added + result.wheels_removed]
        + [len("pip:" + w.name) for w, _ in result.wheels_changed],
        default=4,
    )
    for r in result.added:
        lines.append(f"  + {r.name.ljust(width)}  {r.version}-{r.build}")
    for r in result.removed:
        lines.append(f"  - {r.name.ljust(width)}  {r.version}-{r.build}")
    for old, new in result.changed:
        if (old.version, old.build, old.subdir) == (new.version, new.build, new.subdir):
            what = f"{old.version}-{old.build}, same name but a different file"
        else:
            what = f"{_label(old, new.subdir)} -> {_label(new, old.subdir)}"
        lines.append(f"  ~ {old.name.ljust(width)}  {what}")
    for w in result.wheels_added:
        lines.append(f"  + {('pip:' + w.name).ljust(width)}  {w.version} ({w.filename})")
    for w in result.wheels_removed:
        lines.append(f"  - {('pip:' + w.name).ljust(width)}  {w.version} ({w.filename})")
    for old_w, new_w in result.wheels_changed:
        if old_w.filename == new_w.filename:
            what = f"{old_w.filename}, same name but a different file"
        else:
            what = f"{old_w.filename} -> {new_w.filename}"
        lines.append(f"  ~ {('pip:' + old_w.name).ljust(width)}  {what}")
    if result.micromamba:
        lines.append(
            f"  ~ {'(micromamba)'.ljust(width)}  {result.micromamba[0]} -> {result.micromamba[1]}"
        )
    if result.empty:
        lines.append(f"  no differences ({result.unchanged} packages)")
    else:
        lines.append(
            f"{len(result.added)} added, {len(result.removed)} removed, "
            f"{len(result.changed)} changed, {result.unchanged} unchanged"
            + (
                f"; wheels: {len(result.wheels_added)} added, {len(result.wheels_removed)} "
                f"removed, {len(result.wheels_changed)} changed"
                if result.has_wheel_changes
                else ""
            )
        )
    lines += problem_lines(result.problems)
    return "\n".join(lines)


def problem_lines(problems: Sequence[str]) -> list[str]:
    """The problems inspect and diff noticed, for the terminal (verify lists them all)."""
    if not problems:
        return []
    head = f"PROBLEMS ({len(problems)}; run envpack verify for a full check):"
    return ["", head, *(f"  ! {p}" for p in problems)]


def _label(r: LockedPackage, other_subdir: str) -> str:
    text = f"{r.version}-{r.build}"
    return f"{text} ({r.subdir})" if r.subdir != other_subdir else text


def _all(result: DiffResult) -> Iterable[LockedPackage]:
    yield from result.added
    yield from result.removed
    for old, _ in result.changed:
        yield old
