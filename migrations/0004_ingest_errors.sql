-- Dead letters: every input the ingest pipeline refused, with why and the
-- original bytes, so nothing is lost silently and a fixed parser can replay it.
CREATE TABLE ingest_errors (
    id           bigserial   PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    -- Where it came from: nats, http, file.
    channel      text        NOT NULL,
    -- NATS subject, file name or HTTP client.
    origin       text        NOT NULL DEFAULT '',
    -- JetStream stream sequence (NATS only).
    stream_seq   bigint,
    -- Identifies the input (stream sequence, or file line and bytes), so a
    -- redelivered message or a re-imported file is recorded once.
    dedup_key    text,
    reason_code  text        NOT NULL,
    reason       text        NOT NULL,
    payload      bytea       NOT NULL
);
CREATE UNIQUE INDEX ingest_errors_dedup_key ON ingest_errors (dedup_key) WHERE dedup_key IS NOT NULL;
CREATE INDEX ingest_errors_received_idx ON ingest_errors (received_at DESC);
CREATE INDEX ingest_errors_reason_idx ON ingest_errors (reason_code, received_at DESC);
