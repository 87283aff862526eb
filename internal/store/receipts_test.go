package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/messaging"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

func TestReceipts(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ctx := context.Background()
	exec(t, pool, `INSERT INTO messages (id, content, phone_number, status, is_sent, sent_at, remote_message_id)
        VALUES ('m1', 'x', '+905551111111', 'sent', true, now() - interval '1 hour', 'r1'),
               ('m2', 'x', '+905551111111', 'sent', true, now() - interval '1 hour', 'r2')`)
	t1 := time.Now().Add(-30 * time.Minute).UTC().Truncate(time.Microsecond)
	m, err := s.ApplyReceipt(ctx, store.Receipt{RemoteID: "r2", Status: "undelivered", Error: "30003", At: &t1})
	if err != nil || m.ID != "m2" || m.DeliveryStatus != "undelivered" || m.DeliveryError != "30003" || !m.DeliveredAt.Equal(t1) {
		t.Fatalf("receipt: %+v %v", m, err)
	}
	t2 := t1.Add(time.Minute)
	if m, err := s.ApplyReceipt(ctx, store.Receipt{RemoteID: "r2", Status: "delivered", At: &t2}); err != nil || m.DeliveryStatus != "delivered" || m.DeliveryError != "" {
		t.Fatalf("newer receipt: %+v %v", m, err)
	}
	// An older one changes nothing and still answers with the message.
	if m, err := s.ApplyReceipt(ctx, store.Receipt{RemoteID: "r2", Status: "undelivered", At: &t1}); err != nil || m.DeliveryStatus != "delivered" || !m.DeliveredAt.Equal(t2) {
		t.Fatalf("older receipt: %+v %v", m, err)
	}
	// So does one with the same timestamp: the first of equal ones wins.
	if m, err := s.ApplyReceipt(ctx, store.Receipt{RemoteID: "r2", Status: "undelivered", Error: "30003", At: &t2}); err != nil ||
		m.DeliveryStatus != "delivered" || m.DeliveryError != "" || !m.DeliveredAt.Equal(t2) {
		t.Fatalf("equal receipt: %+v %v", m, err)
	}
	if m, err := s.Get(ctx, "m1"); err != nil || m.DeliveryStatus != "" {
		t.Fatalf("other message touched: %+v %v", m, err)
	}
	if _, err := s.ApplyReceipt(ctx, store.Receipt{RemoteID: "nope", Status: "delivered"}); !errors.Is(err, messaging.ErrRemoteNotFound) {
		t.Fatalf("unknown remote id: %v", err)
	}
	// Without a timestamp, the database's now: newer than t2.
	if m, err := s.ApplyReceipt(ctx, store.Receipt{RemoteID: "r2", Status: "undelivered"}); err != nil || m.DeliveryStatus != "undelivered" || !m.DeliveredAt.After(t2) {
		t.Fatalf("receipt without a timestamp: %+v %v", m, err)
	}
}

// A receipt that cannot name one message, or whose time is out of range,
// changes nothing and says why.
func TestReceiptsRefused(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ctx := context.Background()
	// twice-a and twice-b share a remote id; legacy was sent before
	// sent_at was recorded.
	exec(t, pool, `INSERT INTO messages (id, content, phone_number, status, is_sent, sent_at, remote_message_id) VALUES
        ('twice-a', 'x', '+905551111111', 'sent', true, now() - interval '1 hour', 'twice'),
        ('twice-b', 'x', '+905551111111', 'sent', true, now() - interval '1 hour', 'twice'),
        ('one', 'x', '+905551111111', 'sent', true, now() - interval '1 hour', 'one'),
        ('legacy', 'x', '+905551111111', 'sent', true, NULL, 'legacy'),
        ('failed-twice', 'x', '+905551111111', 'failed', false, NULL, 'failed-dup')`)
	var sentAt time.Time
	if err := pool.QueryRow(ctx, `SELECT sent_at FROM messages WHERE id = 'one'`).Scan(&sentAt); err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) *time.Time { v := time.Now().Add(d).UTC().Truncate(time.Microsecond); return &v }
	year9999 := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
	beforeSent := sentAt.Add(-messaging.ReceiptClockSkew - time.Second)
	for _, c := range []struct {
		name string
		r    store.Receipt
		want error
	}{
		{"ambiguous", store.Receipt{RemoteID: "twice", Status: "delivered"}, messaging.ErrAmbiguousRemoteID},
		{"ambiguous with a timestamp", store.Receipt{RemoteID: "twice", Status: "undelivered", At: at(-time.Minute)}, messaging.ErrAmbiguousRemoteID},
		{"year 9999", store.Receipt{RemoteID: "one", Status: "delivered", At: &year9999}, messaging.ErrReceiptFuture},
		{"six minutes ahead", store.Receipt{RemoteID: "one", Status: "delivered", At: at(6 * time.Minute)}, messaging.ErrReceiptFuture},
		{"before sent_at", store.Receipt{RemoteID: "one", Status: "delivered", At: &beforeSent}, messaging.ErrReceiptBeforeSent},
		{"not sent", store.Receipt{RemoteID: "failed-dup", Status: "delivered"}, messaging.ErrRemoteNotFound},
	} {
		if _, err := s.ApplyReceipt(ctx, c.r); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	var touched int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM messages
        WHERE delivery_status IS NOT NULL OR delivered_at IS NOT NULL OR delivery_error IS NOT NULL`).Scan(&touched); err != nil {
		t.Fatal(err)
	}
	if touched != 0 {
		t.Fatalf("refused receipts changed %d messages", touched)
	}
	// Within the margins they apply: four minutes ahead, four minutes
	// before sent_at, and any time for a message without sent_at.
	withinBefore := sentAt.Add(-4 * time.Minute)
	for _, c := range []store.Receipt{
		{RemoteID: "one", Status: "undelivered", At: &withinBefore},
		{RemoteID: "one", Status: "delivered", At: at(4 * time.Minute)},
		{RemoteID: "legacy", Status: "delivered", At: &beforeSent},
	} {
		if m, err := s.ApplyReceipt(ctx, c); err != nil || m.DeliveryStatus != c.Status || !m.DeliveredAt.Equal(*c.At) {
			t.Errorf("%+v: %+v %v", c, m, err)
		}
	}
}

// Receipts with one timestamp arriving at once: the first applies, every
// other changes nothing, and every answer shows the winner.
func TestEqualReceiptsAtOnce(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ctx := context.Background()
	exec(t, pool, `INSERT INTO messages (id, content, phone_number, status, is_sent, sent_at, remote_message_id)
        VALUES ('m', 'x', '+905551111111', 'sent', true, now() - interval '1 hour', 'r')`)
	at := time.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond)
	const n = 8
	answers := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := store.Receipt{RemoteID: "r", Status: "delivered", At: &at}
			if i%2 == 1 {
				r.Status, r.Error = "undelivered", "30003"
			}
			m, err := s.ApplyReceipt(ctx, r)
			answers[i], errs[i] = m.DeliveryStatus+"/"+m.DeliveryError, err
		})
	}
	wg.Wait()
	final, err := s.Get(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if errs[i] != nil || answers[i] != final.DeliveryStatus+"/"+final.DeliveryError {
			t.Fatalf("answer %d: %q %v; stored %q/%q", i, answers[i], errs[i], final.DeliveryStatus, final.DeliveryError)
		}
	}
}

func TestReceiptTarget(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	sent := now.Add(-time.Hour)
	msg := store.Message{ID: "m", SentAt: &sent}
	legacy := store.Message{ID: "old"}
	at := func(t time.Time) *time.Time { return &t }
	for _, c := range []struct {
		name    string
		r       store.Receipt
		matches []store.Message
		wantAt  time.Time
		wantErr error
	}{
		{"none", store.Receipt{}, nil, time.Time{}, messaging.ErrRemoteNotFound},
		{"two", store.Receipt{}, []store.Message{msg, legacy}, time.Time{}, messaging.ErrAmbiguousRemoteID},
		{"no timestamp: now", store.Receipt{}, []store.Message{msg}, now, nil},
		{"exactly the margin ahead", store.Receipt{At: at(now.Add(messaging.ReceiptClockSkew))}, []store.Message{msg}, now.Add(messaging.ReceiptClockSkew), nil},
		{"a microsecond past the margin", store.Receipt{At: at(now.Add(messaging.ReceiptClockSkew + time.Microsecond))}, []store.Message{msg}, time.Time{}, messaging.ErrReceiptFuture},
		{"year 9999", store.Receipt{At: at(time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC))}, []store.Message{legacy}, time.Time{}, messaging.ErrReceiptFuture},
		{"exactly the margin before sent", store.Receipt{At: at(sent.Add(-messaging.ReceiptClockSkew))}, []store.Message{msg}, sent.Add(-messaging.ReceiptClockSkew), nil},
		{"before sent past the margin", store.Receipt{At: at(sent.Add(-messaging.ReceiptClockSkew - time.Microsecond))}, []store.Message{msg}, time.Time{}, messaging.ErrReceiptBeforeSent},
		{"long before, no sent_at", store.Receipt{At: at(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))}, []store.Message{legacy}, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), nil},
	} {
		m, gotAt, err := store.ReceiptTarget(c.r, now, c.matches)
		if !errors.Is(err, c.wantErr) || !gotAt.Equal(c.wantAt) || err == nil && m.ID != c.matches[0].ID {
			t.Errorf("%s: %+v %v %v, want %v %v", c.name, m, gotAt, err, c.wantAt, c.wantErr)
		}
	}
}
