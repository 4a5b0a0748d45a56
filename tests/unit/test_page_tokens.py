"""ListSessions page tokens: opaque, bound to their caller and order, and the earlier readable
format refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from service.domain.errors import InvalidRequest
from service.domain.page_tokens import Cursor, PageTokens

KEY = bytes(range(32))
CURSOR = Cursor(datetime(2026, 5, 17, 12, 34, 56, 789012, tzinfo=UTC), 987654321)


def raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "==")


def refused(tokens: PageTokens, token: str, owner: str, order_id: str) -> bool:
    with pytest.raises(InvalidRequest) as caught:
        tokens.read(token, owner, order_id)
    return [v.field for v in caught.value.violations] == ["page_token"]


def test_a_token_reads_back_as_its_cursor_and_shows_nothing_of_it() -> None:
    tokens = PageTokens(KEY)
    token = tokens.issue("orders-service", "order-4471", CURSOR)
    assert tokens.read(token, "orders-service", "order-4471") == CURSOR
    sealed = raw(token)
    for shown in (
        b"orders-service",
        b"order-4471",
        str(CURSOR.row_id).encode(),
        CURSOR.row_id.to_bytes(8, "big"),
        CURSOR.created_at.isoformat().encode(),
        b"2026",
    ):
        assert shown not in sealed, shown
    # Two tokens for the same page differ: nothing is learnt by comparing them either.
    assert tokens.issue("orders-service", "order-4471", CURSOR) != token


def test_a_token_is_good_only_for_its_caller_and_order_and_key() -> None:
    tokens = PageTokens(KEY)
    token = tokens.issue("orders", "order-1", CURSOR)
    assert refused(tokens, token, "billing", "order-1")
    assert refused(tokens, token, "orders", "order-2")
    # The same bytes differently split between caller and order are another order.
    assert refused(tokens, tokens.issue("a", "bc", CURSOR), "ab", "c")
    assert refused(PageTokens(bytes(32)), token, "orders", "order-1")
    tampered = bytearray(raw(token))
    tampered[-1] ^= 1
    assert refused(
        tokens, base64.urlsafe_b64encode(bytes(tampered)).decode().rstrip("="), "orders", "order-1"
    )


def test_a_token_of_the_earlier_signed_format_is_refused() -> None:
    """Before: an HMAC of a readable JSON payload, which named the caller and the row."""
    payload = json.dumps(
        ["orders", "order-1", CURSOR.created_at.isoformat(), CURSOR.row_id], separators=(",", ":")
    ).encode()
    signature = hmac.new(KEY, payload, hashlib.sha256).digest()[:16]
    old = base64.urlsafe_b64encode(signature + payload).decode().rstrip("=")
    assert refused(PageTokens(KEY), old, "orders", "order-1")


@pytest.mark.parametrize("token", ["", "AAAA", "x" * 40, "not base64!", "\u0661\u0662"])
def test_anything_else_is_refused_on_the_field(token: str) -> None:
    assert refused(PageTokens(KEY), token, "orders", "order-1")
