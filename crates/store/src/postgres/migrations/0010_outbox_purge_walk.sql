-- greenlight PostgreSQL schema, migration 0010: the purge walks `outbox_state` (a business's
-- done events, oldest first) instead of an index of done events by age, which every event
-- wrote (sqlite/schema.sql says the same of SQLite's outbox).

DROP INDEX IF EXISTS outbox_done;
