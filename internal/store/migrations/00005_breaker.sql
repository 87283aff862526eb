-- The circuit breaker every worker shares (issue 13). One row, in
-- PostgreSQL like the running switch, so that a Redis restart cannot close
-- an open breaker. The window counts calls in two buckets (the current one
-- from window_start and the one before), a sliding-window estimate.
-- +goose Up
CREATE TABLE IF NOT EXISTS delivery_breaker (
    id              SMALLINT         PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    state           TEXT             NOT NULL DEFAULT 'closed' CHECK (state IN ('closed', 'open', 'half_open')),
    since           TIMESTAMPTZ      NOT NULL DEFAULT now(),
    reason          TEXT             NOT NULL DEFAULT '',
    failure_rate    DOUBLE PRECISION NOT NULL DEFAULT 0,
    window_start    TIMESTAMPTZ      NOT NULL DEFAULT now(),
    calls           INTEGER          NOT NULL DEFAULT 0,
    failures        INTEGER          NOT NULL DEFAULT 0,
    prev_calls      INTEGER          NOT NULL DEFAULT 0,
    prev_failures   INTEGER          NOT NULL DEFAULT 0,
    probe_at        TIMESTAMPTZ,
    trips           BIGINT           NOT NULL DEFAULT 0
);
INSERT INTO delivery_breaker (id) VALUES (1) ON CONFLICT (id) DO NOTHING;
