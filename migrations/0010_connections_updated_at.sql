-- When each edge last changed, so the in-memory graph refreshes only what
-- changed since its last read (`vigil_graph::live`). Set by a trigger, so
-- every writer of `connections` keeps it right without knowing about it.
ALTER TABLE connections ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

CREATE FUNCTION vigil_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END $$;

CREATE TRIGGER connections_touch BEFORE UPDATE ON connections
    FOR EACH ROW EXECUTE FUNCTION vigil_touch_updated_at();

CREATE INDEX connections_updated_at_idx ON connections (updated_at);
