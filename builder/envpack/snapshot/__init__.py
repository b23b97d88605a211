"""Snapshot: read a built bundle back — inspect, verify, diff, rebuild its lock."""

from envpack.snapshot.verify import (
    diff,
    format_diff,
    format_inspect,
    inspect_bundle,
    lock_from_bundle,
    lock_from_manifest,
    rebuild_inputs,
    sbom_of,
    verify_bundle,
)

__all__ = [
    "diff",
    "format_diff",
    "format_inspect",
    "inspect_bundle",
    "lock_from_bundle",
    "lock_from_manifest",
    "rebuild_inputs",
    "sbom_of",
    "verify_bundle",
]
