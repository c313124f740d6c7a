-- The indexes hunts lean on. Each one costs ingest throughput, so only the
-- access paths analysts use daily get one; everything else is a time-bounded
-- scan within the chunks the time filter selects.

-- Idempotency: an event is identified by its id (and time, which the
-- partition key must be part of). The writer inserts ON CONFLICT DO NOTHING.
CREATE UNIQUE INDEX events_event_id_time_key ON events (event_id, time);

CREATE INDEX events_host_time_idx ON events (host, time DESC);
CREATE INDEX events_kind_time_idx ON events (kind, time DESC);
-- High and above only: "what is bad right now" is the common question.
CREATE INDEX events_severe_time_idx ON events (severity_id, time DESC) WHERE severity_id >= 4;
CREATE INDEX events_user_time_idx ON events (user_name, time DESC) WHERE user_name IS NOT NULL;
CREATE INDEX events_process_time_idx ON events (process_name, time DESC) WHERE process_name IS NOT NULL;
-- btree on inet also serves CIDR containment (<<=), which the planner turns into a range scan.
CREATE INDEX events_src_ip_idx ON events (src_ip, time DESC) WHERE src_ip IS NOT NULL;
CREATE INDEX events_dst_ip_idx ON events (dst_ip, time DESC) WHERE dst_ip IS NOT NULL;
