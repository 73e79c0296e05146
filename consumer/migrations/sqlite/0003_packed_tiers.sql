-- Packed tiers: one row per host and span (raw: a minute of readings; minute tier: an hour of
-- buckets; hour tier: a day of buckets), its records encoded together (see store/block.rs).
-- n = readings (raw) or buckets (rollups) in the block. New writes go here; the row-per-reading
-- tables of 0001 stay readable (and retention empties them), so an older database keeps its data.
-- Rowid tables (not WITHOUT ROWID): a block of ~1 KB stays on its page instead of overflowing.

CREATE TABLE raw_block (
    host_id INTEGER NOT NULL,
    start INTEGER NOT NULL,
    n INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (host_id, start)
);

CREATE TABLE minute_block (
    host_id INTEGER NOT NULL,
    start INTEGER NOT NULL,
    n INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (host_id, start)
);

CREATE TABLE hour_block (
    host_id INTEGER NOT NULL,
    start INTEGER NOT NULL,
    n INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (host_id, start)
);
