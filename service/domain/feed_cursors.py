"""Event feed cursors: opaque to callers, sealed (sealed.py) and bound to the caller whose feed
they point into, so that a cursor edited, forged, or passed by another caller is refused
(`INVALID_ARGUMENT` on `after`) instead of steering the read. A cursor holds a position in the
feed (model.FeedPosition): the writing transaction's id, the event's id and when it was written,
all needed to tell an event the database has from one a failover lost, and what was written
before it from what was written since (feed.py)."""

from __future__ import annotations

import re
import struct
from datetime import UTC, datetime, timedelta
from uuid import UUID

from service.domain.errors import FieldViolation, InvalidRequest
from service.domain.model import FeedPosition
from service.domain.sealed import Sealer, Unopened

# The position: the transaction id (a 64-bit xid8), the event's UUID, and when it was written
# (microseconds since the epoch).
_POSITION = struct.Struct(">Q16sq")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
CURSOR_MAX = 200
"""Longer than any cursor issued (about 70 characters), checked before anything is opened."""
CURSOR_CHARACTERS = re.compile(r"[A-Za-z0-9_-]+")


class FeedCursors:
    def __init__(self, key: bytes) -> None:
        # The page tokens' key, kept in Postgres for every replica, derived for this use alone.
        self._sealer = Sealer(key, purpose=b"checkout feed cursors aes-gcm")

    def issue(self, caller: str, position: FeedPosition) -> str:
        micros = (position.written_at - _EPOCH) // _MICROSECOND
        plain = _POSITION.pack(position.txid, position.event_id.bytes, micros)
        return self._sealer.seal(plain, caller)

    def read(self, cursor: str, caller: str) -> FeedPosition:
        try:
            txid, event_id, micros = _POSITION.unpack(self._sealer.open(cursor, caller))
            return FeedPosition(txid, UUID(bytes=event_id), _EPOCH + micros * _MICROSECOND)
        except (Unopened, struct.error, OverflowError):
            raise InvalidRequest(
                [FieldViolation("after", "not a cursor this service issued for these events")]
            ) from None
