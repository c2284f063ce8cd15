-- greenlight SQLite schema, version 1. Times are unix milliseconds of the (virtual) clock
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
    created_at   INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS apps (
    id          TEXT PRIMARY KEY,
    business_id TEXT NOT NULL,
    secret      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS apps_business ON apps(business_id);

CREATE TABLE IF NOT EXISTS access_tokens (
    hash        TEXT PRIMARY KEY,            -- sha256 of the token; the token itself is never stored
    business_id TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS wabas (
    id          TEXT PRIMARY KEY,
    business_id TEXT NOT NULL,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
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
    created_at           INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS phone_numbers_waba ON phone_numbers(waba_id);

-- Webhook subscription of a tenant's app (callback, verify token, subscribed fields).
CREATE TABLE IF NOT EXISTS webhook_subscriptions (
    business_id  TEXT NOT NULL,
    app_id       TEXT NOT NULL,
    callback_url TEXT NOT NULL,
    verify_token TEXT NOT NULL,
    fields       TEXT NOT NULL DEFAULT '[]', -- JSON array; empty = every field
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (business_id, app_id)
);

-- Simulated WhatsApp users, instance-wide.
CREATE TABLE IF NOT EXISTS users (
    wa_id       TEXT PRIMARY KEY,
    on_whatsapp INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL
);

-- Each customer's business-scoped user id (BSUID), per business portfolio.
CREATE TABLE IF NOT EXISTS contacts (
    business_id TEXT NOT NULL,
    wa_id       TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (business_id, wa_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS contacts_user ON contacts(business_id, user_id);

-- Customer-service window per (business number, customer).
CREATE TABLE IF NOT EXISTS windows (
    phone_id        TEXT NOT NULL,
    wa_id           TEXT NOT NULL,
    last_inbound_at INTEGER,
    referral_at     INTEGER,
    fep_until       INTEGER,
    PRIMARY KEY (phone_id, wa_id)
) WITHOUT ROWID;

-- `sent_at` and `delivered_at` are the sandbox's `sent` and `delivered` statuses of an outbound
-- message: its status history without a `statuses` row each (null for the others, whose
-- statuses are rows). `SqlStore::open` adds them to an older database.
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
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,                 -- the sandbox's `sent` status (see above)
    delivered_at    INTEGER,                 -- and its `delivered`
    pair_prev       INTEGER,                 -- the thread's previous message (rowid; 0: none)
    number_prev     INTEGER                  -- the number's previous message (rowid; 0: none)
);
-- A thread's messages and a number's are chains, not an index (sqlite/chains.rs): each
-- message's previous one in its thread (`pair_prev`) and in its number (`number_prev`), by
-- rowid, in its own row (null: not linked; `SqlStore::open` adds the columns to an older
-- database and moves the links of its table `message_links` into them).
-- The newest message of each thread (`wa_id`) and of each number (`wa_id` ''), up to the
-- message `meta.chains_upto`: those after it are found from their rows.
CREATE TABLE IF NOT EXISTS message_heads (
    phone_id TEXT NOT NULL,
    wa_id    TEXT NOT NULL,
    head     INTEGER NOT NULL,
    PRIMARY KEY (phone_id, wa_id)
) WITHOUT ROWID;

-- Every other status of a message: `failed`, `read`, and those Meta reports to the gateway.
CREATE TABLE IF NOT EXISTS statuses (
    message_id TEXT NOT NULL,
    status     TEXT NOT NULL,
    at         INTEGER NOT NULL,
    errors     TEXT
);
CREATE INDEX IF NOT EXISTS statuses_message ON statuses(message_id);

-- Work that falls due at a (virtual) time: delivered statuses, …
CREATE TABLE IF NOT EXISTS tasks (
    id         INTEGER PRIMARY KEY,
    due_at     INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_due ON tasks(due_at);

-- The webhook outbox: written in the same transaction as the state change it reports.
-- Its ids (the deliveries API's) are never reused without `AUTOINCREMENT`, whose bookkeeping
-- (a `sqlite_sequence` read and write with every insert) cost a send ~3 % of the writer: a
-- new id is one past the newest row's, and the purge never deletes the newest row
-- (`purge_webhooks`). Databases created with `AUTOINCREMENT` keep it; both behave the same.
CREATE TABLE IF NOT EXISTS outbox (
    id              INTEGER PRIMARY KEY,
    business_id     TEXT NOT NULL,
    waba_id         TEXT NOT NULL,
    phone_id        TEXT,
    field           TEXT NOT NULL,
    payload         TEXT NOT NULL,           -- the change's `value`, or a status's fields (store/src/events.rs)
    created_at      INTEGER NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending', -- pending | delivered | dead | skipped
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    delivered_at    INTEGER
);

CREATE TABLE IF NOT EXISTS idempotency (
    business_id  TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response     TEXT NOT NULL,
    wamid        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (business_id, key)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS media (
    id          TEXT PRIMARY KEY,
    business_id TEXT NOT NULL,
    phone_id    TEXT NOT NULL,
    mime_type   TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    file_size   INTEGER NOT NULL,
    filename    TEXT,
    path        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS templates (
    id                TEXT PRIMARY KEY,
    seq               INTEGER NOT NULL,          -- creation order, for cursors
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
    quality_at        INTEGER,
    definition        TEXT NOT NULL,             -- the create body as accepted (normalised)
    review            TEXT,                      -- JSON: the review's signals, for explanation
    paused_until      INTEGER,
    pause_count       INTEGER NOT NULL DEFAULT 0,
    edits             TEXT NOT NULL DEFAULT '[]', -- JSON array of edit times while APPROVED
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    deleted_at        INTEGER
);
CREATE INDEX IF NOT EXISTS templates_name ON templates(waba_id, name, language);
CREATE INDEX IF NOT EXISTS templates_waba ON templates(waba_id, seq);

-- Customer actions (read, block, report, stop_marketing…), kept as evidence.
CREATE TABLE IF NOT EXISTS customer_actions (
    id         INTEGER PRIMARY KEY,
    phone_id   TEXT NOT NULL,
    wa_id      TEXT NOT NULL,
    action     TEXT NOT NULL,
    message_id TEXT,
    reason     TEXT,
    at         INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS customer_actions_pair ON customer_actions(phone_id, wa_id, at);

-- The audit trail: every refusal, every rule-decided failure, every enforcement action.
CREATE TABLE IF NOT EXISTS audit_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    business_id TEXT NOT NULL,
    at          INTEGER NOT NULL,
    kind        TEXT NOT NULL,            -- refusal | failure | enforcement | consent | verification | template
    phone_id    TEXT,
    wa_id       TEXT,
    message_id  TEXT,
    rule        TEXT,
    code        INTEGER,
    details     TEXT NOT NULL,
    verdicts    TEXT
);
CREATE INDEX IF NOT EXISTS audit_business ON audit_events(business_id, at);

-- Consent (opt-in) registry per business and customer. Revocation keeps the row.
CREATE TABLE IF NOT EXISTS opt_ins (
    id              TEXT PRIMARY KEY,
    seq             INTEGER NOT NULL,
    business_id     TEXT NOT NULL,
    waba_id         TEXT NOT NULL,
    wa_id           TEXT NOT NULL,
    scope           TEXT NOT NULL,            -- marketing | utility | all
    source          TEXT NOT NULL,
    proof           TEXT NOT NULL,
    captured_at     INTEGER NOT NULL,
    recorded_by     TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    revoked_at      INTEGER,
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
    next_eval_at    INTEGER NOT NULL DEFAULT 0,
    disabled_at     INTEGER,                  -- account disabled by enforcement
    updated_at      INTEGER NOT NULL DEFAULT 0
);

-- Customers reached by business-initiated messages: one row per send (for the moving 24 h
-- count, the 7-day peak and the 30-day unique count).
CREATE TABLE IF NOT EXISTS reach_log (
    business_id TEXT NOT NULL,
    wa_id       TEXT NOT NULL,
    at          INTEGER NOT NULL
);
-- A business's rows are found by blocks of the log's rowids (`sqlite/reach_blocks.rs`): a row
-- per business and block of 4096 rowids (`rowid >> 12`) it has rows in, with bounds on their
-- times (`min_at` at most, `max_at` at least, each row's `at`). The index by business and time
-- it replaces, `reach_business_at` (PostgreSQL's), dirtied a page per business a commit;
-- `SqlStore::open` writes an older database's blocks and drops that index.
CREATE TABLE IF NOT EXISTS reach_blocks (
    business_id TEXT NOT NULL,
    block       INTEGER NOT NULL,
    min_at      INTEGER NOT NULL,
    max_at      INTEGER NOT NULL,
    PRIMARY KEY (business_id, block)
) WITHOUT ROWID;
-- By business and customer: every business-initiated send wrote it, and since the running
-- count answers "reached in the last 24 h?" only that count's build and the gateway's undo of
-- one row read it; both find a business's rows by its blocks as well (its rows since a time, or
-- at one time).
DROP INDEX IF EXISTS reach_customer;

-- Marketing templates per customer, for the per-customer marketing cap.
CREATE TABLE IF NOT EXISTS marketing_log (
    business_id TEXT NOT NULL,
    wa_id       TEXT NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS marketing_customer ON marketing_log(business_id, wa_id, at);

-- The customer's own marketing opt-out (WhatsApp's "stop marketing"), per business number.
CREATE TABLE IF NOT EXISTS marketing_prefs (
    phone_id   TEXT NOT NULL,
    wa_id      TEXT NOT NULL,
    stopped    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (phone_id, wa_id)
) WITHOUT ROWID;

-- Policy violations with evidence, and the restrictions enforcement imposed.
CREATE TABLE IF NOT EXISTS violations (
    id             TEXT PRIMARY KEY,
    business_id    TEXT NOT NULL,
    kind           TEXT NOT NULL,
    violation_type TEXT NOT NULL,
    evidence       TEXT NOT NULL,
    severe         INTEGER NOT NULL DEFAULT 0,
    at             INTEGER NOT NULL,
    reversed_at    INTEGER,
    appeal_status  TEXT,                      -- NULL | pending | reversed | unchanged
    appeal_reason  TEXT
);
CREATE INDEX IF NOT EXISTS violations_business ON violations(business_id, at);

CREATE TABLE IF NOT EXISTS restrictions (
    business_id      TEXT NOT NULL,
    restriction_type TEXT NOT NULL,
    expires_at       INTEGER NOT NULL,
    violation_id     TEXT,
    created_at       INTEGER NOT NULL
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
    id          INTEGER PRIMARY KEY,
    business_id TEXT NOT NULL,
    phone_id    TEXT NOT NULL,
    wa_id       TEXT NOT NULL,
    kind        TEXT NOT NULL,                -- block | report
    reason      TEXT,
    message_id  TEXT,
    template_id TEXT,                         -- the template the feedback counts for, if any
    at          INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_phone ON feedback(phone_id, at);
CREATE INDEX IF NOT EXISTS feedback_template ON feedback(template_id, at);

-- Since when a number has been RED (persistent RED is a violation).
CREATE TABLE IF NOT EXISTS number_quality (
    phone_id   TEXT PRIMARY KEY,
    red_since  INTEGER,
    updated_at INTEGER NOT NULL
);

-- Business verification requests and decisions (the status itself is businesses.verification).
CREATE TABLE IF NOT EXISTS business_verification (
    business_id  TEXT PRIMARY KEY,
    submitted_at INTEGER,
    decided_at   INTEGER,
    reason       TEXT,
    note         TEXT
);

-- Users a business number blocked (Block Users API): sends to them answer 130403.
CREATE TABLE IF NOT EXISTS blocked_users (
    phone_id TEXT NOT NULL,
    wa_id    TEXT NOT NULL,
    at       INTEGER NOT NULL,
    PRIMARY KEY (phone_id, wa_id)
) WITHOUT ROWID;

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
    subscribed            INTEGER NOT NULL DEFAULT 1,
    override_callback_uri TEXT,
    override_verify_token TEXT,
    updated_at            INTEGER NOT NULL,
    PRIMARY KEY (waba_id, app_id)
) WITHOUT ROWID;

-- Every HTTP attempt of an outbox event.
CREATE TABLE IF NOT EXISTS webhook_attempts (
    id          INTEGER PRIMARY KEY,
    outbox_id   INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    url         TEXT NOT NULL,
    at          INTEGER NOT NULL,            -- virtual ms when the attempt started
    status_code INTEGER,
    latency_ms  INTEGER NOT NULL,
    error       TEXT,
    outcome     TEXT NOT NULL                -- delivered | retry | dead
);
CREATE INDEX IF NOT EXISTS webhook_attempts_outbox ON webhook_attempts(outbox_id, id);

-- Replays restart an event's retry window (its bytes, ids and `time` stay the same).
CREATE TABLE IF NOT EXISTS webhook_replays (
    outbox_id   INTEGER PRIMARY KEY,
    replayed_at INTEGER NOT NULL
);

-- The outbox's indexes. Every index is written with every event, so the ones only some events
-- need are partial: an event nobody can receive (written `skipped`) costs the table alone (and
-- now and then a row of `outbox_blocks`), a pending one the table and three indexes, and leaves
-- one of them when it is done.
-- The partial ones lead with `state` although it is constant in them: without statistics,
-- SQLite's planner prefers the index matching more of a statement's terms.
-- Events by state and business, newest first, but for skipped ones: the deliveries API (every
-- state is one walk per state, merged), replays of dead events, the claim's walk over
-- businesses with pending events (one seek each), and the purge's walk over a business's
-- delivered events, oldest first. Until `outbox_listed`, the index `outbox_state` held every
-- event; an event written `skipped` (nobody can receive it: most of a sandbox's) put its entry
-- among its business's, and with many businesses a commit dirtied a page of that index per
-- business, more pages than the table's own (docs/BENCHMARKS.md, thirtieth round). Skipped
-- events are found through `outbox_blocks` instead; statements state the condition
-- (`state <> 'skipped'`) so that the planner takes the index. A database without
-- `meta.outbox_blocks` (one from before them) gets its blocks written, and `outbox_state`
-- dropped, when it is opened.
DROP INDEX IF EXISTS outbox_business_state;
CREATE INDEX IF NOT EXISTS outbox_listed ON outbox(state, business_id, id) WHERE state <> 'skipped';
-- The blocks of 4096 outbox ids (`id >> 12`) a business has events in, of any state (a pending
-- event may become skipped): written by the first event of a business in a block, so a few
-- rows per 4096 events. A business's skipped events are read block by block, newest first,
-- each block a range of ids. The purge drops a block's row with its business's last event in it.
CREATE TABLE IF NOT EXISTS outbox_blocks (
    business_id TEXT NOT NULL,
    block       INTEGER NOT NULL,
    PRIMARY KEY (business_id, block)
) WITHOUT ROWID;
-- A business's due events, in order, for the claim.
DROP INDEX IF EXISTS outbox_claim;
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(state, business_id, next_attempt_at) WHERE state = 'pending';
-- Whether anything is due (the worker's poll).
DROP INDEX IF EXISTS outbox_due;
CREATE INDEX IF NOT EXISTS outbox_pending_due ON outbox(state, next_attempt_at) WHERE state = 'pending';
-- Done events by age for the purge were an index of their own, written with every event (a
-- tenth of a send's work on the writer); the purge walks `outbox_listed` and the table instead.
DROP INDEX IF EXISTS outbox_done;
DROP INDEX IF EXISTS outbox_business;

-- A phone number's own callback (`POST /{phone-number-id}` `webhook_configuration`): first in
-- precedence, before the WABA's override and the app's callback.
CREATE TABLE IF NOT EXISTS webhook_phone_overrides (
    phone_id     TEXT PRIMARY KEY,
    business_id  TEXT NOT NULL,
    callback_uri TEXT NOT NULL,
    verify_token TEXT NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- MAX(seq) lookups for the next sequence number stay O(log n).
CREATE INDEX IF NOT EXISTS opt_ins_seq ON opt_ins(seq);
CREATE INDEX IF NOT EXISTS templates_seq ON templates(seq);

-- ---- gateway mode (docs/GATEWAY.md) -------------------------------------------------------

-- A gateway tenant's upstream credentials: Meta's token and app secret sealed by the server
-- (AEAD, key from configuration), the verify token only as a hash. The WABA and phone number
-- ids of a gateway tenant are Meta's own (rows of `wabas` / `phone_numbers`).
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
    status       INTEGER,
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

-- ---- Configuration version (the writer's cache) --------------------------------------------
-- The writer keeps what the send path reads on every message but rarely changes (a tenant's
-- settings, its numbers, its limits and restrictions, where its webhooks go, its templates) in memory. Any change to those
-- tables bumps this counter (triggers below, in the same transaction), and the writer drops its
-- cache when the counter moved, whoever wrote (a job of its own, an import, another node).
CREATE TABLE IF NOT EXISTS config_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT OR IGNORE INTO config_version (id, n) VALUES (1, 0);
CREATE TRIGGER IF NOT EXISTS config_businesses_insert AFTER INSERT ON businesses BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS config_businesses_update AFTER UPDATE ON businesses BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS config_businesses_delete AFTER DELETE ON businesses BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS config_apps_insert AFTER INSERT ON apps BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS config_apps_update AFTER UPDATE ON apps BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS config_apps_delete AFTER DELETE ON apps BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS config_phone_numbers_insert AFTER INSERT ON phone_numbers BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS config_phone_numbers_update AFTER UPDATE ON phone_numbers BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS config_phone_numbers_delete AFTER DELETE ON phone_numbers BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS config_business_limits_insert AFTER INSERT ON business_limits BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS config_business_limits_update AFTER UPDATE ON business_limits BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS config_business_limits_delete AFTER DELETE ON business_limits BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS config_webhook_subscriptions_insert AFTER INSERT ON webhook_subscriptions BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS config_webhook_subscriptions_update AFTER UPDATE ON webhook_subscriptions BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS config_webhook_subscriptions_delete AFTER DELETE ON webhook_subscriptions BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS config_webhook_waba_apps_insert AFTER INSERT ON webhook_waba_apps BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS config_webhook_waba_apps_update AFTER UPDATE ON webhook_waba_apps BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS config_webhook_waba_apps_delete AFTER DELETE ON webhook_waba_apps BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS config_webhook_phone_overrides_insert AFTER INSERT ON webhook_phone_overrides BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS config_webhook_phone_overrides_update AFTER UPDATE ON webhook_phone_overrides BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS config_webhook_phone_overrides_delete AFTER DELETE ON webhook_phone_overrides BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS config_restrictions_insert AFTER INSERT ON restrictions BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS config_restrictions_update AFTER UPDATE ON restrictions BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS config_restrictions_delete AFTER DELETE ON restrictions BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS config_templates_insert AFTER INSERT ON templates BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS config_templates_update AFTER UPDATE ON templates BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS config_templates_delete AFTER DELETE ON templates BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
-- Consent records are not configuration, but the writer keeps a customer's with its facts
-- (sqlite/ops.rs, `PairFacts`): a record written by another process (`greenlight optin import`)
-- moves the counter too, so that the next send reads them afresh.
CREATE TRIGGER IF NOT EXISTS config_opt_ins_insert AFTER INSERT ON opt_ins BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS config_opt_ins_update AFTER UPDATE ON opt_ins BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS config_opt_ins_delete AFTER DELETE ON opt_ins BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;

-- The messaging limit's running count (docs/COMPLIANCE.md), the customers reached by
-- business-initiated sends in the last 24 h, is the writer's memory on SQLite (`ReachSet`:
-- `reach_log` read forward). Its tables, which every template send wrote (an upsert that moved
-- the customer's entry in an index: ~12,000 instructions a send), are PostgreSQL's alone now;
-- a database that has them loses them, so that an older build opening it again builds its
-- count from the log rather than trusting one nobody kept.
DROP TABLE IF EXISTS reach_recent;
DROP TABLE IF EXISTS reach_counts;
