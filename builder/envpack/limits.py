"""The sizes envpack streams in and the most it believes of a JSON file, defined once."""

from __future__ import annotations

CHUNK = 1 << 20  # bytes per read/write when streaming a package, a member or a part
# A manifest, repodata, SBOM or a package's info/ file bigger than this is hostile, not envpack's
# or a package's own: it is refused rather than read into memory.
MAX_JSON = 64 << 20
