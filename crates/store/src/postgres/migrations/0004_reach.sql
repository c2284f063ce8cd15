-- greenlight PostgreSQL schema, migration 0004: the messaging limit's running count, the
-- twin of reach_recent / reach_counts at the end of sqlite/schema.sql.
CREATE TABLE IF NOT EXISTS reach_recent (
    business_id TEXT NOT NULL,
    wa_id       TEXT NOT NULL,
    last_at     BIGINT NOT NULL,
    PRIMARY KEY (business_id, wa_id)
);
CREATE INDEX IF NOT EXISTS reach_recent_at ON reach_recent(business_id, last_at);
CREATE TABLE IF NOT EXISTS reach_counts (
    business_id TEXT PRIMARY KEY,
    n           BIGINT NOT NULL,
    pruned_to   BIGINT NOT NULL
);
