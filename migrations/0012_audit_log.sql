-- Who did what through the API, and what came of it. Every query and every
-- change is recorded; rows are only ever appended (retention trims the oldest).
CREATE TABLE audit_log (
    id           bigserial   PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    token_id     uuid,
    token_name   text,
    role         text,
    -- A stable verb such as 'search', 'hunt.create', 'alert.close'.
    action       text        NOT NULL,
    -- What it acted on (a hunt id, an alert id, an agent id), if anything.
    target       text,
    -- The request's substance (the SRQL text, changed fields), never a secret.
    detail       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- Rows returned or rows changed.
    result_size  bigint,
    -- 'ok' or the error code the caller got.
    outcome      text        NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_token_at ON audit_log (token_id, at);
