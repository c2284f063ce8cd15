-- greenlight PostgreSQL schema, migration 0012: skipped events out of the outbox's indexes, as
-- SQLite's (sqlite/schema.sql, `outbox_listed` and `outbox_blocks`). An event nobody can
-- receive (written `skipped`: most of a sandbox's, both of a send's status events when the
-- business has no callback) put an entry in `outbox_state` and one in `outbox_done`; with two
-- events a send, those were four of a send's index entries (docs/BENCHMARKS.md, forty-first
-- round). It now costs the table and its key, and now and then a row of `outbox_blocks`.

-- The blocks of 4096 outbox ids (`id >> 12`) a business has events in, of any state (a pending
-- event may become skipped): written by the statement that inserts events, so a few rows per
-- 4096 events. A business's skipped events are read block by block, newest first, each block a
-- range of ids. The purge drops a block's row with its business's last event in it.
-- (Its text column compares bytewise, as every other: migration 0008.)
CREATE TABLE IF NOT EXISTS outbox_blocks (
    business_id TEXT COLLATE "C" NOT NULL,
    block       BIGINT NOT NULL,
    PRIMARY KEY (business_id, block)
);
INSERT INTO outbox_blocks (business_id, block)
SELECT DISTINCT business_id, id >> 12 FROM outbox
ON CONFLICT DO NOTHING;

-- Events by state and business, newest first, but for skipped ones: the deliveries API (every
-- state is one walk per state, merged), replays of dead events. Statements state the
-- condition (`state <> 'skipped'`) so that the planner takes it.
CREATE INDEX IF NOT EXISTS outbox_listed ON outbox(state, business_id, id) WHERE state <> 'skipped';
DROP INDEX IF EXISTS outbox_state;

-- Delivered events by age, for the purge (skipped ones are purged by a walk of the table in
-- id order, which follows their creation).
CREATE INDEX IF NOT EXISTS outbox_delivered ON outbox(state, next_attempt_at) WHERE state = 'delivered';
DROP INDEX IF EXISTS outbox_done;
