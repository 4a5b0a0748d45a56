"""ListSessions page tokens: opaque to callers (https://google.aip.dev/158), sealed
(sealed.py): a token reveals nothing (not the caller, the order or the row it points at), and
the caller and the order it was issued for are bound to it, so that a token edited, forged, or
replayed against another order or by another caller is refused instead of steering the query.
A token of the earlier, signed-but-readable format does not open: it is refused as any invalid
token is, and the caller starts the list again.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from service.domain.errors import FieldViolation, InvalidRequest
from service.domain.sealed import Sealer, Unopened

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
        self._sealer = Sealer(key, purpose=b"checkout page tokens aes-gcm")

    def issue(self, caller: str, order_id: str, cursor: Cursor) -> str:
        micros = (cursor.created_at - _EPOCH) // _MICROSECOND
        return self._sealer.seal(_CURSOR.pack(micros, cursor.row_id), caller, order_id)

    def read(self, token: str, caller: str, order_id: str) -> Cursor:
        try:
            micros, row_id = _CURSOR.unpack(self._sealer.open(token, caller, order_id))
            return Cursor(_EPOCH + micros * _MICROSECOND, row_id)
        except (Unopened, struct.error, OverflowError):
            raise InvalidRequest(
                [FieldViolation("page_token", "not a token this service issued for this order")]
            ) from None
