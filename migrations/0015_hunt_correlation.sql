-- Correlation hunts (Sigma correlation rules): a hunt may carry a correlation
-- over base rules, {"type": "event_count" | "value_count" | "temporal" |
-- "temporal_ordered", "rules": [{"name", "query"}], "group_by": [...],
-- "timespan": "5m", "timespan_s": 300, "condition": {"gte": 10}, "field": …},
-- checked by the hunts crate. NULL for a plain hunt. See docs/hunts.md.
ALTER TABLE hunts ADD COLUMN correlation jsonb;
