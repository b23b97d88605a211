"""The fetch phase of a cold build, alone: ``python bench/fetch_only.py LOCK CACHE_DIR``.

envpack has no command that only downloads, and with the bundle written while packages arrive a
cold build's time minus a warm build's no longer isolates the fetch. So this runs what a build's
fetch is, in a fresh process like the build: read the lock, a ``Fetcher`` configured as
``pipeline.make_fetcher`` configures it by default (8 concurrent downloads, 60 s timeout, hashes
checked), ``fetch_all`` of the win-64 records into CACHE_DIR. Prints the count and bytes fetched.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main() -> None:
    lock, cache = Path(sys.argv[1]), Path(sys.argv[2])
    from envpack.fetch.download import Fetcher, FetchOptions
    from envpack.lock.lockfile import read_lock

    cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    records = read_lock(lock).for_platform("win-64").all_records()
    fetcher = Fetcher(FetchOptions(cache_dir=cache, concurrency=8, timeout=60.0))
    got = fetcher.fetch_all(records)
    print(len(got), sum(p.stat().st_size for p in got.values()))
    sys.stdout.flush()
    # As envpack's CLI does: py-rattler's threads may crash interpreter finalisation.
    os._exit(0)


if __name__ == "__main__":
    main()
