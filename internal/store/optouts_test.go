package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/messaging"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// Adding is idempotent and keeps the first row; removing says whether
// there was one; the list pages newest first without repeats.
func TestOptOutsAddRemoveList(t *testing.T) {
	t.Parallel()
	_, _, s := testenv.MigratedStore(t)
	ctx := context.Background()
	base := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	phones := []string{"+12015550100", "+12015550101", "+12015550102", "+12015550103", "+12015550104"}
	for i, p := range phones {
		at := base.Add(time.Duration(i) * time.Minute)
		o, added, err := s.AddOptOut(ctx, p, store.OptOutInbound, &at)
		if err != nil || !added || o.PhoneNumber != p || o.Source != store.OptOutInbound || !o.CreatedAt.Equal(at) {
			t.Fatalf("add %s: %+v %v %v", p, o, added, err)
		}
	}
	o, added, err := s.AddOptOut(ctx, phones[0], store.OptOutAPI, nil)
	if err != nil || added || o.Source != store.OptOutInbound || !o.CreatedAt.Equal(base) {
		t.Fatalf("add again: %+v %v %v", o, added, err)
	}
	var got []string
	var after *store.OptOutCursor
	for range 10 {
		page, more, err := s.ListOptOuts(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page {
			got = append(got, o.PhoneNumber)
		}
		if !more {
			break
		}
		last := page[len(page)-1]
		after = &store.OptOutCursor{CreatedAt: last.CreatedAt, PhoneNumber: last.PhoneNumber}
	}
	want := []string{phones[4], phones[3], phones[2], phones[1], phones[0]}
	if len(got) != len(want) {
		t.Fatalf("listed %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("listed %v, want %v", got, want)
		}
	}
	if err := s.RemoveOptOut(ctx, phones[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveOptOut(ctx, phones[0]); !errors.Is(err, messaging.ErrOptOutNotFound) {
		t.Fatalf("remove again: %v", err)
	}
	if _, err := s.GetOptOut(ctx, phones[0]); !errors.Is(err, messaging.ErrOptOutNotFound) {
		t.Fatalf("get removed: %v", err)
	}
}

// A create to an opted-out number is stored suppressed, the others in the
// same batch pending; a pending message whose number opted out later ends
// suppressed at its claim, is not claimed and spends no budget.
func TestSuppressedAtCreateAndClaim(t *testing.T) {
	t.Parallel()
	_, pool, s := testenv.MigratedStore(t)
	ctx := context.Background()
	const out, other = "+447400123456", "+447400123457"
	if _, _, err := s.AddOptOut(ctx, out, store.OptOutAPI, nil); err != nil {
		t.Fatal(err)
	}
	made, err := s.Create(ctx, []store.NewMessage{
		{ID: "to-out", Content: "hi", PhoneNumber: out},
		{ID: "to-other", Content: "hi", PhoneNumber: other},
	})
	if err != nil {
		t.Fatal(err)
	}
	if made[0].Status != messaging.StatusSuppressed || made[0].LastError == "" || made[1].Status != messaging.StatusPending {
		t.Fatalf("created %+v", made)
	}
	// A replay of the suppressed create is the same message.
	again, err := s.Create(ctx, []store.NewMessage{{ID: "to-out", Content: "hi", PhoneNumber: out}})
	if err != nil || again[0].New || again[0].Status != messaging.StatusSuppressed {
		t.Fatalf("replay: %+v %v", again, err)
	}

	// other opts out after its message was created.
	if _, _, err := s.AddOptOut(ctx, other, store.OptOutInbound, nil); err != nil {
		t.Fatal(err)
	}
	testenv.InsertMessages(t, pool, 2) // two more, to numbers still allowed
	setBudget(t, pool, 10)
	got := claimIDs(t, s, 10)
	if len(got) != 2 {
		t.Fatalf("claimed %v, want the 2 allowed rows", got)
	}
	for _, id := range got {
		if id == "to-other" || id == "to-out" {
			t.Fatalf("claimed %s, whose number opted out", id)
		}
	}
	m, err := s.Get(ctx, "to-other")
	if err != nil || m.Status != messaging.StatusSuppressed || m.Attempts != 0 || m.LastError != "not sent: the recipient opted out" {
		t.Fatalf("after claim: %+v %v", m, err)
	}
	var budget int
	if err := pool.QueryRow(ctx, `SELECT budget FROM dispatch_control WHERE id = 1`).Scan(&budget); err != nil {
		t.Fatal(err)
	}
	if budget != 8 {
		t.Fatalf("budget %d, want 8: only the 2 claimed rows spend it", budget)
	}
	counts, err := s.CountByStatus(ctx)
	if err != nil || counts[messaging.StatusSuppressed] != 2 {
		t.Fatalf("counts %v %v", counts, err)
	}
}

// The claim's opt-out check is one primary key probe per picked row,
// whatever the size of opt_outs: never a scan of it.
func TestClaimPlanProbesOptOuts(t *testing.T) {
	t.Parallel()
	_, pool, _ := testenv.MigratedStore(t)
	exec(t, pool, `
INSERT INTO opt_outs (phone_number, source)
SELECT '+1201' || lpad(g::text, 7, '0'), 'inbound' FROM generate_series(1, 50000) g;
INSERT INTO messages (id, content, phone_number)
SELECT 'pending-' || g, 'x', '+1201' || lpad(g::text, 7, '0') FROM generate_series(1, 30000) g;
ANALYZE opt_outs; ANALYZE messages`)
	setBudget(t, pool, 5)
	rows, err := pool.Query(context.Background(), "EXPLAIN "+store.ClaimSQL, 32, 60.0, maxAttempts)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(plan, "\n")
	if !strings.Contains(text, "opt_outs_pkey") || strings.Contains(text, "Seq Scan on opt_outs") || strings.Contains(text, "Seq Scan on messages") {
		t.Fatalf("claim plan does not probe opt_outs by key:\n%s", text)
	}
	// A create of 1,000 rows probes too.
	var createPlan []string
	rows, err = pool.Query(context.Background(), "EXPLAIN "+store.CreateSQL, make([]string, 1000), make([]string, 1000),
		make([]string, 1000), make([]*time.Time, 1000), make([]int64, 1000), make([]int16, 1000), make([]string, 1000),
		make([]string, 1000))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		createPlan = append(createPlan, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if text := strings.Join(createPlan, "\n"); !strings.Contains(text, "opt_outs_pkey") || strings.Contains(text, "Seq Scan on opt_outs") {
		t.Fatalf("create plan does not probe opt_outs by key:\n%s", text)
	}
}
