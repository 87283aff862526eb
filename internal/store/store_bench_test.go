package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// benchBacklog is how many due rows the claim and record benchmarks keep
// in their table; benchBatches are the batch sizes they time: one message,
// and what a worker of 32 calls claims and records at a time.
const benchBacklog = 10000

var benchBatches = []int{1, 32}

// benchStore is a migrated database of its own with benchBacklog due rows
// and a budget no benchmark runs out of.
func benchStore(b *testing.B) (*pgxpool.Pool, *store.Store) {
	b.Helper()
	if testing.Short() {
		b.Skip("needs PostgreSQL")
	}
	_, pool, s := testenv.MigratedStore(b)
	testenv.InsertMessages(b, pool, benchBacklog)
	if _, err := pool.Exec(context.Background(), `UPDATE dispatch_control SET running = true, budget = 2147483647`); err != nil {
		b.Fatalf("set the budget: %v", err)
	}
	if _, err := pool.Exec(context.Background(), `ANALYZE messages`); err != nil {
		b.Fatalf("analyze: %v", err)
	}
	return pool, s
}

// benchReset makes every row due again once the benchmark has claimed most
// of the backlog, so that each claim reads a table of the same size. The
// caller stops the timer around it.
func benchReset(b *testing.B, pool *pgxpool.Pool) {
	b.Helper()
	_, err := pool.Exec(context.Background(), `
UPDATE messages SET status = 'pending', attempts = 0, lease_expires_at = NULL,
       next_attempt_at = now() - interval '1 hour'
WHERE status <> 'pending'`)
	if err != nil {
		b.Fatalf("make the backlog due again: %v", err)
	}
}

// benchClaim claims exactly n rows, or fails the benchmark.
func benchClaim(b *testing.B, s *store.Store, n int) []store.Claimed {
	b.Helper()
	got, err := s.Claim(context.Background(), n, time.Minute, 1000)
	if err != nil {
		b.Fatal(err)
	}
	if len(got) != n {
		b.Fatalf("claimed %d rows, want %d", len(got), n)
	}
	return got
}

// BenchmarkClaim times the claim statement (Store.Claim, one round trip)
// taking a batch of the oldest due rows out of a backlog of benchBacklog.
func BenchmarkClaim(b *testing.B) {
	for _, n := range benchBatches {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			pool, s := benchStore(b)
			claimed := 0
			for b.Loop() {
				if claimed+n > benchBacklog {
					b.StopTimer()
					benchReset(b, pool)
					claimed = 0
					b.StartTimer()
				}
				benchClaim(b, s, n)
				claimed += n
			}
		})
	}
}

// BenchmarkRecord times the record statement (Store.RecordOutcomes, one
// round trip): a batch of sent outcomes, each with its attempt row, for
// rows claimed (untimed) just before.
func BenchmarkRecord(b *testing.B) {
	for _, n := range benchBatches {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			pool, s := benchStore(b)
			ctx := context.Background()
			outs := make([]store.Outcome, n)
			claimed := 0
			for b.Loop() {
				b.StopTimer()
				if claimed+n > benchBacklog {
					benchReset(b, pool)
					claimed = 0
				}
				now := time.Now()
				for i, c := range benchClaim(b, s, n) {
					outs[i] = store.Outcome{Claimed: c, Status: "sent", Kind: "sent", RemoteID: "r-" + c.ID,
						SentAt: now, StartedAt: now.Add(-40 * time.Millisecond), Duration: 40 * time.Millisecond, StatusCode: 202}
				}
				claimed += n
				b.StartTimer()
				done, err := s.RecordOutcomes(ctx, outs)
				if err != nil {
					b.Fatal(err)
				}
				if len(done) != n {
					b.Fatalf("recorded %d outcomes, want %d", len(done), n)
				}
			}
		})
	}
}
