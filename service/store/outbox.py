"""The event feed's SQL (docs/architecture.md, "The event feed"): the part of a ledger write that
adds the event it causes (the transactional outbox, `feed_events`), the part of a payment's
write that adds the events the domain decided for it, the read of a caller's feed below the
horizon, and retention's pruning. What a row announces is the domain's rule
(service/domain/outcomes.py), spelled here in SQL from the same table.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg

from service.domain.model import FeedEvent, FeedPosition, FeedRead, LedgerEntry, LedgerState
from service.domain.outcomes import ANNOUNCEMENTS, Announcement


def _quoted(values: Collection[str]) -> str:
    return ", ".join(f"'{value}'" for value in values)


def _condition(announcement: Announcement, row: str) -> str:
    terms = [f"{row}.state = '{announcement.state}'"]
    if announcement.payment_statuses:
        terms.append(f"{row}.payment_status IN ({_quoted(announcement.payment_statuses)})")
    if announcement.payment_failed is not None:
        terms.append(f"{'' if announcement.payment_failed else 'NOT '}{row}.async_payment_failed")
    return " AND ".join(terms)


def announced_sql(row: str) -> str:
    """outcomes.announced over a `checkout_sessions` row named `row`: the event type it
    announces, or NULL. Built from the domain's table, not written out a second time."""
    cases = " ".join(f"WHEN {_condition(a, row)} THEN '{a.type}'" for a in ANNOUNCEMENTS)
    return f"CASE {cases} END"


# Columns of what a write's `changed` CTE returns beyond the row's own, and what the event's
# copy of the row leaves out.
_NOT_KEPT = "'{stripe_params,previous_state,previous_announced}'::text[]"

EVENT = f"""event AS (
    INSERT INTO feed_events (caller, order_id, type, session)
    SELECT c.caller, c.order_id, a.type, to_jsonb(c) - {_NOT_KEPT}
    FROM changed AS c, LATERAL (SELECT {announced_sql("c")} AS type) AS a
    WHERE a.type IS NOT NULL AND a.type IS DISTINCT FROM c.previous_announced
    RETURNING type)"""
"""The outbox's part of a write: a CTE after `changed`, the rows a write changed, each with
`previous_state` and `previous_announced` (what it announced before, locked FOR UPDATE). It
writes the event of every row whose announcement the write changed, in the same statement."""


def payment_events(first: int) -> str:
    """The outbox's part of a payment's write (payment_ledger.py): CTEs after `changed`, the
    session's row whose payment the write changed, inserting the events the domain decided
    (outcomes.payment_events) from three arrays of the statement's parameters, from `$first`
    on: their ids, types and refund ids, in the order the transitions happened. The ids come
    in ascending order with them, so that a transaction's events, which share its transaction
    id, are read in that order too. `event` is one of their types (NULL if none), for the
    notice."""
    ids, types, refunds = (f"${first + i}" for i in range(3))
    return f"""written AS (
    INSERT INTO feed_events (id, caller, order_id, type, session, refund_id)
    SELECT e.id, c.caller, c.order_id, e.type, to_jsonb(c) - {_NOT_KEPT}, e.refund_id
    FROM changed AS c,
         unnest({ids}::uuid[], {types}::text[], {refunds}::text[]) AS e (id, type, refund_id)
    RETURNING type),
event AS (SELECT max(type) AS type FROM written)"""


class Written(NamedTuple):
    """What a ledger write left: the row, and if it changed it, the state it had before (None
    if it changed nothing) and the event it wrote to the feed (None if none)."""

    entry: LedgerEntry
    previous: LedgerState | None
    event: str | None


READ = """WITH horizon AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin),
page AS (
    SELECT e.id, e.txid, e.type, e.caller, e.order_id, e.session, e.create_time, e.refund_id
    FROM feed_events AS e, horizon AS h
    WHERE e.caller = $1 AND (e.txid, e.id) > ($2::xid8, $3::uuid) AND e.txid < h.xmin
      AND (cardinality($5::text[]) = 0 OR e.type = ANY ($5::text[]))
    ORDER BY e.txid, e.id
    LIMIT $4),
meta AS (
    SELECT tail.txid AS tail_txid, tail.id AS tail_id, tail.create_time AS tail_time,
           pruned.txid AS pruned_txid, pruned.event_id AS pruned_id,
           pruned.create_time AS pruned_time,
           EXISTS (SELECT 1 FROM feed_events WHERE caller = $1 AND txid = $2 AND id = $3)
               AS after_found,
           EXISTS (SELECT 1 FROM feed_events WHERE caller = $1 AND txid >= h.xmin) AS held_back
    FROM horizon AS h
    LEFT JOIN LATERAL (
        SELECT txid, id, create_time FROM feed_events WHERE caller = $1 AND txid < h.xmin
        ORDER BY txid DESC, id DESC LIMIT 1) AS tail ON true
    LEFT JOIN feed_pruned AS pruned ON pruned.caller = $1)
SELECT meta.*, page.* FROM meta LEFT JOIN page ON true ORDER BY page.txid, page.id"""
"""One read of a caller's feed, in one snapshot: the page, and what FeedRead tells beside it.
Only events whose transaction is older than the oldest one still running (the snapshot's xmin,
https://www.postgresql.org/docs/current/functions-info.html#FUNCTIONS-PG-SNAPSHOT) are read:
every transaction below it has ended, so no event can still appear before the last one read.
The snapshot is the statement's own (`pg_current_snapshot` is the active one), and the read
takes no transaction id, which would hold every reader's horizon back."""

AT_OR_BEFORE = """SELECT txid, id, create_time FROM feed_events
    WHERE caller = $1 AND (txid, id) <= ($2::xid8, $3::uuid) AND create_time <= $4
      AND txid < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY txid DESC, id DESC LIMIT 1"""
"""The caller's latest event at or before a position and written at or before it, below the
horizon: an event above it could still be preceded by one that commits later, and a consumer
resuming after it would pass that one over."""

PRUNE = """WITH oldest AS (
    SELECT txid, id, caller, create_time FROM feed_events ORDER BY txid, id LIMIT $2),
kept AS (SELECT txid, id FROM oldest WHERE create_time >= $1 ORDER BY txid, id LIMIT 1),
doomed AS (
    DELETE FROM feed_events AS e USING oldest AS o
    WHERE e.txid = o.txid AND e.id = o.id
      AND NOT EXISTS (SELECT 1 FROM kept WHERE (o.txid, o.id) >= (kept.txid, kept.id))
    RETURNING e.caller, e.txid, e.id, e.create_time),
latest AS (
    SELECT DISTINCT ON (caller) caller, txid, id, create_time FROM doomed
    ORDER BY caller, txid DESC, id DESC),
remembered AS (
    INSERT INTO feed_pruned AS p (caller, txid, event_id, create_time)
    SELECT caller, txid, id, create_time FROM latest
    ON CONFLICT (caller) DO UPDATE
    SET txid = excluded.txid, event_id = excluded.event_id,
        create_time = excluded.create_time, pruned_at = clock_timestamp()
    WHERE (excluded.txid, excluded.event_id) > (p.txid, p.event_id))
SELECT count(*) FROM doomed"""
"""Delete, in feed order, the oldest events up to the first one written at or after $1, at most
$2 of them: each caller's events go from its oldest on, never from the middle, so that its
latest deleted event (`feed_pruned`) tells exactly which cursors have lost events."""


RowReader = Callable[[Mapping[str, Any]], LedgerEntry]
"""How the ledger reads one of its rows (repository.py)."""


def feed_read(rows: list[asyncpg.Record], entry: RowReader) -> FeedRead:
    """READ's rows as a FeedRead."""
    first = rows[0]
    return FeedRead(
        events=tuple(_event(row, entry) for row in rows if row["id"] is not None),
        tail=_position(first["tail_txid"], first["tail_id"], first["tail_time"]),
        held_back=first["held_back"],
        pruned_through=_position(first["pruned_txid"], first["pruned_id"], first["pruned_time"]),
        after_found=first["after_found"],
    )


def position_of(row: asyncpg.Record | None) -> FeedPosition | None:
    return None if row is None else _position(row["txid"], row["id"], row["create_time"])


def _position(
    txid: int | None, event_id: UUID | None, written_at: datetime | None
) -> FeedPosition | None:
    if txid is None or event_id is None or written_at is None:
        return None
    # asyncpg's UUID is a uuid.UUID of its own; the domain compares plain ones.
    return FeedPosition(txid, UUID(int=event_id.int), written_at)


def _event(row: asyncpg.Record, entry: RowReader) -> FeedEvent:
    position = _position(row["txid"], row["id"], row["create_time"])
    assert position is not None  # a page row has all three
    return FeedEvent(
        position=position,
        type=row["type"],
        caller=row["caller"],
        order_id=row["order_id"],
        session=_session(row["session"], entry),
        refund_id=row["refund_id"],
    )


_TIMES = ("created_at", "updated_at", "expires_at", "next_sweep_at")


def _session(kept: Mapping[str, Any], entry: RowReader) -> LedgerEntry:
    """The row an event keeps (to_jsonb of the row, without its Stripe parameters), read as the
    ledger reads a row: its times come back from JSON as text."""
    row = dict(kept, stripe_params={})
    for column in _TIMES:
        if row.get(column) is not None:
            row[column] = datetime.fromisoformat(row[column])
    return entry(row)
