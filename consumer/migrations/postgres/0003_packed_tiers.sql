-- Packed tiers: one row per host and span (raw: a minute of readings; minute tier: an hour of
-- buckets; hour tier: a day of buckets), its records encoded together (see store/block.rs).
-- n = readings (raw) or buckets (rollups) in the block. New writes go here; the row-per-reading
-- tables of 0001 stay readable (and retention empties them), so an older database keeps its data.

CREATE TABLE raw_block (
    host_id BIGINT NOT NULL,
    start BIGINT NOT NULL,
    n BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (host_id, start)
);

CREATE TABLE minute_block (
    host_id BIGINT NOT NULL,
    start BIGINT NOT NULL,
    n BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (host_id, start)
);

CREATE TABLE hour_block (
    host_id BIGINT NOT NULL,
    start BIGINT NOT NULL,
    n BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (host_id, start)
);
