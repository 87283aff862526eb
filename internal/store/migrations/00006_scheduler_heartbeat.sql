-- +goose Up
-- Each scheduler replica stamps the control row when it reads the sending
-- switch (every second), so the API can tell whether any scheduler is alive
-- without relying on asynq's internal keys.
ALTER TABLE dispatch_control ADD COLUMN IF NOT EXISTS scheduler_seen_at TIMESTAMPTZ;

-- +goose Down
ALTER TABLE dispatch_control DROP COLUMN IF EXISTS scheduler_seen_at;
