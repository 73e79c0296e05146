-- History store, PostgreSQL. Narrow integer rows: times in unix seconds (hosts' first and
-- last seen in milliseconds), percentages in hundredths, load averages in thousandths, bytes as
-- they are. Hosts and their disks / interfaces get small ids instead of repeated strings.

CREATE TABLE store_meta (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE hosts (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    os_name TEXT NOT NULL,
    os_version TEXT NOT NULL,
    kernel TEXT NOT NULL,
    cpu_brand TEXT NOT NULL,
    core_count BIGINT,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
);

-- A host's disks (kind 0, name = mount point) and network interfaces (kind 1).
CREATE TABLE items (
    id BIGSERIAL PRIMARY KEY,
    host_id BIGINT NOT NULL,
    kind BIGINT NOT NULL,
    name TEXT NOT NULL,
    UNIQUE (host_id, kind, name)
);

-- Raw tier: one row per reading; (host, time, seq) makes a redelivered reading a no-op.
CREATE TABLE raw_host (
    host_id BIGINT NOT NULL,
    ts BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    cpu BIGINT NOT NULL,
    mem_used BIGINT NOT NULL,
    mem_total BIGINT NOT NULL,
    mem_pct BIGINT NOT NULL,
    swap_used BIGINT NOT NULL,
    swap_total BIGINT NOT NULL,
    load1 BIGINT,
    load5 BIGINT,
    load15 BIGINT,
    PRIMARY KEY (host_id, ts, seq)
);

-- Raw tier per disk (v1 used bytes, v2 total bytes, v3 usage hundredths of a percent) and per
-- interface (v1 received, v2 transmitted bytes per second, v3 null).
CREATE TABLE raw_item (
    host_id BIGINT NOT NULL,
    ts BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    item_id BIGINT NOT NULL,
    v1 BIGINT NOT NULL,
    v2 BIGINT NOT NULL,
    v3 BIGINT,
    PRIMARY KEY (host_id, ts, seq, item_id)
);

-- Minute tier: running min / sum / max and counts per bucket (bucket = start, unix seconds);
-- avg = sum / n, so a late reading updates its bucket exactly.
CREATE TABLE minute_host (
    host_id BIGINT NOT NULL,
    bucket BIGINT NOT NULL,
    n BIGINT NOT NULL,
    cpu_min BIGINT NOT NULL,
    cpu_sum BIGINT NOT NULL,
    cpu_max BIGINT NOT NULL,
    mem_used_min BIGINT NOT NULL,
    mem_used_sum BIGINT NOT NULL,
    mem_used_max BIGINT NOT NULL,
    mem_total_min BIGINT NOT NULL,
    mem_total_sum BIGINT NOT NULL,
    mem_total_max BIGINT NOT NULL,
    mem_pct_min BIGINT NOT NULL,
    mem_pct_sum BIGINT NOT NULL,
    mem_pct_max BIGINT NOT NULL,
    swap_used_min BIGINT NOT NULL,
    swap_used_sum BIGINT NOT NULL,
    swap_used_max BIGINT NOT NULL,
    swap_total_min BIGINT NOT NULL,
    swap_total_sum BIGINT NOT NULL,
    swap_total_max BIGINT NOT NULL,
    load_n BIGINT NOT NULL,
    load1_min BIGINT,
    load1_sum BIGINT,
    load1_max BIGINT,
    load5_min BIGINT,
    load5_sum BIGINT,
    load5_max BIGINT,
    load15_min BIGINT,
    load15_sum BIGINT,
    load15_max BIGINT,
    PRIMARY KEY (host_id, bucket)
);

CREATE TABLE minute_item (
    host_id BIGINT NOT NULL,
    bucket BIGINT NOT NULL,
    item_id BIGINT NOT NULL,
    n BIGINT NOT NULL,
    v1_min BIGINT NOT NULL,
    v1_sum BIGINT NOT NULL,
    v1_max BIGINT NOT NULL,
    v2_min BIGINT NOT NULL,
    v2_sum BIGINT NOT NULL,
    v2_max BIGINT NOT NULL,
    v3_min BIGINT,
    v3_sum BIGINT,
    v3_max BIGINT,
    PRIMARY KEY (host_id, bucket, item_id)
);

-- Hour tier: running min / sum / max and counts per bucket (bucket = start, unix seconds);
-- avg = sum / n, so a late reading updates its bucket exactly.
CREATE TABLE hour_host (
    host_id BIGINT NOT NULL,
    bucket BIGINT NOT NULL,
    n BIGINT NOT NULL,
    cpu_min BIGINT NOT NULL,
    cpu_sum BIGINT NOT NULL,
    cpu_max BIGINT NOT NULL,
    mem_used_min BIGINT NOT NULL,
    mem_used_sum BIGINT NOT NULL,
    mem_used_max BIGINT NOT NULL,
    mem_total_min BIGINT NOT NULL,
    mem_total_sum BIGINT NOT NULL,
    mem_total_max BIGINT NOT NULL,
    mem_pct_min BIGINT NOT NULL,
    mem_pct_sum BIGINT NOT NULL,
    mem_pct_max BIGINT NOT NULL,
    swap_used_min BIGINT NOT NULL,
    swap_used_sum BIGINT NOT NULL,
    swap_used_max BIGINT NOT NULL,
    swap_total_min BIGINT NOT NULL,
    swap_total_sum BIGINT NOT NULL,
    swap_total_max BIGINT NOT NULL,
    load_n BIGINT NOT NULL,
    load1_min BIGINT,
    load1_sum BIGINT,
    load1_max BIGINT,
    load5_min BIGINT,
    load5_sum BIGINT,
    load5_max BIGINT,
    load15_min BIGINT,
    load15_sum BIGINT,
    load15_max BIGINT,
    PRIMARY KEY (host_id, bucket)
);

CREATE TABLE hour_item (
    host_id BIGINT NOT NULL,
    bucket BIGINT NOT NULL,
    item_id BIGINT NOT NULL,
    n BIGINT NOT NULL,
    v1_min BIGINT NOT NULL,
    v1_sum BIGINT NOT NULL,
    v1_max BIGINT NOT NULL,
    v2_min BIGINT NOT NULL,
    v2_sum BIGINT NOT NULL,
    v2_max BIGINT NOT NULL,
    v3_min BIGINT,
    v3_sum BIGINT,
    v3_max BIGINT,
    PRIMARY KEY (host_id, bucket, item_id)
);
