package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// statementStat is the JSON the bench reads (bench/internal/bench.StatementStat):
// how often one statement was sent and the time its round trips took.
type statementStat struct {
	Count   int64   `json:"count"`
	Seconds float64 `json:"seconds"`
}

// statementCounter is a pgx tracer that counts every statement this process
// sends, by its first words, as the bench's traced worker does: queries
// (BEGIN and COMMIT included), the queries of a batch, COPYs, prepares and
// new connections. pg_stat_statements is not loaded on the bench's server,
// and pg_stat_database counts a multi-statement transaction once.
type statementCounter struct {
	mu     sync.Mutex
	n      map[string]statementStat
	labels map[string]string
}

var (
	_ pgx.QueryTracer    = (*statementCounter)(nil)
	_ pgx.BatchTracer    = (*statementCounter)(nil)
	_ pgx.CopyFromTracer = (*statementCounter)(nil)
	_ pgx.PrepareTracer  = (*statementCounter)(nil)
	_ pgx.ConnectTracer  = (*statementCounter)(nil)
)

func newStatementCounter() *statementCounter {
	return &statementCounter{n: map[string]statementStat{}, labels: map[string]string{}}
}

// label names a statement by its first seven words, whitespace collapsed
// (bench/internal/bench.StatementLabel), splitting each SQL text once.
func (s *statementCounter) label(sql string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.labels[sql]
	if !ok {
		f := strings.Fields(sql)
		if len(f) > 7 {
			f = f[:7]
		}
		l = strings.Join(f, " ")
		s.labels[sql] = l
	}
	return l
}

type traceKey struct{}

type traceStart struct {
	label string
	at    time.Time
}

func (s *statementCounter) start(ctx context.Context, label string) context.Context {
	return context.WithValue(ctx, traceKey{}, traceStart{label: label, at: time.Now()})
}

func (s *statementCounter) end(ctx context.Context) {
	t, ok := ctx.Value(traceKey{}).(traceStart)
	if !ok {
		return
	}
	s.add(t.label, time.Since(t.at).Seconds())
}

func (s *statementCounter) add(label string, seconds float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.n[label]
	st.Count++
	st.Seconds += seconds
	s.n[label] = st
}

func (s *statementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	return s.start(ctx, s.label(d.SQL))
}

func (s *statementCounter) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	s.end(ctx)
}

func (s *statementCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

// TraceBatchQuery counts each statement of a batch; they share one round
// trip, so no time is attributed to them.
func (s *statementCounter) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	s.add(s.label(d.SQL), 0)
}

func (s *statementCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (s *statementCounter) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceCopyFromStartData) context.Context {
	return s.start(ctx, "COPY "+d.TableName.Sanitize())
}

func (s *statementCounter) TraceCopyFromEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromEndData) {
	s.end(ctx)
}

func (s *statementCounter) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	return s.start(ctx, "(prepare)")
}

func (s *statementCounter) TracePrepareEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareEndData) {
	s.end(ctx)
}

func (s *statementCounter) TraceConnectStart(ctx context.Context, _ pgx.TraceConnectStartData) context.Context {
	return s.start(ctx, "(connect)")
}

func (s *statementCounter) TraceConnectEnd(ctx context.Context, _ pgx.TraceConnectEndData) {
	s.end(ctx)
}

// write saves the counts as JSON.
func (s *statementCounter) write(path string) error {
	s.mu.Lock()
	b, err := json.Marshal(s.n)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write statement counts: %w", err)
	}
	return nil
}
