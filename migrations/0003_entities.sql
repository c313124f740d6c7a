-- The other things analysts hunt over besides events. SRQL addresses each as
-- an entity (`in:hosts`, `in:alerts`, `in:connections`, `in:vulnerabilities`);
-- the issues that fill them (agent, graph, API) extend them as they need.

-- One row per known host, upserted from what agents and sources report.
CREATE TABLE hosts (
    host        text PRIMARY KEY,
    tenant      text        NOT NULL DEFAULT 'default',
    ip          inet,
    os          text,
    agent_id    text,
    tags        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now()
);

-- Alerts raised by hunts and detections, with their triage state.
CREATE TABLE alerts (
    alert_id    uuid        PRIMARY KEY,
    time        timestamptz NOT NULL,
    tenant      text        NOT NULL DEFAULT 'default',
    rule        text        NOT NULL,
    title       text        NOT NULL,
    severity_id smallint    NOT NULL DEFAULT 0 CHECK (severity_id BETWEEN 0 AND 6),
    status      text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'closed')),
    host        text,
    assignee    text,
    event_count integer     NOT NULL DEFAULT 1,
    raw         jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX alerts_time_idx ON alerts (time DESC);
CREATE INDEX alerts_status_time_idx ON alerts (status, time DESC);

-- Observed connections aggregated into edges: who talked to whom, on which
-- port, how often and how much, first and last seen.
CREATE TABLE connections (
    src_host    text,
    src_ip      inet        NOT NULL,
    src_process text        NOT NULL DEFAULT '',
    dst_host    text,
    dst_ip      inet        NOT NULL,
    dst_port    integer     NOT NULL DEFAULT 0,
    protocol    text        NOT NULL DEFAULT '',
    tenant      text        NOT NULL DEFAULT 'default',
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    count       bigint      NOT NULL DEFAULT 1,
    bytes       bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (src_ip, src_process, dst_ip, dst_port, protocol)
);
CREATE INDEX connections_last_seen_idx ON connections (last_seen DESC);
CREATE INDEX connections_dst_idx ON connections (dst_ip, dst_port);

-- Vulnerable packages per host, and whether a vulnerable binary is running.
CREATE TABLE vulnerabilities (
    host              text        NOT NULL,
    cve               text        NOT NULL,
    package           text        NOT NULL,
    installed_version text,
    fixed_version     text,
    severity_id       smallint    NOT NULL DEFAULT 0 CHECK (severity_id BETWEEN 0 AND 6),
    status            text        NOT NULL DEFAULT 'dormant' CHECK (status IN ('running', 'dormant', 'fixed')),
    tenant            text        NOT NULL DEFAULT 'default',
    first_seen        timestamptz NOT NULL DEFAULT now(),
    last_seen         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (host, cve, package)
);
CREATE INDEX vulnerabilities_status_idx ON vulnerabilities (status, severity_id);
