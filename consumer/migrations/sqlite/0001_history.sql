-- History store, SQLite. Narrow integer rows: times in unix seconds (hosts' first and
-- last seen in milliseconds), percentages in hundredths, load averages in thousandths, bytes as
-- they are. Hosts and their disks / interfaces get small ids instead of repeated strings.

CREATE TABLE store_meta (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE hosts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    os_name TEXT NOT NULL,
    os_version TEXT NOT NULL,
    kernel TEXT NOT NULL,
    cpu_brand TEXT NOT NULL,
    core_count INTEGER,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL
);

-- A host's disks (kind 0, name = mount point) and network interfaces (kind 1).
CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    host_id INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    name TEXT NOT NULL,
    UNIQUE (host_id, kind, name)
);

-- Raw tier: one row per reading; (host, time, seq) makes a redelivered reading a no-op.
CREATE TABLE raw_host (
    host_id INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    cpu INTEGER NOT NULL,
    mem_used INTEGER NOT NULL,
    mem_total INTEGER NOT NULL,
    mem_pct INTEGER NOT NULL,
    swap_used INTEGER NOT NULL,
    swap_total INTEGER NOT NULL,
    load1 INTEGER,
    load5 INTEGER,
    load15 INTEGER,
    PRIMARY KEY (host_id, ts, seq)
) WITHOUT ROWID;

-- Raw tier per disk (v1 used bytes, v2 total bytes, v3 usage hundredths of a percent) and per
-- interface (v1 received, v2 transmitted bytes per second, v3 null).
CREATE TABLE raw_item (
    host_id INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    item_id INTEGER NOT NULL,
    v1 INTEGER NOT NULL,
    v2 INTEGER NOT NULL,
    v3 INTEGER,
    PRIMARY KEY (host_id, ts, seq, item_id)
) WITHOUT ROWID;

-- Minute tier: running min / sum / max and counts per bucket (bucket = start, unix seconds);
-- avg = sum / n, so a late reading updates its bucket exactly.
CREATE TABLE minute_host (
    host_id INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    n INTEGER NOT NULL,
    cpu_min INTEGER NOT NULL,
    cpu_sum INTEGER NOT NULL,
    cpu_max INTEGER NOT NULL,
    mem_used_min INTEGER NOT NULL,
    mem_used_sum INTEGER NOT NULL,
    mem_used_max INTEGER NOT NULL,
    mem_total_min INTEGER NOT NULL,
    mem_total_sum INTEGER NOT NULL,
    mem_total_max INTEGER NOT NULL,
    mem_pct_min INTEGER NOT NULL,
    mem_pct_sum INTEGER NOT NULL,
    mem_pct_max INTEGER NOT NULL,
    swap_used_min INTEGER NOT NULL,
    swap_used_sum INTEGER NOT NULL,
    swap_used_max INTEGER NOT NULL,
    swap_total_min INTEGER NOT NULL,
    swap_total_sum INTEGER NOT NULL,
    swap_total_max INTEGER NOT NULL,
    load_n INTEGER NOT NULL,
    load1_min INTEGER,
    load1_sum INTEGER,
    load1_max INTEGER,
    load5_min INTEGER,
    load5_sum INTEGER,
    load5_max INTEGER,
    load15_min INTEGER,
    load15_sum INTEGER,
    load15_max INTEGER,
    PRIMARY KEY (host_id, bucket)
) WITHOUT ROWID;

CREATE TABLE minute_item (
    host_id INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    item_id INTEGER NOT NULL,
    n INTEGER NOT NULL,
    v1_min INTEGER NOT NULL,
    v1_sum INTEGER NOT NULL,
    v1_max INTEGER NOT NULL,
    v2_min INTEGER NOT NULL,
    v2_sum INTEGER NOT NULL,
    v2_max INTEGER NOT NULL,
    v3_min INTEGER,
    v3_sum INTEGER,
    v3_max INTEGER,
    PRIMARY KEY (host_id, bucket, item_id)
) WITHOUT ROWID;

-- Hour tier: running min / sum / max and counts per bucket (bucket = start, unix seconds);
-- avg = sum / n, so a late reading updates its bucket exactly.
CREATE TABLE hour_host (
    host_id INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    n INTEGER NOT NULL,
    cpu_min INTEGER NOT NULL,
    cpu_sum INTEGER NOT NULL,
    cpu_max INTEGER NOT NULL,
    mem_used_min INTEGER NOT NULL,
    mem_used_sum INTEGER NOT NULL,
    mem_used_max INTEGER NOT NULL,
    mem_total_min INTEGER NOT NULL,
    mem_total_sum INTEGER NOT NULL,
    mem_total_max INTEGER NOT NULL,
    mem_pct_min INTEGER NOT NULL,
    mem_pct_sum INTEGER NOT NULL,
    mem_pct_max INTEGER NOT NULL,
    swap_used_min INTEGER NOT NULL,
    swap_used_sum INTEGER NOT NULL,
    swap_used_max INTEGER NOT NULL,
    swap_total_min INTEGER NOT NULL,
    swap_total_sum INTEGER NOT NULL,
    swap_total_max INTEGER NOT NULL,
    load_n INTEGER NOT NULL,
    load1_min INTEGER,
    load1_sum INTEGER,
    load1_max INTEGER,
    load5_min INTEGER,
    load5_sum INTEGER,
    load5_max INTEGER,
    load15_min INTEGER,
    load15_sum INTEGER,
    load15_max INTEGER,
    PRIMARY KEY (host_id, bucket)
) WITHOUT ROWID;

CREATE TABLE hour_item (
    host_id INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    item_id INTEGER NOT NULL,
    n INTEGER NOT NULL,
    v1_min INTEGER NOT NULL,
    v1_sum INTEGER NOT NULL,
    v1_max INTEGER NOT NULL,
    v2_min INTEGER NOT NULL,
    v2_sum INTEGER NOT NULL,
    v2_max INTEGER NOT NULL,
    v3_min INTEGER,
    v3_sum INTEGER,
    v3_max INTEGER,
    PRIMARY KEY (host_id, bucket, item_id)
) WITHOUT ROWID;
