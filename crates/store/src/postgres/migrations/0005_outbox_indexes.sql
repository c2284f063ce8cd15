-- greenlight PostgreSQL schema, migration 0005: the outbox's indexes, as at the end of the
-- outbox part of sqlite/schema.sql. Every index is written with every event, so the ones only
-- pending events need are partial: an event nobody can receive (written `skipped`) costs the
-- table and two indexes, a pending one the table and three.

DROP INDEX IF EXISTS outbox_claim;
DROP INDEX IF EXISTS outbox_due;
DROP INDEX IF EXISTS outbox_business;
DROP INDEX IF EXISTS outbox_business_state;
-- Events by state and business, newest first: the deliveries API, replays of dead events, and
-- the claim's walk over businesses with pending events.
CREATE INDEX IF NOT EXISTS outbox_state ON outbox(state, business_id, id);
-- A business's due events, in order, for the claim.
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(state, business_id, next_attempt_at, id) WHERE state = 'pending';
-- Whether anything is due (the worker's poll).
CREATE INDEX IF NOT EXISTS outbox_pending_due ON outbox(state, next_attempt_at) WHERE state = 'pending';
-- Done events by age, for the purge.
CREATE INDEX IF NOT EXISTS outbox_done ON outbox(state, next_attempt_at) WHERE state <> 'pending';
