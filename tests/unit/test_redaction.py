"""Credentials in URLs never reach a log line: user information and credential-like query
parameters, in any string of the line."""

from __future__ import annotations

import pytest

from service.observability.redaction import redact_credentials, redact_url


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://sk_live_abc123:@api.stripe.com/v1", "https://***@api.stripe.com/v1"),
        ("http://user:s3cret@127.0.0.1:12111", "http://***@127.0.0.1:12111"),
        ("postgresql://svc:hunter2@db:5432/checkout", "postgresql://***@db:5432/checkout"),
        (
            "postgresql://svc@db/checkout?sslmode=require&password=hunter2",
            "postgresql://***@db/checkout?sslmode=require&password=***",
        ),
        ("https://proxy/?api_key=s3cret&x=1", "https://proxy/?api_key=***&x=1"),
        ("https://api.stripe.com", "https://api.stripe.com"),
        ("no url here: user:pw@host", "no url here: user:pw@host"),
    ],
)
def test_credentials_are_cut_from_urls(url: str, kept: str) -> None:
    assert redact_url(url) == kept
    assert redact_url(f"cannot reach {url} (refused)") == f"cannot reach {kept} (refused)"


def test_every_string_of_a_log_line_is_redacted() -> None:
    line = {
        "event": "stripe failed",
        "error": "connect to https://u:hunter2@proxy failed",
        "attempts": [{"url": "https://u:hunter2@proxy"}, 3],
        "count": 3,
    }
    redacted = redact_credentials(None, "info", dict(line))
    assert "hunter2" not in repr(redacted)
    assert redacted["count"] == 3 and redacted["event"] == "stripe failed"
