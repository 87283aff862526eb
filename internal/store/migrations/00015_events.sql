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
CREATE OR REPLACE FUNCTION messages_write_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO message_events (message_id, type, snapshot, callback_url)
    SELECT c.id, c.type, c.snapshot, c.callback_url
    FROM (
        SELECT n.id, 'message.' || n.status AS type, to_jsonb(n) AS snapshot, n.status_callback AS callback_url, 1 AS kind
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.status IS DISTINCT FROM o.status AND n.status IN ('sent', 'failed', 'expired', 'canceled')
        UNION ALL
        SELECT n.id, 'message.' || n.delivery_status, to_jsonb(n), n.status_callback, 2
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.delivery_status IS DISTINCT FROM o.delivery_status AND n.delivery_status IS NOT NULL
    ) c
    ORDER BY c.id, c.kind;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- A statement trigger with transition tables, not a row trigger: measured
-- on 20,000 rows (PostgreSQL 15), a row trigger added about 33 µs to each
-- reported change, this one about 15 µs, and about 3 µs to each row an
-- update changes without a report (a claim), for the copy of the
-- transition tables. A message's life is one claim and one record, so
-- this is about half the cost.
DROP TRIGGER IF EXISTS messages_events_upd ON messages;
CREATE TRIGGER messages_events_upd AFTER UPDATE ON messages
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION messages_write_events();

-- +goose Down
DROP TRIGGER IF EXISTS messages_events_upd ON messages;
DROP FUNCTION IF EXISTS messages_write_events();
DROP TABLE IF EXISTS message_events;
ALTER TABLE messages DROP COLUMN IF EXISTS status_callback;
