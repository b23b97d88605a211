"""Credentials for the wheels of a lock made by another tool (conda-lock, pixi).

Such a lock records each wheel by a URL without credentials, and has no ``pip:`` list whose
``--index-url`` could carry them. The wheels' index credentials come from where the user's pip,
uv and pixi already read them, mirroring the conda side (whose credentials come from the lock
file's own URLs, :func:`envpack.lock.importers.secret_channels`):

1. the lock file's own URLs with ``user:password@`` (a conda-lock pip URL, a pixi ``indexes:``
   entry, a channel on the same host);
2. ``PIP_INDEX_URL``, ``PIP_EXTRA_INDEX_URL`` (pip's variables; the extra one space-separated);
3. ``UV_DEFAULT_INDEX``, ``UV_INDEX`` (``[name=]url``, space-separated), ``UV_INDEX_URL``,
   ``UV_EXTRA_INDEX_URL``, and ``UV_INDEX_<NAME>_USERNAME`` / ``_PASSWORD`` for a named index;
4. the ``.netrc`` file (``NETRC``, else ``~/.netrc``; ``~/_netrc`` on Windows), for the hosts
   the lock file names.

The result is a list of index roots (``scheme://user:password@host[:port]``), the first source
winning for a host; :func:`envpack.pypi.fetch.fetch_wheels` turns them into channels whose
credentials only reach requests to that host. Nothing here is written anywhere.
"""

from __future__ import annotations

import netrc
import os
import re
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path

from ..errors import LockError
from ..lock.importers import MAX_LOCK

_URL = re.compile(r"""[A-Za-z][A-Za-z0-9+.-]*://[^\s'"#<>]+""")
# pip reads an "append" option's variable as whitespace-separated values.
_PIP_VARS = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL")
_UV_VARS = ("UV_DEFAULT_INDEX", "UV_INDEX", "UV_INDEX_URL", "UV_EXTRA_INDEX_URL")


def _root(url: str) -> tuple[str, str] | None:
    """(public root, root with credentials) of an http(s) URL carrying ``user:password@``."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or parts.username is None:
        return None
    userinfo, _, host = parts.netloc.rpartition("@")
    # Lower case as a lock's wheel URLs are (lock.wheel.public_url), so the prefixes meet.
    scheme, host = parts.scheme.lower(), host.lower()
    return f"{scheme}://{host}", f"{scheme}://{userinfo}@{host}"


def _with_userinfo(url: str, user: str, password: str) -> str:
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    userinfo = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}"
    return urllib.parse.urlunsplit((parts.scheme, f"{userinfo}@{host}", parts.path, "", ""))


def _uv_env_name(name: str) -> str:
    # uv: the index name upper-cased, every non-alphanumeric character as "_".
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


def _env_urls(environ: Mapping[str, str]) -> Iterator[str]:
    for var in _PIP_VARS:
        yield from environ.get(var, "").split()
    for var in _UV_VARS:
        for item in environ.get(var, "").split():
            name, sep, url = item.partition("=")
            if not sep or "://" in name:
                yield item
                continue
            key = _uv_env_name(name)
            user = environ.get(f"UV_INDEX_{key}_USERNAME")
            password = environ.get(f"UV_INDEX_{key}_PASSWORD")
            if user is not None or password is not None:
                url = _with_userinfo(url, user or "", password or "")
            yield url


def _lock_urls(path: Path) -> list[str]:
    try:
        with Path(path).open("r", encoding="utf-8", errors="replace") as fh:
            text = fh.read(MAX_LOCK)
    except OSError as exc:
        raise LockError(f"{path}: cannot read ({exc.strerror})") from None
    return [m.group(0).rstrip("/,;)]}") for m in _URL.finditer(text)]


def _netrc_path(environ: Mapping[str, str]) -> Path | None:
    if environ.get("NETRC"):
        return Path(environ["NETRC"])
    home = environ.get("HOME") or environ.get("USERPROFILE")
    if not home:
        return None
    for name in (".netrc", "_netrc"):
        if (Path(home) / name).is_file():
            return Path(home) / name
    return None


def _netrc_urls(urls: list[str], environ: Mapping[str, str]) -> Iterator[str]:
    path = _netrc_path(environ)
    if path is None or not path.is_file():
        return
    try:
        # An explicit file: Python's ownership/permission check applies only to the default.
        entries = netrc.netrc(str(path))
    except (OSError, netrc.NetrcParseError):
        return  # as pip's requests does: an unreadable .netrc gives no credentials
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            continue
        # Only a `machine` entry naming the host: the `default` entry would send its password
        # to every public host the lock names (the PyPI file host, conda channels).
        found = entries.hosts.get(parts.hostname)
        if found is not None and found[2]:
            yield _with_userinfo(url, found[0], found[2])


def lock_file_indexes(path: Path, environ: Mapping[str, str] | None = None) -> list[str]:
    """The credentialed index roots for the wheels of the lock file ``path`` (see the module
    docstring for the sources, in order); ``environ`` defaults to the process environment."""
    env = os.environ if environ is None else environ
    named = _lock_urls(path)
    chosen: dict[str, str] = {}
    for url in [*named, *_env_urls(env), *_netrc_urls(named, env)]:
        root = _root(url)
        if root is not None:
            chosen.setdefault(root[0], root[1])
    return list(chosen.values())
