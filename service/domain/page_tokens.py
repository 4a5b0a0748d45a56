"""ListSessions page tokens: opaque to callers, signed, and bound to the caller and order they
were issued for, so that a token edited, forged or replayed against another order is refused
instead of steering the query (https://google.aip.dev/158: tokens are opaque)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime

from service.domain.errors import FieldViolation, InvalidRequest

_SIGNATURE_BYTES = 16


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the next page starts: strictly after this row, in newest-first order."""

    created_at: datetime
    row_id: int


class PageTokens:
    def __init__(self, key: bytes) -> None:
        # Shared by every replica (kept in Postgres), so any replica reads any replica's token.
        self._key = key

    def issue(self, caller: str, order_id: str, cursor: Cursor) -> str:
        payload = json.dumps(
            [caller, order_id, cursor.created_at.isoformat(), cursor.row_id],
            separators=(",", ":"),
        ).encode()
        return _b64(self._sign(payload) + payload)

    def read(self, token: str, caller: str, order_id: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token.encode("ascii") + b"==")
            signature, payload = raw[:_SIGNATURE_BYTES], raw[_SIGNATURE_BYTES:]
            if not hmac.compare_digest(signature, self._sign(payload)):
                raise ValueError("bad signature")
            token_caller, token_order, created, row_id = json.loads(payload)
            if (token_caller, token_order) != (caller, order_id):
                raise ValueError("issued for another order")
            return Cursor(datetime.fromisoformat(created), int(row_id))
        except (ValueError, TypeError, binascii.Error, UnicodeError):
            raise InvalidRequest(
                [FieldViolation("page_token", "not a token this service issued for this order")]
            ) from None

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")
