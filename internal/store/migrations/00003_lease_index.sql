-- Finding expired leases (once per tick) reads only rows in flight, not the
-- whole backlog of pending rows.
-- +goose Up
CREATE INDEX IF NOT EXISTS messages_lease_idx
    ON messages (lease_expires_at) WHERE status = 'sending';
