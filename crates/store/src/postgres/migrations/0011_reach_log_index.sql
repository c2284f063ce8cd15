-- greenlight PostgreSQL schema, migration 0011: `reach_log` keeps only its index by business
-- and time; every business-initiated send wrote the one by business and customer, which only
-- the rebuild of `reach_recent` and the gateway's undo of one row read, and both can walk the
-- other (sqlite/schema.sql says the same).

DROP INDEX IF EXISTS reach_customer;
