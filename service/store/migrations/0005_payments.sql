-- The money after checkout (docs/architecture.md, "Payments after checkout"): each paid
-- PAYMENT session's payment, and every capture, cancel and refund a caller asked for.

-- What Stripe last said of the session's payment (its PaymentIntent, charge, refunds and
-- dispute), shown in Session.payment. Written with the row's updated_at and its notice, so that
-- watchers, caches and rendered messages see a payment change as a change of the session.
ALTER TABLE checkout_sessions ADD COLUMN payment jsonb;

-- Webhooks about a payment name its PaymentIntent, which the session's snapshot names.
CREATE INDEX checkout_sessions_by_payment_intent
    ON checkout_sessions ((snapshot ->> 'payment_intent_id'))
    WHERE snapshot ->> 'payment_intent_id' IS NOT NULL;

-- One row per session whose payment the service has read: what guards the money.
CREATE TABLE payments (
    session_row        bigint      PRIMARY KEY REFERENCES checkout_sessions (id) ON DELETE CASCADE,
    payment_intent_id  text        NOT NULL UNIQUE,
    -- What Stripe captured of the charge; never lowered.
    captured           bigint      NOT NULL DEFAULT 0,
    -- What the service's refunds hold of it: added by the statement that writes a refund's row,
    -- before Stripe is asked, and given back when Stripe refuses it or the refund fails.
    reserved           bigint      NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    -- Refunds made without the service (Stripe's Dashboard), as Stripe last said.
    refunded_elsewhere bigint      NOT NULL DEFAULT 0,
    -- Moved on by every write of Stripe's view: a read of Stripe is stored only if nothing was
    -- stored since the read began, so an older read never overwrites a newer one.
    version            bigint      NOT NULL DEFAULT 0,
    -- Nothing more is expected to happen to the payment (payment_model.PaymentSnapshot.settled).
    settled            boolean     NOT NULL DEFAULT false,
    next_sweep_at      timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Money out never exceeds money in: the refunds the service asks for stay within what was
    -- captured, whichever replicas ask at once (each reservation locks this row).
    CONSTRAINT payments_refunds_within_capture CHECK (reserved <= captured)
);

-- The sweep re-reads payments that are not settled.
CREATE INDEX payments_unsettled ON payments (coalesce(next_sweep_at, updated_at)) WHERE NOT settled;

-- A capture, cancel or refund a caller asked for. Written, with a fresh idempotency key, before
-- Stripe is asked, as a session's pending row is: a retry, a crash or another replica resumes
-- it with the same key, and Stripe answers with what it did the first time.
CREATE TABLE payment_operations (
    id              bigserial   PRIMARY KEY,
    session_row     bigint      NOT NULL REFERENCES payments (session_row) ON DELETE CASCADE,
    caller          text        NOT NULL,
    request_id      text        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('capture', 'cancel', 'refund')),
    fingerprint     text        NOT NULL,
    amount          bigint      NOT NULL CHECK (amount >= 0),
    reason          text,
    idempotency_key text        NOT NULL UNIQUE,
    state           text        NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed')),
    -- The refund Stripe made for it.
    refund_id       text,
    -- Stripe's refusal, to answer a retry of the same request alike.
    failure         jsonb,
    sweep_attempts  integer     NOT NULL DEFAULT 0,
    next_sweep_at   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Caller idempotency: a request id names one operation (https://google.aip.dev/155).
    UNIQUE (caller, request_id)
);

-- Stripe captures a payment once: at most one capture or cancel that Stripe has not refused.
CREATE UNIQUE INDEX payment_operations_one_capture_or_cancel
    ON payment_operations (session_row)
    WHERE kind IN ('capture', 'cancel') AND state <> 'failed';

CREATE INDEX payment_operations_by_payment ON payment_operations (session_row);

-- What the sweep resumes.
CREATE INDEX payment_operations_pending
    ON payment_operations (coalesce(next_sweep_at, updated_at)) WHERE state = 'pending';
