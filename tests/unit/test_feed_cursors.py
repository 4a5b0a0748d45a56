"""Event feed cursors: opaque, bound to the caller whose feed they point into, and read back as
the position they were issued for (its time included)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from uuid import UUID

import pytest

from service.domain.errors import InvalidRequest
from service.domain.feed_cursors import CURSOR_CHARACTERS, CURSOR_MAX, FeedCursors
from service.domain.model import FeedPosition
from service.domain.page_tokens import Cursor, PageTokens

KEY = bytes(range(32))
EVENT = UUID("6f1c2a1e-93b4-4e59-8d1e-2b7c9a0f5d31")
POSITION = FeedPosition(
    2**40 + 987_654, EVENT, datetime(2026, 11, 26, 12, 34, 56, 789012, tzinfo=UTC)
)


def refused(cursors: FeedCursors, cursor: str, caller: str) -> bool:
    with pytest.raises(InvalidRequest) as caught:
        cursors.read(cursor, caller)
    return [v.field for v in caught.value.violations] == ["after"]


def test_a_cursor_reads_back_as_its_position_and_shows_nothing_of_it() -> None:
    cursors = FeedCursors(KEY)
    cursor = cursors.issue("orders", POSITION)

    read = cursors.read(cursor, "orders")

    assert read == POSITION and read.written_at == POSITION.written_at
    assert len(cursor) <= CURSOR_MAX and CURSOR_CHARACTERS.fullmatch(cursor)
    sealed = base64.urlsafe_b64decode(cursor + "==")
    for shown in (b"orders", EVENT.bytes, POSITION.txid.to_bytes(8, "big"), str(EVENT).encode()):
        assert shown not in sealed, shown
    assert cursors.issue("orders", POSITION) != cursor


def test_a_cursor_is_good_only_for_its_caller_and_key() -> None:
    cursors = FeedCursors(KEY)
    cursor = cursors.issue("orders", POSITION)
    tampered = bytearray(base64.urlsafe_b64decode(cursor + "=="))
    tampered[-1] ^= 1

    assert refused(cursors, cursor, "billing")
    assert refused(FeedCursors(bytes(32)), cursor, "orders")
    assert refused(cursors, base64.urlsafe_b64encode(bytes(tampered)).decode(), "orders")
    assert refused(cursors, "", "orders")
    assert refused(cursors, "not a cursor", "orders")


def test_a_page_token_is_not_a_cursor_nor_a_cursor_a_page_token() -> None:
    """One key in Postgres, one derived for each use: a token of one kind never opens as the
    other, even for a caller and order named alike."""
    tokens, cursors = PageTokens(KEY), FeedCursors(KEY)
    token = tokens.issue("orders", "", Cursor(POSITION.written_at, 7))

    assert refused(cursors, token, "orders")
    with pytest.raises(InvalidRequest):
        tokens.read(cursors.issue("orders", POSITION), "orders", "")
