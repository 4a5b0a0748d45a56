"""Credentials out of every URL that reaches a log line: the user information of
`scheme://user:password@host` (https://www.rfc-editor.org/rfc/rfc3986#section-3.2.1, which
itself deprecates a password there) and query parameters named like a credential
(`?password=`, `sslpassword=`, `api_key=`, `token=`…). Settings that are URLs are described
through `redact_url`, and `redact_credentials`, a structlog processor, applies the same rule to
every string a log line carries, so that a URL quoted in an error message is caught too.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s@]*@")
_CREDENTIAL_PARAMETER = re.compile(
    r"([?&][^=&#\s]*(?:pass|secret|token|key|auth)[^=&#\s]*=)[^&#\s]*", re.IGNORECASE
)
_HIDDEN = "***"


def redact_url(text: str) -> str:
    """`text` with the credentials of any URL in it replaced by `***`."""
    if "://" not in text:
        return text
    return _CREDENTIAL_PARAMETER.sub(rf"\1{_HIDDEN}", _USERINFO.sub(rf"\1{_HIDDEN}@", text))


def redact_credentials(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: every string of the line through `redact_url`."""
    for key, value in event_dict.items():
        event_dict[key] = _redacted(value)
    return event_dict


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact_url(value)
    if isinstance(value, list | tuple):
        return type(value)(_redacted(item) for item in value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    return value
