-- Every order belongs to the caller that created it: (caller, order_id) is the key. Rows made
-- before callers existed belong to `local`, the one caller when authentication is off.
ALTER TABLE checkout_sessions ADD COLUMN caller text NOT NULL DEFAULT 'local';
ALTER TABLE checkout_sessions ALTER COLUMN caller DROP DEFAULT;

-- At most one row holds an order: one that is payable or about to be (pending, open), or one
-- that is paid or whose delayed payment is under way (complete, payment not failed). A claim
-- for a new session is one INSERT against this index, so a payment stored at the same moment
-- cannot slip between "is the order paid?" and "claim it".
DROP INDEX checkout_sessions_one_active_per_order;
CREATE UNIQUE INDEX checkout_sessions_one_holder_per_order
    ON checkout_sessions (caller, order_id)
    WHERE (state IN ('pending', 'open') OR (state = 'complete' AND NOT async_payment_failed));

DROP INDEX checkout_sessions_by_order;
CREATE INDEX checkout_sessions_by_order
    ON checkout_sessions (caller, order_id, created_at DESC, id DESC);
-- Webhooks name an order but no caller.
CREATE INDEX checkout_sessions_by_order_id ON checkout_sessions (order_id);

ALTER TABLE create_requests ADD COLUMN caller text NOT NULL DEFAULT 'local';
ALTER TABLE create_requests ALTER COLUMN caller DROP DEFAULT;
ALTER TABLE create_requests DROP CONSTRAINT create_requests_pkey;
ALTER TABLE create_requests ADD PRIMARY KEY (caller, request_id);

-- Keys that sign what the service hands out and reads back (ListSessions page tokens): made
-- here, once, so that every replica shares them without configuration.
CREATE TABLE signing_keys (
    purpose    text        PRIMARY KEY,
    key        bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
INSERT INTO signing_keys (purpose, key)
VALUES ('page_token',
        decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));
