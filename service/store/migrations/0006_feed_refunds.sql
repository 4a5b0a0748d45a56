-- The money's events on the feed (docs/architecture.md, "The event feed"): a refund's events
-- (made, failed) name the refund, since one payment may have several and one write may announce
-- more than one of them.
ALTER TABLE feed_events ADD COLUMN refund_id text;
