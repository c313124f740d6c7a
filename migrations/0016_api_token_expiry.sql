-- Tokens may expire (`vigil token create --expires 30d`): after `expires_at`
-- the token is refused like a revoked one, with its own message. NULL: never.
ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz;
