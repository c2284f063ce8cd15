-- greenlight PostgreSQL schema, migration 0002: gateway mode (docs/GATEWAY.md), the twin of the
-- gateway tables at the end of sqlite/schema.sql.

-- A gateway tenant's upstream credentials: Meta's token and app secret sealed by the server
-- (AEAD, key from configuration), the verify token only as a hash.
CREATE TABLE IF NOT EXISTS gateway_upstreams (
    business_id         TEXT PRIMARY KEY,
    waba_id             TEXT NOT NULL,
    access_token_sealed TEXT NOT NULL,
    app_secret_sealed   TEXT NOT NULL,
    verify_token_hash   TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS gateway_upstreams_waba ON gateway_upstreams(waba_id);
CREATE INDEX IF NOT EXISTS gateway_upstreams_verify ON gateway_upstreams(verify_token_hash);

-- Idempotency of forwarded sends: the key is held `pending` while Meta is asked, then `done`
-- with Meta's answer (replayed for 24 h), or removed when Meta did not accept.
CREATE TABLE IF NOT EXISTS gateway_idempotency (
    business_id  TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    state        TEXT NOT NULL,               -- pending | done
    status       BIGINT,
    response     TEXT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (business_id, key)
);

-- Objects of Meta's a gateway tenant may reach through forwarded calls (media ids).
CREATE TABLE IF NOT EXISTS gateway_objects (
    business_id TEXT NOT NULL,
    id          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (business_id, id)
);
