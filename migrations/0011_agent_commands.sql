-- Commands sent to agents (block an IP, rescan packages, snapshot now): who
-- sent what to which agent, when, and what the agent answered.
CREATE TABLE agent_commands (
    id          uuid        PRIMARY KEY,
    agent_id    text        NOT NULL,
    command     text        NOT NULL,
    args        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- The token that sent it: its name and id.
    sent_by     text        NOT NULL,
    token_id    uuid,
    sent_at     timestamptz NOT NULL DEFAULT now(),
    replied_at  timestamptz,
    ok          boolean,
    reply       jsonb,
    error       text
);
CREATE INDEX agent_commands_agent_idx ON agent_commands (agent_id, sent_at DESC);
