-- greenlight PostgreSQL schema, migration 0008: every text column compares byte by byte
-- (docs/BENCHMARKS.md, eleventh round).
--
-- A database's default collation applies to every text column created without one. Unless it
-- is literally "C" or "POSIX", PostgreSQL compares two strings by copying both into
-- NUL-terminated buffers and calling the C library's strcoll, even for a collation such as
-- C.UTF-8 that orders by code point anyway. Every index descent on an id, a wamid or a phone
-- number pays that. With the "C" collation the comparison is a memcmp. Under C.UTF-8 this
-- saves little (the comparisons fell from 1.1 % to 0.5 % of the machine's samples in the
-- benchmark's PostgreSQL send row); under a linguistic collation, such as en-US, each
-- comparison of two wamids cost ~70 ns more than under "C".
--
-- It also makes the twins agree: SQLite compares text bytewise (its BINARY collation), and for
-- UTF-8 the byte order is the code point order, so lists sorted by a text column come out in
-- the same order on both backends whatever the database's default collation.
--
-- Every text column of greenlight's tables changes, one ALTER TABLE per table so that each
-- table's indexes are rebuilt once, under the migration's locks: on a large database the first
-- start of this version takes a while. The data is not rewritten (the type stays `text`). A later
-- migration that adds a text column gives it COLLATE "C"; a store test checks that none is
-- left without it.
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN
        SELECT c.relname AS table_name,
               string_agg(format('ALTER COLUMN %I TYPE text COLLATE "C"', a.attname), ', '
                          ORDER BY a.attnum) AS changes
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        WHERE c.relnamespace = current_schema()::regnamespace
          AND c.relkind IN ('r', 'p')
          AND a.attnum > 0 AND NOT a.attisdropped
          AND a.atttypid = 'text'::regtype
          AND a.attcollation <> 'pg_catalog."C"'::regcollation
        GROUP BY c.relname
        ORDER BY c.relname
    LOOP
        EXECUTE format('ALTER TABLE %I %s', t.table_name, t.changes);
    END LOOP;
END
$$;
