-- The sweep handles each row on its own schedule: a row that fails gets a growing delay
-- instead of being retried (and sorted first) at every pass, and a row re-read without news
-- waits a quiet period before the next look, so that a pass always reaches new rows.
ALTER TABLE checkout_sessions
    ADD COLUMN sweep_attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN next_sweep_at timestamptz,
    -- Stripe answered `resource_missing` for the session: nobody can pay it, and the sweep
    -- stops asking.
    ADD COLUMN missing_at_stripe boolean NOT NULL DEFAULT false;

-- How far the sweep has read Stripe's event list, to catch up on webhooks that never came.
CREATE TABLE sync_watermarks (
    name       text        PRIMARY KEY,
    value      bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
