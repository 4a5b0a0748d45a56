-- The order↔session ledger (docs/architecture.md, "Creating a session for an order"). One row
-- per attempt to give an order a session.
CREATE TABLE checkout_sessions (
    id              bigserial   PRIMARY KEY,
    order_id        text        NOT NULL,
    -- 'pending' until Stripe's answer is stored, then Stripe's status.
    state           text        NOT NULL CHECK (state IN ('pending', 'open', 'complete', 'expired')),
    -- How far along its life the session is; updates never lower it (stale reads lose).
    progress        smallint    NOT NULL DEFAULT 0,
    session_id      text        UNIQUE,
    payment_status  text,
    -- A delayed payment failed after completion (checkout.session.async_payment_failed).
    async_payment_failed boolean NOT NULL DEFAULT false,
    fingerprint     text        NOT NULL,
    -- Persisted before the Stripe call so that a retry or a restart gets the same session.
    idempotency_key text        NOT NULL UNIQUE,
    stripe_params   jsonb       NOT NULL,
    snapshot        jsonb,
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- At most one payable (or about to be payable) session per order, across all replicas.
CREATE UNIQUE INDEX checkout_sessions_one_active_per_order
    ON checkout_sessions (order_id) WHERE state IN ('pending', 'open');

CREATE INDEX checkout_sessions_by_order
    ON checkout_sessions (order_id, created_at DESC, id DESC);

-- What the reconciliation sweep looks at: rows that are not final yet.
CREATE INDEX checkout_sessions_unsettled
    ON checkout_sessions (updated_at) WHERE state IN ('pending', 'open', 'complete');

-- Caller idempotency: request_id -> the answer it got (https://google.aip.dev/155).
CREATE TABLE create_requests (
    request_id  text        PRIMARY KEY,
    fingerprint text        NOT NULL,
    row_id      bigint      NOT NULL REFERENCES checkout_sessions (id) ON DELETE CASCADE,
    reused      boolean     NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Stripe events already applied; a redelivery stops here.
CREATE TABLE stripe_events (
    event_id    text        PRIMARY KEY,
    type        text        NOT NULL,
    session_id  text,
    received_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
