package store

// Statistics: per-status counts for the metrics scrape, and per-minute
// call counts for the operator console's chart, read from message_attempts.

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/messaging-server/messaging-server/internal/messaging"
)

// MinuteCount is how many calls ended sent and failed in one minute.
type MinuteCount struct {
	// Minute is the start of the minute, UTC.
	Minute time.Time
	Sent   int64
	Failed int64
}

// minuteCountsSQL buckets the calls started in [$1, $2) by minute and
// returns one row per minute of that range, zeros included, oldest first.
// The range is computed by the caller from its clock, so the buckets are
// whole minutes whatever the session's time zone.
const minuteCountsSQL = `
WITH a AS (
    SELECT date_trunc('minute', started_at AT TIME ZONE 'UTC') AS minute,
           count(*) FILTER (WHERE outcome = 'sent')   AS sent,
           count(*) FILTER (WHERE outcome = 'failed') AS failed
    FROM message_attempts
    WHERE started_at >= $1 AND started_at < $2 AND outcome IN ('sent', 'failed')
    GROUP BY 1
)
SELECT m.minute AT TIME ZONE 'UTC', COALESCE(a.sent, 0), COALESCE(a.failed, 0)
FROM generate_series($1::timestamptz AT TIME ZONE 'UTC',
                     $2::timestamptz AT TIME ZONE 'UTC' - interval '1 minute',
                     interval '1 minute') AS m(minute)
LEFT JOIN a USING (minute)
ORDER BY m.minute`

// MinuteCounts returns the sent and failed calls per minute for the n
// minutes that end with the one holding now (the current minute counts so
// far), oldest first: always n entries.
func (s *Store) MinuteCounts(ctx context.Context, now time.Time, n int) ([]MinuteCount, error) {
	if n < 1 {
		return nil, fmt.Errorf("minute counts: %d minutes is not positive", n)
	}
	end := now.UTC().Truncate(time.Minute).Add(time.Minute)
	start := end.Add(-time.Duration(n) * time.Minute)
	rows, err := s.pool.Query(ctx, minuteCountsSQL, start, end)
	if err != nil {
		return nil, fmt.Errorf("minute counts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (MinuteCount, error) {
		var m MinuteCount
		err := r.Scan(&m.Minute, &m.Sent, &m.Failed)
		m.Minute = m.Minute.UTC()
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("minute counts: %w", err)
	}
	return out, nil
}

// CountByStatus counts messages in each status, with every status present
// (zero when none), for the metrics scrape. It reads the whole table, so it
// is meant for a scrape every few seconds at most, not per request.
func (s *Store) CountByStatus(ctx context.Context) (map[string]int64, error) {
	out := make(map[string]int64, len(messaging.Statuses))
	for _, st := range messaging.Statuses {
		out[st] = 0
	}
	rows, err := s.pool.Query(ctx, `SELECT status, count(*) FROM messages GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("count messages: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("count messages: %w", err)
		}
		out[st] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count messages: %w", err)
	}
	return out, nil
}
