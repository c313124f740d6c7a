-- Event embeddings for SIMILAR_TO and | cluster (pgvector).
--
-- Layout: a vector exists once per distinct *normalised* text and model
-- (numbers, IPs and hex ids masked), and event_embeddings maps each embedded
-- event to its text. Repeated templates — the bulk of security telemetry —
-- cost one vector, so the HNSW index stays small and its slow inserts
-- (hundreds of rows/s) happen only for texts never seen before, never per event.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE embedding_texts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model       text        NOT NULL,
    text_hash   bytea       NOT NULL,
    text        text        NOT NULL,
    embedding   vector(384) NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (model, text_hash)
);

-- One HNSW index per model (a partial index), so vectors of two models are
-- never compared: created by vigil_ensure_embedding_index when a model first
-- writes.
CREATE FUNCTION vigil_ensure_embedding_index(p_model text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    idx text := 'embedding_texts_hnsw_' || substr(md5(p_model), 1, 12);
BEGIN
    IF to_regclass(idx) IS NULL THEN
        EXECUTE format(
            'CREATE INDEX IF NOT EXISTS %I ON embedding_texts USING hnsw (embedding vector_cosine_ops) WHERE model = %L',
            idx, p_model);
    END IF;
    RETURN idx;
END $$;

CREATE TABLE event_embeddings (
    time      timestamptz NOT NULL,
    event_id  uuid        NOT NULL,
    text_id   bigint      NOT NULL REFERENCES embedding_texts (id),
    PRIMARY KEY (event_id, time, text_id)
);
CREATE INDEX event_embeddings_text_idx ON event_embeddings (text_id, time DESC);
-- Partitioning by time (retention drops whole days) comes in 0008, per storage mode.
