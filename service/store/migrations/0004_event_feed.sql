-- The event feed (docs/architecture.md, "The event feed"): a transactional outbox. Every write
-- that changes what a ledger row announces (service/domain/outcomes.py) adds one row here in the
-- same statement, so that an event exists exactly when its change committed.
CREATE TABLE feed_events (
    -- A UUID, never a sequence: after a failover that lost the last commits, sequence values
    -- and transaction ids are handed out again; only a UUID stays a safe dedupe key.
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- The writing transaction. The feed is read in (txid, id) order, and only below the oldest
    -- transaction still running (pg_snapshot_xmin), so that an event whose transaction began
    -- earlier but committed later is never passed over.
    txid        xid8        NOT NULL DEFAULT pg_current_xact_id(),
    caller      text        NOT NULL,
    order_id    text        NOT NULL,
    type        text        NOT NULL,
    -- The ledger row as the change left it, without its Stripe parameters: the session as
    -- GetSession showed it then.
    session     jsonb       NOT NULL,
    create_time timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- A caller's feed, in order.
CREATE INDEX feed_events_by_caller ON feed_events (caller, txid, id);
-- Retention prunes the oldest events first, every caller's.
CREATE INDEX feed_events_by_position ON feed_events (txid, id);

-- Each caller's latest event that retention deleted: a cursor before it has lost events and is
-- refused (OUT_OF_RANGE), never resumed from silently.
CREATE TABLE feed_pruned (
    caller      text        PRIMARY KEY,
    txid        xid8        NOT NULL,
    event_id    uuid        NOT NULL,
    create_time timestamptz NOT NULL,
    pruned_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
