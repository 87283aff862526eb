package api_test

import (
	"encoding/base64"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/api"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// sentRow is what the test knows about a sent message, to compute the
// order the list must have.
type sentRow struct {
	id     string
	sentAt *time.Time
}

// less is the list's order: sent_at descending, unknown sent_at last, then
// id descending (the test database's collation is C, byte order).
func less(a, b sentRow) int {
	switch {
	case a.sentAt == nil && b.sentAt != nil:
		return 1
	case a.sentAt != nil && b.sentAt == nil:
		return -1
	case a.sentAt != nil && !a.sentAt.Equal(*b.sentAt):
		return b.sentAt.Compare(*a.sentAt)
	}
	return strings.Compare(b.id, a.id)
}

// walk fetches every page of the sent list with the given limit, calling
// between before each page after the first, and returns the ids in order.
func walk(t *testing.T, e *env, limit int, between func()) []string {
	t.Helper()
	var got []string
	cursor := ""
	for page := 0; ; page++ {
		if page > 1000 {
			t.Fatal("pagination does not end")
		}
		if page > 0 && between != nil {
			between()
		}
		q := url.Values{"limit": {strconv.Itoa(limit)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		status, _, b := e.get("/api/v1/messages/sent?" + q.Encode())
		if status != 200 {
			t.Fatalf("page %d: %d %s", page, status, b)
		}
		p := decode[api.SentPage](t, b)
		if len(p.Data) > limit {
			t.Fatalf("page %d has %d rows, limit %d", page, len(p.Data), limit)
		}
		for _, m := range p.Data {
			got = append(got, m.ID)
		}
		if p.NextCursor == nil {
			return got
		}
		if len(p.Data) != limit {
			t.Fatalf("page %d: short page (%d of %d) with a next cursor", page, len(p.Data), limit)
		}
		cursor = *p.NextCursor
	}
}

// Pages neither repeat nor skip a message while others are marked sent
// between fetches; ties on sent_at and messages without sent_at page
// correctly too.
func TestSentPaginationIsStableUnderConcurrentSends(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ids := testenv.InsertMessages(t, e.pool, 200)
	base := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	var rows []sentRow
	for i, id := range ids[:30] {
		at := base.Add(-time.Duration(i) * 1500 * time.Microsecond)
		e.markSent(at, id)
		rows = append(rows, sentRow{id, &at})
	}
	tie := base.Add(-7 * time.Millisecond) // sorts among the 30
	e.markSent(tie, ids[30:36]...)
	for _, id := range ids[30:36] {
		rows = append(rows, sentRow{id, &tie})
	}
	// Sent rows without sent_at (only is_sent set): they come last.
	e.exec(`UPDATE messages SET status = 'sent', is_sent = TRUE WHERE id = ANY($1)`, ids[36:41])
	for _, id := range ids[36:41] {
		rows = append(rows, sentRow{id, nil})
	}
	e.exec(`UPDATE messages SET status = 'failed' WHERE id = $1`, ids[41])
	e.exec(`UPDATE messages SET status = 'sending' WHERE id = $1`, ids[42])
	slices.SortFunc(rows, less)
	want := make([]string, len(rows))
	for i, r := range rows {
		want[i] = r.id
	}

	// Static list first: every limit walks the same sequence.
	for _, limit := range []int{1, 4, 7, 36, 41, 100} {
		if got := walk(t, e, limit, nil); !slices.Equal(got, want) {
			t.Fatalf("limit %d: got %d ids %v\nwant %d ids %v", limit, len(got), got, len(want), want)
		}
	}

	// Now send more between pages, newer than anything listed. A walk
	// started before them must see exactly the rows that were sent when it
	// started.
	next := 43
	for _, limit := range []int{3, 4, 7} {
		// Everything sent so far, including earlier walks' additions
		// (newest first, ahead of the original rows).
		before := walk(t, e, 1000, nil)
		got := walk(t, e, limit, func() {
			e.markSent(time.Now(), ids[next], ids[next+1])
			next += 2
		})
		if !slices.Equal(got, before) {
			t.Fatalf("limit %d under concurrent sends: got %v\nwant %v", limit, got, before)
		}
		if !slices.Equal(got[len(got)-len(want):], want) {
			t.Fatalf("limit %d: the original rows moved", limit)
		}
	}
	// A fresh walk sees everything once.
	got := walk(t, e, 10, nil)
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			t.Fatalf("id %s listed twice", id)
		}
		seen[id] = true
	}
	if len(got) != next-43+len(rows) {
		t.Fatalf("fresh walk has %d rows, want %d", len(got), next-43+len(rows))
	}
}

func TestSentListShapeAndParameters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	// Empty list: empty array, not null, and no cursor.
	status, _, b := e.get("/api/v1/messages/sent")
	if status != 200 || string(b) != `{"data":[],"next_cursor":null}` {
		t.Fatalf("empty list: %d %s", status, b)
	}

	ids := testenv.InsertMessages(t, e.pool, 130)
	at := time.Date(2025, 1, 2, 3, 4, 5, 123456000, time.UTC)
	e.markSent(at, ids[:120]...)

	status, _, b = e.get("/api/v1/messages/sent")
	p := decode[api.SentPage](t, b)
	if status != 200 || len(p.Data) != api.DefaultPageSize || p.NextCursor == nil {
		t.Fatalf("default page: %d rows, cursor %v", len(p.Data), p.NextCursor)
	}
	m := p.Data[0]
	if m.ID == "" || m.Content == "" || m.PhoneNumber == "" || m.RemoteMessageID == nil || *m.RemoteMessageID != "remote-"+m.ID ||
		m.SentAt == nil || !m.SentAt.Equal(at) {
		t.Fatalf("row: %+v", m)
	}
	for _, q := range []string{"limit=1000", "limit=101", "limit=100", "limit=99999999999999999999999"} {
		_, _, b := e.get("/api/v1/messages/sent?" + q)
		if n := len(decode[api.SentPage](t, b).Data); n != api.MaxPageSize {
			t.Fatalf("%s: %d rows, want %d (capped)", q, n, api.MaxPageSize)
		}
	}

	enc := base64.RawURLEncoding.EncodeToString
	bad := []struct{ name, query, field string }{
		{"limit zero", "limit=0", "limit"},
		{"limit negative", "limit=-5", "limit"},
		{"limit text", "limit=ten", "limit"},
		{"limit fraction", "limit=2.5", "limit"},
		{"cursor not base64", "cursor=!!!", "cursor"},
		{"cursor padded std base64", "cursor=" + url.QueryEscape(base64.StdEncoding.EncodeToString([]byte("2025-01-02T03:04:05Z|a"))+"=="), "cursor"},
		{"cursor without separator", "cursor=" + enc([]byte("2025-01-02T03:04:05Z")), "cursor"},
		{"cursor bad time", "cursor=" + enc([]byte("yesterday|abc")), "cursor"},
		{"cursor empty id", "cursor=" + enc([]byte("2025-01-02T03:04:05Z|")), "cursor"},
		{"cursor NUL in id", "cursor=" + enc([]byte("2025-01-02T03:04:05Z|a\x00b")), "cursor"},
		{"cursor invalid UTF-8", "cursor=" + enc([]byte("2025-01-02T03:04:05Z|\xff")), "cursor"},
		{"cursor id too long", "cursor=" + enc([]byte("|"+strings.Repeat("x", 37))), "cursor"},
	}
	for _, c := range bad {
		status, h, b := e.get("/api/v1/messages/sent?" + c.query)
		if got := wantError(t, status, h, b, 400, map[string]string{"limit": "invalid_parameter", "cursor": "invalid_cursor"}[c.field]); got.Field != c.field {
			t.Fatalf("%s: field %q", c.name, got.Field)
		}
	}
}
