"""Channel names, URLs and local folders, and keeping credentials out of everything written."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from envpack.errors import RecipeError

DEFAULT_CHANNEL_ALIAS = "https://conda.anaconda.org"

# A conda token segment, "/t/<token>", in the middle or at the end of a channel URL.
_TOKEN_RE = re.compile(r"/t/[^/]+(?=/|$)")


@dataclass(frozen=True)
class Channel:
    """A channel as the recipe gave it, plus the URL it resolves to (credentials included)."""

    given: str
    # With credentials, no trailing slash; only ever used for requests (and kept out of repr).
    url: str = field(repr=False)

    @property
    def public_url(self) -> str:
        return redact(self.url)

    @property
    def is_local(self) -> bool:
        return self.url.startswith("file://")

    @property
    def local_path(self) -> Path:
        return file_url_to_path(self.url)


def file_url_to_path(url: str) -> Path:
    return Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path))


def path_to_file_url(path: Path) -> str:
    return path.resolve().as_uri()


def resolve_channel(given: str, base_dir: Path, alias: str = DEFAULT_CHANNEL_ALIAS) -> Channel:
    """Turn a recipe's channel entry into a :class:`Channel`.

    A bare name (``conda-forge``, ``org/label``) goes through the channel alias; anything with a
    scheme is a URL; anything that looks like a path is a folder relative to the recipe.
    """
    text = given.strip()
    if not text:
        raise RecipeError("empty channel name in the recipe")
    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
        if scheme not in {"http", "https", "file"}:
            raise RecipeError(f"channel {redact(text)!r}: unsupported URL scheme {scheme!r}")
        return Channel(given=redact(text), url=text.rstrip("/"))
    looks_like_path = (
        text.startswith((".", "/", "~", "\\"))
        or (len(text) > 1 and text[1] == ":")
        or (base_dir / text).is_dir()
    )
    if looks_like_path:
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = base_dir / path
        if not path.is_dir():
            raise RecipeError(f"channel folder {text!r} does not exist (looked in {path})")
        return Channel(given=text, url=path_to_file_url(path).rstrip("/"))
    return Channel(given=text, url=f"{alias.rstrip('/')}/{text.strip('/')}")


# "user:pass@" right after any "scheme://" in a text (a URL, or a message quoting one).
_USERINFO_RE = re.compile(r"(?<=://)[^/@\s]+@")


def redact(text: str) -> str:
    """Remove ``user:pass@`` and ``/t/<token>`` from a URL, or from every URL in a message."""
    return _USERINFO_RE.sub("", _TOKEN_RE.sub("/t/<TOKEN>", text))


def strip_token(url: str) -> str:
    """Drop a ``/t/<token>`` segment entirely: the URL a lock records for a package."""
    return redact(_TOKEN_RE.sub("", url))


def credentialed_url(public_url: str, channels: list[Channel]) -> str:
    """Map a credential-free package URL back onto the channel that carries the credentials."""
    for channel in channels:
        public = strip_token(channel.url)
        if public_url.startswith(public + "/") and channel.url != public:
            return channel.url + public_url[len(public) :]
    return public_url
