"""Event feed cursors: opaque to callers, sealed (sealed.py) and bound to the caller whose feed
they point into, so that a cursor edited, forged, or passed by another caller is refused
(`INVALID_ARGUMENT` on `after`) instead of steering the read. A cursor holds a position in the
feed (model.FeedPosition): the writing transaction's id and the event's id, both needed to tell
an event the database has from one a failover lost (feed.py)."""

from __future__ import annotations

import re
import struct
from uuid import UUID

from service.domain.errors import FieldViolation, InvalidRequest
from service.domain.model import FeedPosition
from service.domain.sealed import Sealer, Unopened

# The position: the transaction id (a 64-bit xid8), and the event's UUID.
_POSITION = struct.Struct(">Q16s")
CURSOR_MAX = 200
"""Longer than any cursor issued (about 70 characters), checked before anything is opened."""
CURSOR_CHARACTERS = re.compile(r"[A-Za-z0-9_-]+")


class FeedCursors:
    def __init__(self, key: bytes) -> None:
        # The page tokens' key, kept in Postgres for every replica, derived for this use alone.
        self._sealer = Sealer(key, purpose=b"checkout feed cursors aes-gcm")

    def issue(self, caller: str, position: FeedPosition) -> str:
        return self._sealer.seal(_POSITION.pack(position.txid, position.event_id.bytes), caller)

    def read(self, cursor: str, caller: str) -> FeedPosition:
        try:
            txid, event_id = _POSITION.unpack(self._sealer.open(cursor, caller))
        except (Unopened, struct.error):
            raise InvalidRequest(
                [FieldViolation("after", "not a cursor this service issued for these events")]
            ) from None
        return FeedPosition(txid, UUID(bytes=event_id))
