-- greenlight PostgreSQL schema, migration 0013: a counter per business shard, by which a
-- shard's writer knows whether anyone else wrote its shard since its own last batch.
--
-- Every batch of a shard's writer (on any node) takes the next value of its shard's sequence in
-- its `BEGIN`, under the shard's lock; every instance-wide batch that runs a job which may change
-- what a send reads of its customer takes the next value of every shard's, and so does an import.
-- A writer whose batch finds the value one past what its own last committed batch took knows
-- that no other batch wrote the shard in between, and keeps the customers' facts and the
-- numbers' pacing buckets its sends left, as SQLite's only writer does (docs/ARCHITECTURE.md,
-- "Several nodes on PostgreSQL"; docs/BENCHMARKS.md, forty-fourth round). Sequences rather than
-- rows of a table: `nextval` changes its page in place (no row version, no index entry; its WAL
-- record comes once in 32 values), and each shard's has a page of its own. A value taken by a
-- batch that rolls back is not given back: the shard's writer then forgets what it kept, which
-- is only a cost. One per shard of `WRITE_SHARDS` (8, a constant of the code).
CREATE SEQUENCE IF NOT EXISTS shard_epoch_0 CACHE 1;
CREATE SEQUENCE IF NOT EXISTS shard_epoch_1 CACHE 1;
CREATE SEQUENCE IF NOT EXISTS shard_epoch_2 CACHE 1;
CREATE SEQUENCE IF NOT EXISTS shard_epoch_3 CACHE 1;
CREATE SEQUENCE IF NOT EXISTS shard_epoch_4 CACHE 1;
CREATE SEQUENCE IF NOT EXISTS shard_epoch_5 CACHE 1;
CREATE SEQUENCE IF NOT EXISTS shard_epoch_6 CACHE 1;
CREATE SEQUENCE IF NOT EXISTS shard_epoch_7 CACHE 1;
