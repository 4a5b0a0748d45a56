"""ListSessions page tokens: opaque to callers (https://google.aip.dev/158), sealed with
AES-GCM, an authenticated encryption (https://csrc.nist.gov/pubs/sp/800/38/d/final). A token
reveals nothing (not the caller, the order or the row it points at), and the caller and the
order it was issued for are its associated data: a token edited, forged, or replayed against
another order or by another caller fails to open and is refused instead of steering the query.

The key is derived (HKDF, https://www.rfc-editor.org/rfc/rfc5869) from the one a migration
stored in Postgres, so every replica reads every replica's tokens. Each token has a random
96-bit nonce. A token of the earlier, signed-but-readable format does not open: it is refused
as any invalid token is, and the caller starts the list again.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from service.domain.errors import FieldViolation, InvalidRequest

_NONCE_BYTES = 12
# The cursor: microseconds since the epoch, and the row id.
_CURSOR = struct.Struct(">qq")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the next page starts: strictly after this row, in newest-first order."""

    created_at: datetime
    row_id: int


class PageTokens:
    def __init__(self, key: bytes) -> None:
        # Shared by every replica (kept in Postgres), so any replica reads any replica's token.
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"checkout page tokens aes-gcm"
        ).derive(key)
        self._aead = AESGCM(derived)

    def issue(self, caller: str, order_id: str, cursor: Cursor) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        micros = (cursor.created_at - _EPOCH) // _MICROSECOND
        sealed = self._aead.encrypt(
            nonce, _CURSOR.pack(micros, cursor.row_id), _bound_to(caller, order_id)
        )
        return _b64(nonce + sealed)

    def read(self, token: str, caller: str, order_id: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token.encode("ascii") + b"==")
            nonce, sealed = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
            micros, row_id = _CURSOR.unpack(
                self._aead.decrypt(nonce, sealed, _bound_to(caller, order_id))
            )
            return Cursor(_EPOCH + micros * _MICROSECOND, row_id)
        except (ValueError, binascii.Error, UnicodeError, InvalidTag, struct.error, OverflowError):
            raise InvalidRequest(
                [FieldViolation("page_token", "not a token this service issued for this order")]
            ) from None


def _bound_to(owner: str, order_id: str) -> bytes:
    """The associated data: whose order the token was issued for, unambiguously encoded."""
    return json.dumps([owner, order_id], separators=(",", ":")).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")
