-- +goose Up
-- Console sessions live on the server, so that signing out, revoking every
-- session or changing API_KEY ends them at once. The cookie carries a
-- random id; only its SHA-256 is stored, so a copy of this table signs no
-- one in. key_fingerprint names the API_KEY that created the session (an
-- HMAC under the key, never the key): a session made under another key is
-- refused.
CREATE TABLE IF NOT EXISTS console_sessions (
    id_hash         BYTEA PRIMARY KEY,
    key_fingerprint BYTEA NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at      TIMESTAMPTZ NOT NULL
);
-- The bounded purge of expired rows at each sign-in reads this index.
CREATE INDEX IF NOT EXISTS console_sessions_expires_idx ON console_sessions (expires_at);

-- +goose Down
DROP TABLE IF EXISTS console_sessions;
