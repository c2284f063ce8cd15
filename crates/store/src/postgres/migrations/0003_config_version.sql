-- greenlight PostgreSQL schema, migration 0003: the configuration version, the twin of the
-- end of sqlite/schema.sql. The writer of every node caches a tenant's settings, numbers,
-- limits, restrictions and webhook targets; any change to those tables bumps this counter in the same
-- transaction, and a writer that finds it moved drops its cache (whichever node wrote).
CREATE TABLE IF NOT EXISTS config_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  BIGINT NOT NULL
);
INSERT INTO config_version (id, n) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;

CREATE OR REPLACE FUNCTION bump_config_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE config_version SET n = n + 1 WHERE id = 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER config_businesses AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON businesses FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
CREATE TRIGGER config_apps AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON apps FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
CREATE TRIGGER config_phone_numbers AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON phone_numbers FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
CREATE TRIGGER config_business_limits AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON business_limits FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
CREATE TRIGGER config_webhook_subscriptions AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON webhook_subscriptions FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
CREATE TRIGGER config_webhook_waba_apps AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON webhook_waba_apps FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
CREATE TRIGGER config_webhook_phone_overrides AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON webhook_phone_overrides FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
CREATE TRIGGER config_restrictions AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON restrictions FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
