-- greenlight PostgreSQL schema, migration 0010: templates join the configuration the writers
-- cache (a send's template, parsed, by WABA, name and language), so a change to them bumps the
-- counter as a change to the tables of migration 0003 does (sqlite/schema.sql says the same).

CREATE TRIGGER config_templates AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON templates FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
