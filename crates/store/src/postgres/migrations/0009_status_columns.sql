-- greenlight PostgreSQL schema, migration 0009: the sandbox's `sent` and `delivered` statuses
-- are columns of the message (docs/BENCHMARKS.md, fifteenth round).
--
-- Every sandbox send wrote a `statuses` row for its `sent` and another for its `delivered`, each
-- with an entry in `statuses_message`: two rows and two index entries of the ~ten a message
-- cost. The message row already carries the message's state, and its move to `delivered`
-- already rewrites it (heap-only, see 0007), so the two times go there instead. `statuses` keeps
-- every other status (`failed`, `read`, and those Meta reports to the gateway), whose messages
-- leave the columns null. Rows written before this migration stay as they are: a message's
-- history is its columns and its rows, in time order.
--
-- Stop every node of an older version before the first node of this one starts: an older node
-- reads only the rows, so beside newer ones it would list sandbox messages without their `sent`
-- and `delivered` and rate quality without their deliveries (a gateway's messages are
-- unaffected: their statuses stay rows).
ALTER TABLE messages ADD COLUMN IF NOT EXISTS sent_at BIGINT,
    ADD COLUMN IF NOT EXISTS delivered_at BIGINT;
