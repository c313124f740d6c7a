-- The graph sync's tables (graph/src/sync.rs): what each host has installed
-- and what it is running, so that a vulnerable package can be told running
-- (one of its files is the executable of a live process) from dormant. The
-- sync fills them, `connections` and `vulnerabilities` from `events` in
-- ingestion order, exactly once per event (its watermark is saved in the same
-- transaction). Plain tables: the same file serves both storage modes.

-- Installed-package inventory per host, from `package` events (OCSF Software
-- Inventory Info). The latest event per (host, package, manager) wins, by event
-- time: `last_seen` is the time of the event last applied, so an older event
-- delivered late changes nothing. A removed package stays as a tombstone
-- (status 'removed', no files) so that a late 'installed' cannot resurrect it.
CREATE TABLE packages (
    host        text        NOT NULL,
    package     text        NOT NULL,
    manager     text        NOT NULL DEFAULT '',
    version     text,
    status      text        NOT NULL DEFAULT 'installed' CHECK (status IN ('installed', 'removed')),
    tenant      text        NOT NULL DEFAULT 'default',
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    PRIMARY KEY (host, package, manager)
);

-- The files each installed package owns. The correlation looks a running
-- executable up by (host, path); the sync replaces a package's files by
-- (host, package, manager).
CREATE TABLE package_files (
    host        text        NOT NULL,
    path        text        NOT NULL,
    package     text        NOT NULL,
    manager     text        NOT NULL DEFAULT '',
    PRIMARY KEY (host, path, package, manager),
    FOREIGN KEY (host, package, manager) REFERENCES packages (host, package, manager) ON DELETE CASCADE
);
CREATE INDEX package_files_package_idx ON package_files (host, package, manager);

-- Processes believed running, from process events: activity 1 (launch)
-- inserts or replaces the row for (host, pid), activity 2 (terminate) deletes
-- it. `exe` is the event's process path. Events lost or never sent (a crash of
-- the agent, a process started before it) leave it out of date until the
-- agent's periodic snapshot (a launch event per live process) corrects it.
CREATE TABLE running_processes (
    host        text        NOT NULL,
    pid         integer     NOT NULL,
    exe         text,
    name        text,
    cmdline     text,
    user_name   text,
    started     timestamptz NOT NULL,
    event_id    uuid        NOT NULL,
    tenant      text        NOT NULL DEFAULT 'default',
    PRIMARY KEY (host, pid)
);
CREATE INDEX running_processes_exe_idx ON running_processes (host, exe) WHERE exe IS NOT NULL;

-- Hosts are looked up by address to name the ends of a connection.
CREATE INDEX hosts_ip_idx ON hosts (ip) WHERE ip IS NOT NULL;

-- A non-negative whole count from a JSON value, or NULL when it is not a
-- number: untrusted producer input never fails a cast. Clamped to bigint.
CREATE FUNCTION vigil_json_count(v jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN jsonb_typeof(v) = 'number'
                THEN least(greatest(trunc(v::numeric), 0), 9223372036854775807)
           END
$$;

-- A non-empty string from a JSON value, or NULL.
CREATE FUNCTION vigil_json_text(v jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN jsonb_typeof(v) = 'string' THEN nullif(v #>> '{}', '') END
$$;

-- The sum of two JSON counts, or NULL when neither is a number.
CREATE FUNCTION vigil_json_count_sum(a jsonb, b jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN vigil_json_count(a) IS NOT NULL OR vigil_json_count(b) IS NOT NULL
                THEN coalesce(vigil_json_count(a), 0) + coalesce(vigil_json_count(b), 0)
           END
$$;

-- Bytes a network event's original record reports, both directions: the
-- agent's `bytes` (or `bytes_out` + `bytes_in`), Zeek conn.log's `orig_bytes`
-- + `resp_bytes`, Suricata flow's `flow.bytes_toserver` + `flow.bytes_toclient`.
-- The first shape present wins; 0 when there is none. Never fails: values that
-- are not numbers count as absent, negatives as 0, and the result is clamped
-- to bigint.
CREATE FUNCTION vigil_event_bytes(raw jsonb) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT least(coalesce(
               vigil_json_count(raw -> 'bytes'),
               vigil_json_count_sum(raw -> 'bytes_out', raw -> 'bytes_in'),
               vigil_json_count_sum(raw -> 'orig_bytes', raw -> 'resp_bytes'),
               vigil_json_count_sum(raw #> '{flow,bytes_toserver}', raw #> '{flow,bytes_toclient}'),
               0), 9223372036854775807)::bigint
$$;
