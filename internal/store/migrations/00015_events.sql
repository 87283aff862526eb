-- +goose Up
-- Status callbacks: a transactional outbox. The trigger below writes one
-- row into message_events for every change of a message's status into
-- sent, failed, expired or canceled, and for every change of its
-- delivery_status (a receipt), inside the statement that makes the change:
-- whoever makes it (the worker's record statement, the claim that expires
-- rows, cancel, retry, receipts, other systems' SQL), the event commits or
-- rolls back with it. A creation writes none, and neither does a repeated
-- receipt with the same status (delivery_status does not change).
ALTER TABLE messages ADD COLUMN IF NOT EXISTS status_callback TEXT;

CREATE TABLE IF NOT EXISTS message_events (
    id               UUID        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- seq orders a message's events: the row lock of the change makes a
    -- later change of one message take a larger number.
    seq              BIGSERIAL   NOT NULL,
    message_id       VARCHAR(36) NOT NULL,
    type             TEXT        NOT NULL CHECK (type IN ('message.sent', 'message.failed', 'message.expired',
                                                          'message.canceled', 'message.delivered', 'message.undelivered')),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The message row right after the change (to_jsonb), rendered like
    -- GET /api/v1/messages/{id} when the event is sent.
    snapshot         JSONB       NOT NULL,
    -- The message's status_callback; NULL sends to STATUS_CALLBACK_URL.
    callback_url     TEXT,
    status           TEXT        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    -- attempts counts every claim; it fences an outcome to its claim.
    attempts         INTEGER     NOT NULL DEFAULT 0,
    -- round_start is attempts when the current round of the retry
    -- schedule began (0, or when an operator redelivered the event).
    round_start      INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    lease_expires_at TIMESTAMPTZ,
    delivered_at     TIMESTAMPTZ,
    last_error       TEXT
);
-- A message's events in order: the list, the order check of the claim,
-- the purge and the erasure.
CREATE INDEX IF NOT EXISTS message_events_message_idx ON message_events (message_id, seq);
-- The claim reads due pending events through this partial index.
CREATE INDEX IF NOT EXISTS message_events_due_idx ON message_events (next_attempt_at, seq) WHERE status = 'pending';

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION messages_write_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status AND NEW.status IN ('sent', 'failed', 'expired', 'canceled') THEN
        INSERT INTO message_events (message_id, type, snapshot, callback_url)
        VALUES (NEW.id, 'message.' || NEW.status, to_jsonb(NEW), NEW.status_callback);
    END IF;
    IF NEW.delivery_status IS DISTINCT FROM OLD.delivery_status AND NEW.delivery_status IS NOT NULL THEN
        INSERT INTO message_events (message_id, type, snapshot, callback_url)
        VALUES (NEW.id, 'message.' || NEW.delivery_status, to_jsonb(NEW), NEW.status_callback);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- A row trigger with a WHEN clause: an update that makes no reportable
-- change (a claim, a retry's reschedule, a lease hand-back) does not even
-- call the function.
DROP TRIGGER IF EXISTS messages_events_upd ON messages;
CREATE TRIGGER messages_events_upd AFTER UPDATE ON messages
    FOR EACH ROW WHEN (
        (NEW.status IS DISTINCT FROM OLD.status AND NEW.status IN ('sent', 'failed', 'expired', 'canceled'))
        OR (NEW.delivery_status IS DISTINCT FROM OLD.delivery_status AND NEW.delivery_status IS NOT NULL))
    EXECUTE FUNCTION messages_write_event();

-- +goose Down
DROP TRIGGER IF EXISTS messages_events_upd ON messages;
DROP FUNCTION IF EXISTS messages_write_event();
DROP TABLE IF EXISTS message_events;
ALTER TABLE messages DROP COLUMN IF EXISTS status_callback;
