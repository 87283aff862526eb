-- Delivery state. Every column has a default, so a row inserted with only
-- (id, content, phone_number) is pending and due at once.
-- +goose Up
ALTER TABLE messages
    ADD COLUMN IF NOT EXISTS status            TEXT        NOT NULL DEFAULT 'pending',
    ADD COLUMN IF NOT EXISTS attempts          INTEGER     NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS next_attempt_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    ADD COLUMN IF NOT EXISTS lease_expires_at  TIMESTAMPTZ,
    ADD COLUMN IF NOT EXISTS last_error        TEXT,
    ADD COLUMN IF NOT EXISTS remote_message_id TEXT,
    ADD COLUMN IF NOT EXISTS sent_at           TIMESTAMPTZ,
    ADD COLUMN IF NOT EXISTS created_at        TIMESTAMPTZ NOT NULL DEFAULT now();

-- Rows a seed-era deployment already sent must not go out again.
UPDATE messages SET status = 'sent' WHERE is_sent AND status = 'pending';

-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'messages_status_check') THEN
        ALTER TABLE messages ADD CONSTRAINT messages_status_check
            CHECK (status IN ('pending', 'sending', 'sent', 'failed'));
    END IF;
END
$$;
-- +goose StatementEnd

-- Claiming reads only unsent rows in age order; the partial index never holds
-- sent or failed rows, so its cost does not grow with history.
CREATE INDEX IF NOT EXISTS messages_claim_idx
    ON messages (created_at, id) WHERE status IN ('pending', 'sending');

-- Newest-first keyset pagination over sent rows.
CREATE INDEX IF NOT EXISTS messages_sent_idx
    ON messages (sent_at DESC, id DESC) WHERE status = 'sent';

-- Whether sending runs, and the shared per-tick budget. One row, in
-- PostgreSQL so that it survives a Redis restart.
CREATE TABLE IF NOT EXISTS dispatch_control (
    id            SMALLINT    PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    running       BOOLEAN     NOT NULL DEFAULT TRUE,
    paused_reason TEXT        NOT NULL DEFAULT '',
    budget        INTEGER     NOT NULL DEFAULT 0,
    last_tick_at  TIMESTAMPTZ,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO dispatch_control (id) VALUES (1) ON CONFLICT (id) DO NOTHING;
