"""Corporate TLS: a private CA named by SSL_CERT_FILE or REQUESTS_CA_BUNDLE is trusted; else the OS store."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from envpack.errors import DownloadError
from envpack.fetch.download import Fetcher, FetchOptions
from locked_records import record_for

from channel_factory import Pkg, build_package
from http_server import ChannelServer

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")


def make_ca_and_cert(folder: Path) -> tuple[Path, Path, Path]:
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    ca_key, ca, key, csr, cert = (
        folder / n for n in ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem")
    )
    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
        "-days",
        "2",
        "-subj",
        "/CN=envpack test CA",
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(csr),
        "-subj",
        "/CN=127.0.0.1",
    )
    ext = folder / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    run(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-out",
        str(cert),
        "-days",
        "2",
        "-extfile",
        str(ext),
    )
    return ca, cert, key


@pytest.fixture
def https(tmp_path: Path) -> Iterator[tuple[ChannelServer, Path, Path]]:
    ca, cert, key = make_ca_and_cert(tmp_path)
    pkg = build_package(Pkg("secure"), tmp_path / "srv" / "win-64")
    server = ChannelServer(tmp_path / "srv")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    with server:
        yield server, pkg, ca


@pytest.mark.parametrize("var", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
def test_private_ca_from_environment(
    https, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, var: str
) -> None:  # type: ignore[no-untyped-def]
    server, pkg, ca = https
    for v in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv(var, str(ca))
    rec = record_for(pkg, server.url.replace("http://", "https://") + f"/win-64/{pkg.name}")
    fetcher = Fetcher(FetchOptions(cache_dir=tmp_path / "c", retries=0), sleep=lambda s: None)
    assert fetcher.fetch(rec).read_bytes() == pkg.read_bytes()


def test_untrusted_ca_fails_clearly(https, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    server, pkg, _ = https
    for v in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(v, raising=False)
    rec = record_for(pkg, server.url.replace("http://", "https://") + f"/win-64/{pkg.name}")
    sleeps: list[float] = []
    fetcher = Fetcher(FetchOptions(cache_dir=tmp_path / "c"), sleep=sleeps.append)
    with pytest.raises(
        DownloadError,
        match=r"secure-1.0-0.conda: .*certificate is not trusted; name your CA bundle in SSL_CERT_FILE",
    ):
        fetcher.fetch(rec)
    assert sleeps == []  # no pointless retries


def test_missing_ca_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "nope.pem"))
    from envpack.fetch.http import ssl_context

    with pytest.raises(
        DownloadError, match="SSL_CERT_FILE=.*nope.pem does not name a readable CA bundle"
    ):
        ssl_context()
