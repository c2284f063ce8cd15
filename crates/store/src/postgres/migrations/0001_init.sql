-- greenlight PostgreSQL schema, migration 0001: the twin of the SQLite schema (sqlite/schema.sql).
-- Integers are BIGINT (booleans the same 0/1 integers), JSON is TEXT, so one body of SQL serves both.
-- Times are unix milliseconds of the (virtual) clock
-- unless a column says otherwise. JSON columns hold compact JSON text.

CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS businesses (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    verification TEXT NOT NULL,             -- business_verification_status
    settings     TEXT NOT NULL DEFAULT '{}',
    created_at   BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS apps (
    id          TEXT PRIMARY KEY,
    business_id TEXT NOT NULL,
    secret      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS apps_business ON apps(business_id);

CREATE TABLE IF NOT EXISTS access_tokens (
    hash        TEXT PRIMARY KEY,            -- sha256 of the token; the token itself is never stored
    business_id TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS wabas (
    id          TEXT PRIMARY KEY,
    business_id TEXT NOT NULL,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS wabas_business ON wabas(business_id);

CREATE TABLE IF NOT EXISTS phone_numbers (
    id                   TEXT PRIMARY KEY,
    waba_id              TEXT NOT NULL,
    business_id          TEXT NOT NULL,
    display_phone_number TEXT NOT NULL,
    digits               TEXT NOT NULL,
    verified_name        TEXT NOT NULL,
    quality_rating       TEXT NOT NULL DEFAULT 'GREEN',
    status               TEXT NOT NULL DEFAULT 'CONNECTED',
    name_status          TEXT NOT NULL DEFAULT 'APPROVED',
    new_name_status      TEXT NOT NULL DEFAULT 'NONE',   -- review of a requested display name
    requested_name       TEXT,
    throughput_level     TEXT NOT NULL DEFAULT 'STANDARD',
    profile              TEXT NOT NULL DEFAULT '{}',
    created_at           BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS phone_numbers_waba ON phone_numbers(waba_id);

-- Webhook subscription of a tenant's app (callback, verify token, subscribed fields).
CREATE TABLE IF NOT EXISTS webhook_subscriptions (
    business_id  TEXT NOT NULL,
    app_id       TEXT NOT NULL,
    callback_url TEXT NOT NULL,
    verify_token TEXT NOT NULL,
    fields       TEXT NOT NULL DEFAULT '[]', -- JSON array; empty = every field
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (business_id, app_id)
);

-- Simulated WhatsApp users, instance-wide.
CREATE TABLE IF NOT EXISTS users (
    wa_id       TEXT PRIMARY KEY,
    on_whatsapp BIGINT NOT NULL DEFAULT 1,
    created_at  BIGINT NOT NULL
);

-- Each customer's business-scoped user id (BSUID), per business portfolio.
CREATE TABLE IF NOT EXISTS contacts (
    business_id TEXT NOT NULL,
    wa_id       TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (business_id, wa_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS contacts_user ON contacts(business_id, user_id);

-- Customer-service window per (business number, customer).
CREATE TABLE IF NOT EXISTS windows (
    phone_id        TEXT NOT NULL,
    wa_id           TEXT NOT NULL,
    last_inbound_at BIGINT,
    referral_at     BIGINT,
    fep_until       BIGINT,
    PRIMARY KEY (phone_id, wa_id)
);

CREATE TABLE IF NOT EXISTS messages (
    id              TEXT PRIMARY KEY,        -- wamid
    business_id     TEXT NOT NULL,
    phone_id        TEXT NOT NULL,
    wa_id           TEXT NOT NULL,
    direction       TEXT NOT NULL,           -- 'out' | 'in'
    type            TEXT NOT NULL,
    content         TEXT NOT NULL,           -- the type's payload as sent/received
    text            TEXT,                    -- what the customer sees, when it is text
    category        TEXT,
    pricing         TEXT,
    conversation_id TEXT,
    biz_opaque      TEXT,
    status          TEXT NOT NULL,
    verdicts        TEXT NOT NULL DEFAULT '[]',
    created_at      BIGINT NOT NULL,
    rowid BIGSERIAL     -- insertion order (SQLite's rowid)
);
CREATE INDEX IF NOT EXISTS messages_thread ON messages(phone_id, wa_id, created_at);

CREATE TABLE IF NOT EXISTS statuses (
    message_id TEXT NOT NULL,
    status     TEXT NOT NULL,
    at         BIGINT NOT NULL,
    errors     TEXT,
    rowid BIGSERIAL     -- insertion order (SQLite's rowid)
);
CREATE INDEX IF NOT EXISTS statuses_message ON statuses(message_id);

-- Work that falls due at a (virtual) time: delivered statuses, …
CREATE TABLE IF NOT EXISTS tasks (
    id         BIGSERIAL PRIMARY KEY,
    due_at     BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_due ON tasks(due_at);

-- The webhook outbox: written in the same transaction as the state change it reports.
CREATE TABLE IF NOT EXISTS outbox (
    id              BIGSERIAL PRIMARY KEY,
    business_id     TEXT NOT NULL,
    waba_id         TEXT NOT NULL,
    phone_id        TEXT,
    field           TEXT NOT NULL,
    payload         TEXT NOT NULL,           -- the change's `value`, or a status's fields (store/src/events.rs)
    created_at      BIGINT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending', -- pending | delivered | dead | skipped
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT,
    delivered_at    BIGINT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(state, next_attempt_at);
CREATE INDEX IF NOT EXISTS outbox_business ON outbox(business_id, id);

CREATE TABLE IF NOT EXISTS idempotency (
    business_id  TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response     TEXT NOT NULL,
    wamid        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (business_id, key)
);

CREATE TABLE IF NOT EXISTS media (
    id          TEXT PRIMARY KEY,
    business_id TEXT NOT NULL,
    phone_id    TEXT NOT NULL,
    mime_type   TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    file_size   BIGINT NOT NULL,
    filename    TEXT,
    path        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS templates (
    id                TEXT PRIMARY KEY,
    seq               BIGINT NOT NULL,          -- creation order, for cursors
    business_id       TEXT NOT NULL,
    waba_id           TEXT NOT NULL,
    name              TEXT NOT NULL,
    language          TEXT NOT NULL,
    category          TEXT NOT NULL,             -- current (after any re-categorisation)
    previous_category TEXT,
    status            TEXT NOT NULL,
    rejected_reason   TEXT,
    rejection_info    TEXT,                      -- JSON {reason, recommendation}
    quality_score     TEXT NOT NULL DEFAULT 'UNKNOWN',
    quality_at        BIGINT,
    definition        TEXT NOT NULL,             -- the create body as accepted (normalised)
    review            TEXT,                      -- JSON: the review's signals, for explanation
    paused_until      BIGINT,
    pause_count       BIGINT NOT NULL DEFAULT 0,
    edits             TEXT NOT NULL DEFAULT '[]', -- JSON array of edit times while APPROVED
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    deleted_at        BIGINT
);
CREATE INDEX IF NOT EXISTS templates_name ON templates(waba_id, name, language);
CREATE INDEX IF NOT EXISTS templates_waba ON templates(waba_id, seq);

-- Customer actions (read, block, report, stop_marketing…), kept as evidence.
CREATE TABLE IF NOT EXISTS customer_actions (
    id         BIGSERIAL PRIMARY KEY,
    phone_id   TEXT NOT NULL,
    wa_id      TEXT NOT NULL,
    action     TEXT NOT NULL,
    message_id TEXT,
    reason     TEXT,
    at         BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS customer_actions_pair ON customer_actions(phone_id, wa_id, at);

-- The audit trail: every refusal, every rule-decided failure, every enforcement action.
CREATE TABLE IF NOT EXISTS audit_events (
    id          BIGSERIAL PRIMARY KEY,
    business_id TEXT NOT NULL,
    at          BIGINT NOT NULL,
    kind        TEXT NOT NULL,            -- refusal | failure | enforcement | consent | verification | template
    phone_id    TEXT,
    wa_id       TEXT,
    message_id  TEXT,
    rule        TEXT,
    code        BIGINT,
    details     TEXT NOT NULL,
    verdicts    TEXT
);
CREATE INDEX IF NOT EXISTS audit_business ON audit_events(business_id, at);

-- Consent (opt-in) registry per business and customer. Revocation keeps the row.
CREATE TABLE IF NOT EXISTS opt_ins (
    id              TEXT PRIMARY KEY,
    seq             BIGINT NOT NULL,
    business_id     TEXT NOT NULL,
    waba_id         TEXT NOT NULL,
    wa_id           TEXT NOT NULL,
    scope           TEXT NOT NULL,            -- marketing | utility | all
    source          TEXT NOT NULL,
    proof           TEXT NOT NULL,
    captured_at     BIGINT NOT NULL,
    recorded_by     TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    revoked_at      BIGINT,
    revoked_by      TEXT,
    revocation_proof TEXT
);
CREATE INDEX IF NOT EXISTS opt_ins_customer ON opt_ins(business_id, wa_id);
CREATE INDEX IF NOT EXISTS opt_ins_waba ON opt_ins(waba_id, seq);

-- ---- compliance state (issue: the compliance engine) ------------------------------------

-- Messaging-limit tier per business portfolio, and when it is next evaluated.
CREATE TABLE IF NOT EXISTS business_limits (
    business_id     TEXT PRIMARY KEY,
    tier            TEXT NOT NULL DEFAULT 'TIER_250',
    next_eval_at    BIGINT NOT NULL DEFAULT 0,
    disabled_at     BIGINT,                  -- account disabled by enforcement
    updated_at      BIGINT NOT NULL DEFAULT 0
);

-- Customers reached by business-initiated messages: one row per send (for the moving 24 h
-- count, the 7-day peak and the 30-day unique count).
CREATE TABLE IF NOT EXISTS reach_log (
    business_id TEXT NOT NULL,
    wa_id       TEXT NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS reach_business_at ON reach_log(business_id, at);
CREATE INDEX IF NOT EXISTS reach_customer ON reach_log(business_id, wa_id, at);

-- Marketing templates per customer, for the per-customer marketing cap.
CREATE TABLE IF NOT EXISTS marketing_log (
    business_id TEXT NOT NULL,
    wa_id       TEXT NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS marketing_customer ON marketing_log(business_id, wa_id, at);

-- The customer's own marketing opt-out (WhatsApp's "stop marketing"), per business number.
CREATE TABLE IF NOT EXISTS marketing_prefs (
    phone_id   TEXT NOT NULL,
    wa_id      TEXT NOT NULL,
    stopped    BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (phone_id, wa_id)
);

-- Policy violations with evidence, and the restrictions enforcement imposed.
CREATE TABLE IF NOT EXISTS violations (
    id             TEXT PRIMARY KEY,
    business_id    TEXT NOT NULL,
    kind           TEXT NOT NULL,
    violation_type TEXT NOT NULL,
    evidence       TEXT NOT NULL,
    severe         BIGINT NOT NULL DEFAULT 0,
    at             BIGINT NOT NULL,
    reversed_at    BIGINT,
    appeal_status  TEXT,                      -- NULL | pending | reversed | unchanged
    appeal_reason  TEXT,
    rowid BIGSERIAL     -- insertion order (SQLite's rowid)
);
CREATE INDEX IF NOT EXISTS violations_business ON violations(business_id, at);

CREATE TABLE IF NOT EXISTS restrictions (
    business_id      TEXT NOT NULL,
    restriction_type TEXT NOT NULL,
    expires_at       BIGINT NOT NULL,
    violation_id     TEXT,
    created_at       BIGINT NOT NULL,
    rowid BIGSERIAL     -- insertion order (SQLite's rowid)
);
CREATE INDEX IF NOT EXISTS restrictions_business ON restrictions(business_id, expires_at);

-- Quality: per-number rating state and template pause state.
CREATE TABLE IF NOT EXISTS template_quality (
    template_id  TEXT PRIMARY KEY,
    pause_state  TEXT NOT NULL DEFAULT '{}'   -- JSON TemplatePauseState
);

-- ---- compliance back office ---------------------------------------------------------------

-- Customer feedback (block, report) that rates numbers and templates.
CREATE TABLE IF NOT EXISTS feedback (
    id          BIGSERIAL PRIMARY KEY,
    business_id TEXT NOT NULL,
    phone_id    TEXT NOT NULL,
    wa_id       TEXT NOT NULL,
    kind        TEXT NOT NULL,                -- block | report
    reason      TEXT,
    message_id  TEXT,
    template_id TEXT,                         -- the template the feedback counts for, if any
    at          BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_phone ON feedback(phone_id, at);
CREATE INDEX IF NOT EXISTS feedback_template ON feedback(template_id, at);

-- Since when a number has been RED (persistent RED is a violation).
CREATE TABLE IF NOT EXISTS number_quality (
    phone_id   TEXT PRIMARY KEY,
    red_since  BIGINT,
    updated_at BIGINT NOT NULL
);

-- Business verification requests and decisions (the status itself is businesses.verification).
CREATE TABLE IF NOT EXISTS business_verification (
    business_id  TEXT PRIMARY KEY,
    submitted_at BIGINT,
    decided_at   BIGINT,
    reason       TEXT,
    note         TEXT
);

-- Users a business number blocked (Block Users API): sends to them answer 130403.
CREATE TABLE IF NOT EXISTS blocked_users (
    phone_id TEXT NOT NULL,
    wa_id    TEXT NOT NULL,
    at       BIGINT NOT NULL,
    PRIMARY KEY (phone_id, wa_id)
);

-- ---- Webhook delivery (issue 3) -------------------------------------------------------------
-- outbox.lease_until is wall-clock ms (a lease is about a worker being alive, and must not end
-- when the sandbox clock is advanced); outbox.next_attempt_at is virtual ms (retries fall due
-- when the clock moves). outbox.attempts counts claims and fences the finishing write.

-- The link between a WABA and an app (`/{waba-id}/subscribed_apps`). No row = subscribed, with
-- no override: a tenant's WABA is subscribed to its own app from creation.
CREATE TABLE IF NOT EXISTS webhook_waba_apps (
    waba_id               TEXT NOT NULL,
    app_id                TEXT NOT NULL,
    business_id           TEXT NOT NULL,
    subscribed            BIGINT NOT NULL DEFAULT 1,
    override_callback_uri TEXT,
    override_verify_token TEXT,
    updated_at            BIGINT NOT NULL,
    PRIMARY KEY (waba_id, app_id)
);

-- Every HTTP attempt of an outbox event.
CREATE TABLE IF NOT EXISTS webhook_attempts (
    id          BIGSERIAL PRIMARY KEY,
    outbox_id   BIGINT NOT NULL,
    attempt     BIGINT NOT NULL,
    url         TEXT NOT NULL,
    at          BIGINT NOT NULL,            -- virtual ms when the attempt started
    status_code BIGINT,
    latency_ms  BIGINT NOT NULL,
    error       TEXT,
    outcome     TEXT NOT NULL                -- delivered | retry | dead
);
CREATE INDEX IF NOT EXISTS webhook_attempts_outbox ON webhook_attempts(outbox_id, id);

-- Replays restart an event's retry window (its bytes, ids and `time` stay the same).
CREATE TABLE IF NOT EXISTS webhook_replays (
    outbox_id   BIGINT PRIMARY KEY,
    replayed_at BIGINT NOT NULL
);

CREATE INDEX IF NOT EXISTS outbox_business_state ON outbox(business_id, state, id);
-- Claims walk businesses with pending events (one seek each), then each one's due events.
CREATE INDEX IF NOT EXISTS outbox_claim ON outbox(state, business_id, next_attempt_at);

-- A phone number's own callback (`POST /{phone-number-id}` `webhook_configuration`): first in
-- precedence, before the WABA's override and the app's callback.
CREATE TABLE IF NOT EXISTS webhook_phone_overrides (
    phone_id     TEXT PRIMARY KEY,
    business_id  TEXT NOT NULL,
    callback_uri TEXT NOT NULL,
    verify_token TEXT NOT NULL,
    updated_at   BIGINT NOT NULL
);

-- MAX(seq) lookups for the next sequence number stay O(log n).
CREATE INDEX IF NOT EXISTS opt_ins_seq ON opt_ins(seq);
CREATE INDEX IF NOT EXISTS templates_seq ON templates(seq);

-- PostgreSQL only: the pacing token buckets, shared by every node (SQLite keeps them in the
-- writer's memory). wa_id '' is the number's throughput bucket.
CREATE TABLE IF NOT EXISTS pacing_buckets (
    phone_id   TEXT NOT NULL,
    wa_id      TEXT NOT NULL,
    tokens     DOUBLE PRECISION NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (phone_id, wa_id)
);
-- refilled buckets are equal to absent ones: the scheduler drops them (see ops.rs, run_due)
CREATE INDEX IF NOT EXISTS pacing_buckets_updated ON pacing_buckets(updated_at);
