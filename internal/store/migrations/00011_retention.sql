-- +goose Up
-- finished_at is when a message entered a final status (anything but
-- pending and sending), stamped by a trigger so that every statement that
-- finalises a row (record, the claim's expiry and lease failure, cancel,
-- and any later final status) sets it without naming it. A manual retry
-- moves the row back to pending, and its next final status stamps it
-- again. Rows finalised before this column existed keep NULL; the purge
-- then falls back to sent_at, else created_at.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS finished_at TIMESTAMPTZ;

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION messages_stamp_finished() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.finished_at := now();
    RETURN NEW;
END
$$;
-- +goose StatementEnd
-- The WHEN clauses run without calling the function, so an update that
-- does not finalise the row (a claim, a retry) pays nothing.
DROP TRIGGER IF EXISTS messages_finished_upd ON messages;
CREATE TRIGGER messages_finished_upd BEFORE UPDATE OF status ON messages
    FOR EACH ROW WHEN (NEW.status NOT IN ('pending', 'sending') AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION messages_stamp_finished();
DROP TRIGGER IF EXISTS messages_finished_ins ON messages;
CREATE TRIGGER messages_finished_ins BEFORE INSERT ON messages
    FOR EACH ROW WHEN (NEW.status NOT IN ('pending', 'sending') AND NEW.finished_at IS NULL)
    EXECUTE FUNCTION messages_stamp_finished();

-- The purge finds finished rows oldest first through this index; it never
-- holds a pending or sending row, so scheduled and in-flight messages are
-- out of its reach.
CREATE INDEX IF NOT EXISTS messages_finished_idx
    ON messages ((COALESCE(finished_at, sent_at, created_at)))
    WHERE status NOT IN ('pending', 'sending');

-- The last purge, for GET /api/v1/scheduler and the api's /metrics: one
-- row, written by whichever process purged.
CREATE TABLE IF NOT EXISTS retention_state (
    id           SMALLINT    PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    last_run_at  TIMESTAMPTZ,
    last_purged  BIGINT      NOT NULL DEFAULT 0,
    purged_total BIGINT      NOT NULL DEFAULT 0
);
INSERT INTO retention_state (id) VALUES (1) ON CONFLICT (id) DO NOTHING;

-- +goose Down
DROP TABLE IF EXISTS retention_state;
DROP INDEX IF EXISTS messages_finished_idx;
DROP TRIGGER IF EXISTS messages_finished_ins ON messages;
DROP TRIGGER IF EXISTS messages_finished_upd ON messages;
DROP FUNCTION IF EXISTS messages_stamp_finished();
ALTER TABLE messages DROP COLUMN IF EXISTS finished_at;
