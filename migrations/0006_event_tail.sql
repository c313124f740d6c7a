-- Tailing `events` in ingestion order, for secondary indexes kept outside the
-- table (the BM25 full-text index, embeddings). `ingested_at` is the writer's
-- transaction start time, and rows are appended in ingestion order inside each
-- chunk/partition, so a BRIN index narrows "rows ingested after the watermark"
-- to the few block ranges at the end of each chunk at almost no write cost.
-- Works on both the TimescaleDB hypertable and the native partitioned table:
-- the index is created on every chunk/partition, present and future.
CREATE INDEX events_ingested_at_brin ON events USING brin (ingested_at)
    WITH (pages_per_range = 32, autosummarize = on);

-- How far each tailing consumer has got: the last (ingested_at, event_id) it
-- has durably processed. Keyset order, so rows sharing one ingested_at (one
-- writer transaction) are never split or skipped.
CREATE TABLE index_watermarks (
    name        text        PRIMARY KEY,
    ingested_at timestamptz NOT NULL,
    event_id    uuid        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
