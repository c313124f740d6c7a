-- Events: the OCSF-aligned core, one row per normalised event, as a TimescaleDB
-- hypertable in daily chunks (chunk exclusion keeps time-bounded hunts cheap,
-- drop_chunks makes retention a metadata operation).
CREATE TABLE events (
    time            timestamptz NOT NULL,
    event_id        uuid        NOT NULL,
    tenant          text        NOT NULL DEFAULT 'default',
    kind            text        NOT NULL,
    source          text        NOT NULL,
    host            text,
    class_uid       integer     NOT NULL,
    category_uid    integer     NOT NULL,
    activity_id     integer,
    severity_id     smallint    NOT NULL DEFAULT 0 CHECK (severity_id BETWEEN 0 AND 6),
    status_id       smallint,
    message         text        NOT NULL DEFAULT '',
    user_name       text,
    process_pid     integer,
    process_ppid    integer,
    process_name    text,
    process_path    text,
    process_cmdline text,
    src_ip          inet,
    src_port        integer CHECK (src_port BETWEEN 0 AND 65535),
    dst_ip          inet,
    dst_port        integer CHECK (dst_port BETWEEN 0 AND 65535),
    protocol        text,
    raw             jsonb       NOT NULL DEFAULT '{}'::jsonb,
    schema_version  smallint    NOT NULL,
    ingested_at     timestamptz NOT NULL DEFAULT now()
);

SELECT create_hypertable('events', 'time', chunk_time_interval => INTERVAL '1 day');

-- Partition management is TimescaleDB's job here; the function exists so the
-- writer calls the same thing on both storage modes.
CREATE FUNCTION vigil_ensure_event_partitions(p_from timestamptz, p_to timestamptz)
RETURNS integer LANGUAGE sql AS $$ SELECT 0 $$;

-- The Apache-only build cannot run TimescaleDB's job-history retention job and
-- logs an error on every run: switch it off (needs superuser; harmless without).
DO $$
BEGIN
    UPDATE _timescaledb_config.bgw_job SET scheduled = false
     WHERE proc_name = 'policy_job_stat_history_retention';
EXCEPTION WHEN insufficient_privilege OR undefined_table OR undefined_column THEN
    RAISE NOTICE 'vigil: could not unschedule TimescaleDB job-history retention: %', SQLERRM;
END $$;
