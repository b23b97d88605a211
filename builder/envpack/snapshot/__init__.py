"""Snapshot: read a built bundle back — inspect, verify, diff, and the lock to rebuild it from.

Nothing here prints; the CLI formats with :func:`format_inspect` and :func:`format_diff`.
"""

from envpack.snapshot.diff import diff
from envpack.snapshot.inspect import inspect_bundle
from envpack.snapshot.rebuild import lock_from_bundle, lock_from_manifest, rebuild_inputs
from envpack.snapshot.text import format_diff, format_inspect
from envpack.snapshot.verify import verify_bundle

__all__ = [
    "diff",
    "format_diff",
    "format_inspect",
    "inspect_bundle",
    "lock_from_bundle",
    "lock_from_manifest",
    "rebuild_inputs",
    "verify_bundle",
]
