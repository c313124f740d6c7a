-- Retention and metric rollups (vigil_store::retention, docs/retention.md).
-- Plain tables: the same file serves both storage modes.

-- Hourly rollups of `metric` events. The rollup job *moves* raw metric rows
-- older than the rollup age in here: one transaction deletes them from
-- `events` and adds them to these rows (upsert: count and sum add up, min and
-- max widen), so every observation is either raw or rolled up, never both,
-- and a re-run or a late row never counts twice.
--
-- One row per (UTC hour, series, field): the series is the event's tenant,
-- host, source, `raw.metric` (the agent's group: cpu, memory, disk, net) and
-- `raw.mount` / `raw.interface` (which disk or interface); `field` is a
-- top-level numeric key of `raw` (cpu_pct, used_percent …), and the row with
-- field '' counts the events themselves (sum, min and max NULL). Missing
-- text keys are stored as '' (a primary key cannot hold NULL).
CREATE TABLE metric_rollups (
    bucket  timestamptz NOT NULL,
    tenant  text        NOT NULL,
    host    text        NOT NULL DEFAULT '',
    source  text        NOT NULL,
    metric  text        NOT NULL DEFAULT '',
    series  text        NOT NULL DEFAULT '',
    field   text        NOT NULL,
    count   bigint      NOT NULL,
    sum     float8,
    min     float8,
    max     float8,
    PRIMARY KEY (bucket, tenant, host, source, metric, series, field)
);
-- SRQL reads rollups by time window (and often one field); retention drops by bucket.
CREATE INDEX metric_rollups_field_bucket_idx ON metric_rollups (field, bucket);
CREATE INDEX metric_rollups_host_bucket_idx ON metric_rollups (host, bucket);

-- The rollup boundary: every raw metric row older than `rolled_up_before`
-- has been moved into metric_rollups (rows arriving later for that past are
-- moved on the next run). SRQL's timechart reads rollups only for windows
-- reaching before it. One row.
CREATE TABLE metric_rollup_state (
    singleton        boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    rolled_up_before timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Each maintenance pass (retention and rollups): what it did, as JSON.
CREATE TABLE retention_runs (
    id          bigserial   PRIMARY KEY,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    dry_run     boolean     NOT NULL,
    ok          boolean     NOT NULL,
    report      jsonb       NOT NULL
);
CREATE INDEX retention_runs_started_idx ON retention_runs (started_at DESC);

-- Retention trims agent commands by when they were sent.
CREATE INDEX agent_commands_sent_at_idx ON agent_commands (sent_at);
