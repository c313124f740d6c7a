-- Without TimescaleDB, event_embeddings stays one table; retention deletes by time.
CREATE INDEX event_embeddings_time_idx ON event_embeddings (time);
