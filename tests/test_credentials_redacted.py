"""Credentials inside any message (user:password@ and token path segments) are redacted."""

from __future__ import annotations

from envpack.channels import redact


def test_credentials_inside_messages_are_redacted() -> None:
    message = "failed to fetch https://alice:s3cret@host.org/t/tk-123/c/win-64/repodata.json (404)"
    assert (
        redact(message) == "failed to fetch https://host.org/t/<TOKEN>/c/win-64/repodata.json (404)"
    )
    assert redact("a http://u@h/x and file:///p@q") == "a http://h/x and file:///p@q"
