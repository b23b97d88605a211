"""The update bundle's files and manifest.

Layout, under one top folder ``<name>-update/``::

    update.bat  README.txt  envpack.json  sbom.cdx.json  env.txt  update/add.txt
    [micromamba.exe + DLLs, only when NEW's micromamba differs from OLD's or OLD's is unknown]
    channel/<subdir>/<carried packages>  channel/<platform|noarch>/repodata.json
    post-install/NN-<script>.bat

The manifest is a full bundle's, so that verify, inspect and diff read it as they are: every file
in ``files`` with its sha256, NEW's whole lock as ``lock``, ``env.txt`` and the SBOM describe
the environment after the update. What only an update has is under ``update``: the base and target
lock hashes, the base's packages (what update.bat checks the prefix against), the packages added,
changed and removed, and which packages the bundle carries (``update.carried``: verify checks
those files; the others are already installed on the PC).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from envpack import __version__
from envpack.bundle.layout import (
    BundleSettings,
    explicit_file,
    post_install_entries,
    repodata_for,
)
from envpack.bundle.manifest import Entry, json_bytes, manifest_files
from envpack.bundle.sbom import make_sbom
from envpack.lock.lockfile import PlatformLock
from envpack.lock.record import LockedPackage

from .plan import SHORT, UpdatePlan
from .stub import ADD_FILE, HASH_FILE, MARKER, UpdateContext, render_update, summary

UPDATE_FORMAT = 1


def _record(r: LockedPackage) -> dict[str, Any]:
    return {
        "name": r.name,
        "version": r.version,
        "build": r.build,
        "subdir": r.subdir,
        "fn": r.fn,
        "md5": r.md5,
        "sha256": r.sha256 or None,
        "size": r.size,
    }


def update_record(plan: UpdatePlan, base_kind: str, micromamba: str) -> dict[str, Any]:
    """The manifest's ``update`` table (see the module docstring)."""
    return {
        "format": UPDATE_FORMAT,
        "base_sha256": plan.base_sha256,
        "target_sha256": plan.target_sha256,
        "base_from": base_kind,
        "base": [_record(r) for r in plan.base],
        "added": [r.fn for r in plan.added],
        "removed": [r.fn for r in plan.removed],
        "changed": [{"name": c.name, "from": c.old.fn, "to": c.new.fn} for c in plan.changed],
        "carried": [f"channel/{r.subdir}/{r.fn}" for r in plan.carried],
        "carried_bytes": sum(r.size for r in plan.carried),
        "micromamba": micromamba,  # "bundle": carried here; "prefix": the env's Scripts\
        "marker": MARKER,
        "lock_hash_file": HASH_FILE,
    }


def readme(plan: UpdatePlan, prefix: str) -> str:
    old, new = plan.base_sha256[:SHORT], plan.target_sha256[:SHORT]
    return f"""envpack update: {plan.name} ({plan.platform}), lock {old} to lock {new}
{"=" * 60}

This folder updates an installed "{plan.name}" environment that is at lock {old} to lock
{new}, with no network: {summary(plan)}.

1. Copy the whole folder to the PC and "Extract All..." if it is a zip.
2. Open a NEW cmd.exe window (no conda environment active) and run:

       update.bat                 updates {prefix}
       update.bat D:\\envs\\{plan.name}   updates the environment in that folder
       update.bat /?              shows every option

update.bat first checks that the environment is exactly lock {old} and lists any difference
(/FORCE updates anyway). An interrupted update is finished by running update.bat again; a
second run after success says the environment is already at lock {new}.

envpack.json lists every file with its SHA-256 and the packages added, changed and removed;
sbom.cdx.json describes the environment after the update. Made with envpack {__version__}.
"""


def update_entries(
    plan: UpdatePlan,
    target: PlatformLock,
    settings: BundleSettings,
    paths: dict[LockedPackage, Path],
    tools: list[tuple[str, bytes]],
    epoch: int,
    base_kind: str,
) -> list[Entry]:
    entries: list[Entry] = []
    for r in plan.carried:
        entries.append(Entry.from_file(f"channel/{r.subdir}/{r.fn}", paths[r], r.size, r.sha256))
    for subdir in sorted({plan.platform, "noarch"}):
        recs = [r for r in plan.carried if r.subdir == subdir]
        entries.append(
            Entry.from_bytes(f"channel/{subdir}/repodata.json", repodata_for(subdir, recs))
        )
    entries.append(Entry.from_bytes("env.txt", explicit_file(target.packages)))
    entries.append(Entry.from_bytes(ADD_FILE.replace("\\", "/"), explicit_file(plan.carried)))
    for tool_name, data in tools:
        entries.append(Entry.from_bytes(tool_name, data))
    scripts = post_install_entries(settings.post_install)
    entries += scripts
    post = [e.arcname for e in scripts]
    sbom = make_sbom(plan.name, plan.platform, target.packages, epoch)
    entries.append(Entry.from_bytes("sbom.cdx.json", json_bytes(sbom)))
    text = readme(plan, settings.default_prefix).replace("\n", "\r\n")
    entries.append(Entry.from_bytes("README.txt", text.encode("utf-8")))
    ctx = UpdateContext(
        plan=plan,
        default_prefix=settings.default_prefix,
        files=tuple(
            (e.arcname.replace("/", "\\"), e.size) for e in sorted(entries, key=lambda e: e.arcname)
        ),
        tools=tuple(t for t, _ in tools),
        post_install=tuple(p.replace("/", "\\") for p in post),
        shortcuts=settings.shortcuts,
        envpack_version=__version__,
    )
    entries.append(Entry.from_bytes("update.bat", render_update(ctx)))
    manifest = {
        "format": "envpack-bundle",
        "format_version": 1,
        "kind": "update",
        "envpack_version": __version__,
        "name": plan.name,
        "platform": plan.platform,
        "created": epoch,
        "recipe": settings.recipe_record,
        "lock": {"name": plan.name, **target.to_dict()},
        "install": {
            "default_prefix": settings.default_prefix,
            "shortcuts": settings.shortcuts,
            "variables": dict(settings.variables),
            "post_install": post,
        },
        "update": update_record(plan, base_kind, "bundle" if tools else "prefix"),
        "files": manifest_files(entries),
    }
    entries.append(Entry.from_bytes("envpack.json", json_bytes(manifest)))
    return entries
