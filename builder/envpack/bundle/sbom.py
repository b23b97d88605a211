"""A CycloneDX 1.5 JSON SBOM of a bundle's packages: names, versions, licences and hashes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from envpack import __version__
from envpack.lock.record import LockedPackage

_NAMESPACE = uuid.UUID("6c1d1f0e-6a3e-4f7e-9a51-0e2f8d5a7c11")


def purl(record: LockedPackage) -> str:
    return (
        f"pkg:conda/{record.name}@{record.version}?build={record.build}"
        f"&channel={record.channel}&subdir={record.subdir}"
    )


def make_sbom(
    name: str, platform: str, records: Sequence[LockedPackage], epoch: int
) -> dict[str, Any]:
    key = "\n".join(f"{r.sha256}" for r in sorted(records))
    serial = uuid.uuid5(_NAMESPACE, f"{name}\n{platform}\n{key}")
    components = []
    for r in sorted(records):
        component: dict[str, Any] = {
            "type": "library",
            "bom-ref": r.dist,
            "name": r.name,
            "version": r.version,
            "purl": purl(r),
            "hashes": [
                {"alg": "SHA-256", "content": r.sha256},
                {"alg": "MD5", "content": r.md5},
            ],
            "properties": [
                {"name": "conda:build", "value": r.build},
                {"name": "conda:subdir", "value": r.subdir},
                {"name": "conda:url", "value": r.url},
            ],
        }
        if r.license:
            component["licenses"] = [{"expression": r.license}]
        components.append(component)
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{serial}",
        "version": 1,
        "metadata": {
            "timestamp": datetime.fromtimestamp(epoch, tz=timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "tools": {
                "components": [{"type": "application", "name": "envpack", "version": __version__}]
            },
            # The environment has no version of its own (its packages do, in "components"); the
            # platform it is for is a property, not a version.
            "component": {
                "type": "application",
                "name": name,
                "properties": [{"name": "conda:subdir", "value": platform}],
            },
        },
        "components": components,
    }
