-- +goose Up
-- Numbers whose owner opted out of messages (an inbound STOP, or an
-- operator through the API). A message to such a number ends 'suppressed'
-- without a call: at its create, or at its claim when the opt-out came
-- later. phone_number is E.164, as the API stores it.
CREATE TABLE IF NOT EXISTS opt_outs (
    phone_number VARCHAR(20) PRIMARY KEY,
    source       TEXT        NOT NULL CHECK (source IN ('inbound', 'api')),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- The list pages newest first by keyset over this index.
CREATE INDEX IF NOT EXISTS opt_outs_created_idx ON opt_outs (created_at DESC, phone_number DESC);
ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_status_check;
ALTER TABLE messages ADD CONSTRAINT messages_status_check
    CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'expired', 'canceled', 'suppressed'));

-- +goose Down
ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_status_check;
UPDATE messages SET status = 'failed' WHERE status = 'suppressed';
ALTER TABLE messages ADD CONSTRAINT messages_status_check
    CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'expired', 'canceled'));
DROP TABLE IF EXISTS opt_outs;
