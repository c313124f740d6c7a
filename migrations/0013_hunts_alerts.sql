-- Scheduled hunts, their runs, the alerts they raise and the actions taken on
-- new alerts (webhooks, AWX job launches). See docs/hunts.md.

-- A hunt: an SRQL query run on a cron schedule over the events ingested since
-- its previous run.
CREATE TABLE hunts (
    id              uuid        PRIMARY KEY,
    name            text        NOT NULL UNIQUE,
    description     text        NOT NULL DEFAULT '',
    query           text        NOT NULL,
    -- A cron expression (5 fields, or 6 with seconds), evaluated in UTC.
    schedule        text        NOT NULL,
    severity_id     smallint    NOT NULL DEFAULT 3 CHECK (severity_id BETWEEN 0 AND 6),
    -- Result fields whose values group matches into alerts.
    group_by        text[]      NOT NULL DEFAULT '{}',
    -- A match for an alert's group within this long of the alert being raised
    -- joins it instead of raising a new one.
    suppression_s   integer     NOT NULL DEFAULT 3600 CHECK (suppression_s >= 0),
    -- Actions on new alerts: [{"type":"webhook","url":…}, {"type":"awx",…}].
    actions         jsonb       NOT NULL DEFAULT '[]'::jsonb,
    enabled         boolean     NOT NULL DEFAULT true,
    -- Room for Sigma metadata (rule id, title, level, tags, references).
    meta            jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- The last schedule slot handled, and the end of the ingestion window the
    -- runs have covered: both advance in the transaction that records a run.
    last_slot       timestamptz NOT NULL,
    watermark       timestamptz NOT NULL,
    created_by      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- One run of a hunt: the ingestion window (window_start, window_end] it
-- covered, what it found, or why it failed.
CREATE TABLE hunt_runs (
    id              bigserial   PRIMARY KEY,
    hunt_id         uuid        NOT NULL REFERENCES hunts (id) ON DELETE CASCADE,
    -- The schedule slot it ran for (the latest, when missed slots collapsed).
    slot            timestamptz NOT NULL,
    -- How many schedule slots it covered (more than 1 after downtime or a slow run).
    slots           integer     NOT NULL DEFAULT 1,
    manual          boolean     NOT NULL DEFAULT false,
    window_start    timestamptz NOT NULL,
    window_end      timestamptz NOT NULL,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL,
    matches         integer     NOT NULL DEFAULT 0,
    alerts_created  integer     NOT NULL DEFAULT 0,
    alerts_updated  integer     NOT NULL DEFAULT 0,
    -- The query hit its row limit: some matches of the window were not seen.
    truncated       boolean     NOT NULL DEFAULT false,
    error           text
);
CREATE INDEX hunt_runs_hunt_idx ON hunt_runs (hunt_id, id DESC);

-- Alerts (table from 0003) gain what hunts need: their hunt, the group they
-- stand for, when their events happened, the triage trail.
ALTER TABLE alerts
    ADD COLUMN hunt_id          uuid REFERENCES hunts (id) ON DELETE SET NULL,
    ADD COLUMN group_key        text,
    ADD COLUMN group_values     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN first_seen       timestamptz,
    ADD COLUMN last_seen        timestamptz,
    ADD COLUMN last_matched_at  timestamptz,
    ADD COLUMN acknowledged_at  timestamptz,
    ADD COLUMN acknowledged_by  text,
    ADD COLUMN closed_at        timestamptz,
    ADD COLUMN closed_by        text,
    ADD COLUMN close_reason     text,
    ADD COLUMN updated_at       timestamptz NOT NULL DEFAULT now(),
    -- Sigma metadata copied from the hunt, and anything a detection adds.
    ADD COLUMN meta             jsonb       NOT NULL DEFAULT '{}'::jsonb;
CREATE INDEX alerts_hunt_group_idx ON alerts (hunt_id, group_key, time DESC);
CREATE INDEX alerts_assignee_idx ON alerts (assignee, time DESC) WHERE assignee IS NOT NULL;
-- One alert per hunt, group and raising slot.
CREATE UNIQUE INDEX alerts_hunt_group_once ON alerts (hunt_id, group_key, time) WHERE hunt_id IS NOT NULL;

-- The events behind an alert. An event counts at most once per hunt, so a
-- repeated window cannot count it again.
CREATE TABLE alert_events (
    alert_id    uuid        NOT NULL REFERENCES alerts (alert_id) ON DELETE CASCADE,
    hunt_id     uuid,
    event_id    uuid        NOT NULL,
    event_time  timestamptz NOT NULL,
    PRIMARY KEY (alert_id, event_id)
);
CREATE UNIQUE INDEX alert_events_once_per_hunt ON alert_events (hunt_id, event_id) WHERE hunt_id IS NOT NULL;

-- An action due on a new alert, written in the transaction that raised it
-- (so a crash cannot lose it) and delivered after.
CREATE TABLE alert_actions (
    id              bigserial   PRIMARY KEY,
    alert_id        uuid        NOT NULL REFERENCES alerts (alert_id) ON DELETE CASCADE,
    hunt_id         uuid,
    kind            text        NOT NULL CHECK (kind IN ('webhook', 'awx')),
    url             text        NOT NULL,
    body            jsonb       NOT NULL,
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX alert_actions_pending_idx ON alert_actions (id) WHERE status = 'pending';
CREATE INDEX alert_actions_alert_idx ON alert_actions (alert_id);

-- Every delivery attempt of an action: HTTP status or error, when, how long.
CREATE TABLE webhook_deliveries (
    id          bigserial   PRIMARY KEY,
    action_id   bigint      NOT NULL REFERENCES alert_actions (id) ON DELETE CASCADE,
    attempt     integer     NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    status_code integer,
    error       text,
    duration_ms integer     NOT NULL
);
CREATE INDEX webhook_deliveries_action_idx ON webhook_deliveries (action_id, attempt);
