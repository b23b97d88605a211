"""The HTTP side of fetching: the TLS trust store and the client every download shares."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import TYPE_CHECKING

from envpack import __version__
from envpack.errors import DownloadError

if TYPE_CHECKING:
    import httpx


def ssl_context() -> ssl.SSLContext:
    """The CA store corporate users expect: an explicit bundle if named, else the OS store."""
    for var in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        cafile = os.environ.get(var)
        if cafile:
            if not Path(cafile).is_file():
                raise DownloadError(f"{var}={cafile} does not name a readable CA bundle file")
            return ssl.create_default_context(cafile=cafile)
    import truststore

    ctx: ssl.SSLContext = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return ctx


def make_client(timeout: float, concurrency: int) -> httpx.Client:
    # Imported here: a warm build never downloads, and httpx is a third of envpack's import time.
    import httpx

    # trust_env picks up HTTP(S)_PROXY / NO_PROXY as httpx users expect.
    return httpx.Client(
        verify=ssl_context(),
        trust_env=True,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
        follow_redirects=True,
        headers={"User-Agent": f"envpack/{__version__}"},
        limits=httpx.Limits(max_connections=concurrency * 2),
    )
