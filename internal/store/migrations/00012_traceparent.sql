-- +goose Up
-- traceparent is the W3C trace context the api stored with a message, so
-- each delivery attempt's span joins the trace of the request that created
-- it. NULL for rows inserted by other systems: their first attempt starts
-- a fresh trace.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS traceparent TEXT;

-- +goose Down
ALTER TABLE messages DROP COLUMN IF EXISTS traceparent;
