-- event_embeddings in daily chunks, like events, so retention drops whole days.
SELECT create_hypertable('event_embeddings', 'time', chunk_time_interval => INTERVAL '1 day');
