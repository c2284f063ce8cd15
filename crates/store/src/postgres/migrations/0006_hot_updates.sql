-- greenlight PostgreSQL schema, migration 0006: room for HOT updates of the rows every send
-- updates (docs/BENCHMARKS.md, seventh round).
--
-- A message is updated once at least (`sent` → `delivered`). Pages filled to the brim leave its
-- new version no room beside the old one, so the update went to another page and added an
-- entry to each of the table's indexes. With a fifth of each page kept free, the new version
-- stays on its page and no index is written (a heap-only tuple); pruning the page at its next
-- update frees the old version's room again.
ALTER TABLE messages SET (fillfactor = 80);

-- A pacing bucket is updated by every send to its number or pair. Its `updated_at` index made
-- every such update write both indexes (an indexed column changed): it goes, and the purge of
-- refilled buckets, once a minute, reads the table instead.
ALTER TABLE pacing_buckets SET (fillfactor = 70);
DROP INDEX IF EXISTS pacing_buckets_updated;
