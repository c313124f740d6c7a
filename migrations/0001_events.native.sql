-- Events on plain PostgreSQL (no TimescaleDB): the same columns, range
-- partitioned by day. Partitions are created ahead by
-- vigil_ensure_event_partitions(), which the writer calls for each new day it
-- sees, and dropped whole by retention.
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
) PARTITION BY RANGE (time);

-- create_hypertable makes this index on the TimescaleDB path.
CREATE INDEX events_time_idx ON events (time DESC);

-- Creates the missing daily partitions covering [p_from, p_to]; returns how
-- many it created. Serialised by an advisory lock so concurrent writers do not
-- race on the same day.
CREATE FUNCTION vigil_ensure_event_partitions(p_from timestamptz, p_to timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    day     date := (p_from AT TIME ZONE 'UTC')::date;
    last    date := (p_to AT TIME ZONE 'UTC')::date;
    part    text;
    created integer := 0;
BEGIN
    IF last - day > 366 THEN
        RAISE EXCEPTION 'vigil: refusing to create % daily partitions at once', last - day + 1;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('vigil_ensure_event_partitions'));
    WHILE day <= last LOOP
        part := 'events_p' || to_char(day, 'YYYYMMDD');
        IF to_regclass(quote_ident(current_schema()) || '.' || quote_ident(part)) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
                part,
                (day::timestamp AT TIME ZONE 'UTC'),
                ((day + 1)::timestamp AT TIME ZONE 'UTC'));
            created := created + 1;
        END IF;
        day := day + 1;
    END LOOP;
    RETURN created;
END $$;

SELECT vigil_ensure_event_partitions(now() - INTERVAL '1 day', now() + INTERVAL '2 days');
