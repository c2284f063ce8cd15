-- greenlight PostgreSQL schema, migration 0012: `reach_log` keeps only its index by business
-- and time; every business-initiated send wrote the one by business and customer, which only
-- the rebuild of `reach_recent` read (sqlite/schema.sql says the same).

DROP INDEX IF EXISTS reach_customer;
