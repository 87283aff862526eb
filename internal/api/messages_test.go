package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/api"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

const okPhone = `"phone_number": "+905551111111"`

func TestCreateWithLifecycleFieldsAndReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "DEFAULT_VALIDITY_PERIOD=600")
	at := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	body := fmt.Sprintf(`{"id": "otp:42", "content": "code 1", %s, "send_at": %q, "validity_period": 7200, "priority": 9}`, okPhone, at.Format(time.RFC3339))
	status, h, b := e.postJSON("/api/v1/messages", body)
	if status != http.StatusCreated || h.Get("Location") != "/api/v1/messages/otp:42" {
		t.Fatalf("create: %d %v %s", status, h, b)
	}
	m := decode[api.MessageCreated](t, b)
	if m.ID != "otp:42" || m.Priority != 9 || !m.SendAt.Equal(at) || !m.ExpiresAt.Equal(at.Add(2*time.Hour)) || m.Status != "pending" {
		t.Fatalf("created %+v", m)
	}
	// The same create again: 200, the same message, nothing new.
	status, _, b = e.postJSON("/api/v1/messages", body)
	if status != http.StatusOK || decode[api.MessageCreated](t, b).CreatedAt != m.CreatedAt {
		t.Fatalf("replay: %d %s", status, b)
	}
	// The same id with another body: 409 duplicate_id, nothing changed.
	status, h, b = e.postJSON("/api/v1/messages", strings.Replace(body, `"priority": 9`, `"priority": 8`, 1))
	wantError(t, status, h, b, http.StatusConflict, "duplicate_id")
	if n := e.count("true"); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
	// DEFAULT_VALIDITY_PERIOD applies without validity_period.
	status, _, b = e.postJSON("/api/v1/messages", `{"content": "hi", `+okPhone+`}`)
	d := decode[api.MessageCreated](t, b)
	if status != http.StatusCreated || d.ExpiresAt == nil || !d.ExpiresAt.Equal(d.CreatedAt.Add(10*time.Minute)) || d.SendAt != nil || d.Priority != 0 {
		t.Fatalf("default validity: %d %s", status, b)
	}
	// A replay after its send_at passed is still a replay, not a 422.
	soon := time.Now().Add(2 * time.Second).UTC().Truncate(time.Second)
	soonBody := fmt.Sprintf(`{"id": "soon", "content": "x", %s, "send_at": %q}`, okPhone, soon.Format(time.RFC3339))
	if status, _, b := e.postJSON("/api/v1/messages", soonBody); status != http.StatusCreated {
		t.Fatalf("create soon: %d %s", status, b)
	}
	testenv.Eventually(t, 5*time.Second, "send_at to pass", func() bool { return time.Now().After(soon.Add(time.Second)) })
	if status, _, b := e.postJSON("/api/v1/messages", soonBody); status != http.StatusOK {
		t.Fatalf("late replay: %d %s", status, b)
	}
	status, h, b = e.postJSON("/api/v1/messages", strings.Replace(soonBody, `"x"`, `"y"`, 1))
	wantError(t, status, h, b, http.StatusUnprocessableEntity, "validation_failed")
	// GET shows the lifecycle fields.
	status, _, b = e.get("/api/v1/messages/otp:42")
	g := decode[api.MessageDetail](t, b)
	if status != 200 || g.Priority != 9 || !g.SendAt.Equal(at) || g.DeliveryStatus != nil || g.DeliveredAt != nil {
		t.Fatalf("get: %d %s", status, b)
	}
}

func TestCreateRejectsBadLifecycleFields(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	far := time.Now().Add(367 * 24 * time.Hour).UTC().Format(time.RFC3339)
	cases := []struct{ name, extra, field string }{
		{"empty id", `"id": ""`, "id"},
		{"long id", `"id": "` + strings.Repeat("a", 37) + `"`, "id"},
		{"slash id", `"id": "a/b"`, "id"},
		{"unicode id", `"id": "é"`, "id"},
		{"dot id", `"id": "."`, "id"},
		{"dot-dot id", `"id": ".."`, "id"},
		{"id starting with a dot", `"id": ".x"`, "id"},
		{"id starting with a dash", `"id": "-x"`, "id"},
		{"id starting with an underscore", `"id": "_x"`, "id"},
		{"route word sent", `"id": "sent"`, "id"},
		{"route word in capitals", `"id": "SENT"`, "id"},
		{"route word batch", `"id": "Batch"`, "id"},
		{"id with a tilde first", `"id": "~x"`, "id"},
		{"id with a percent", `"id": "a%2Fb"`, "id"},
		{"send_at not a time", `"send_at": "tomorrow"`, "send_at"},
		{"send_at without zone", `"send_at": "2030-01-01T09:00:00"`, "send_at"},
		{"send_at past", `"send_at": "` + past + `"`, "send_at"},
		{"send_at too far", `"send_at": "` + far + `"`, "send_at"},
		{"validity zero", `"validity_period": 0`, "validity_period"},
		{"validity too long", `"validity_period": 2592001`, "validity_period"},
		{"validity fraction", `"validity_period": 1.5`, "validity_period"},
		{"validity exponent", `"validity_period": 1e3`, "validity_period"},
		{"priority 10", `"priority": 10`, "priority"},
		{"priority negative", `"priority": -1`, "priority"},
	}
	for _, c := range cases {
		status, h, b := e.postJSON("/api/v1/messages", `{"content": "hi", `+okPhone+`, `+c.extra+`}`)
		got := wantError(t, status, h, b, http.StatusUnprocessableEntity, "validation_failed")
		if got.Field != c.field {
			t.Errorf("%s: field %q, want %q", c.name, got.Field, c.field)
		}
	}
	if n := e.count("true"); n != 0 {
		t.Fatalf("%d rows stored by rejected creates", n)
	}
}

func TestBatchAllOrNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "API_KEY="+testKey)
	good := `{"content": "a", ` + okPhone + `}`
	bad := `{"content": "b", "phone_number": "123"}`
	body := `{"messages": [` + good + `, ` + bad + `, {"id": "b-1", "content": "c", ` + okPhone + `, "priority": 11}, {"content": "d", ` + okPhone + `, "x": 1}]}`
	status, h, b := e.postJSON("/api/v1/messages/batch", body, bearer(testKey))
	wantError(t, status, h, b, http.StatusUnprocessableEntity, "validation_failed")
	items := decode[api.ErrorResponse](t, b).Error.Items
	if fmt.Sprint(items) != fmt.Sprint([]api.ItemError{
		{Index: 1, Field: "phone_number", Message: items[0].Message},
		{Index: 2, Field: "priority", Message: items[1].Message},
		{Index: 3, Field: "x", Message: items[2].Message},
	}) {
		t.Fatalf("items %+v", items)
	}
	if n := e.count("true"); n != 0 {
		t.Fatalf("%d rows stored by a refused batch", n)
	}
	// Without the key: 401.
	status, h, b = e.postJSON("/api/v1/messages/batch", `{"messages": [`+good+`]}`)
	wantError(t, status, h, b, http.StatusUnauthorized, "unauthorized")

	var all []string
	for i := range 3 {
		all = append(all, fmt.Sprintf(`{"id": "b-%d", "content": "m%d", %s, "priority": %d}`, i, i, okPhone, i))
	}
	ok := `{"messages": [` + strings.Join(all, ",") + `]}`
	status, _, b = e.postJSON("/api/v1/messages/batch", ok, bearer(testKey))
	got := decode[api.BatchCreated](t, b)
	if status != http.StatusCreated || len(got.Data) != 3 || got.Data[0].ID != "b-0" || got.Data[2].ID != "b-2" || got.Data[2].Priority != 2 {
		t.Fatalf("batch: %d %s", status, b)
	}
	// A replay stores nothing new; a changed item refuses the whole batch.
	status, _, b = e.postJSON("/api/v1/messages/batch", ok, bearer(testKey))
	if status != http.StatusCreated || e.count("true") != 3 {
		t.Fatalf("replay: %d %s", status, b)
	}
	changed := `{"messages": [{"id": "b-9", "content": "new", ` + okPhone + `}, {"id": "b-1", "content": "other", ` + okPhone + `}]}`
	status, h, b = e.postJSON("/api/v1/messages/batch", changed, bearer(testKey))
	wantError(t, status, h, b, http.StatusConflict, "duplicate_id")
	if e.count("true") != 3 {
		t.Fatal("a refused batch stored a row")
	}
	for _, body := range []string{`{"messages": []}`, `{"messages": [` + strings.Repeat(good+",", 1000) + good + `]}`} {
		status, h, b := e.postJSON("/api/v1/messages/batch", body, bearer(testKey))
		if got := wantError(t, status, h, b, http.StatusUnprocessableEntity, "validation_failed"); got.Field != "messages" {
			t.Fatalf("field %q", got.Field)
		}
	}
	status, h, b = e.postJSON("/api/v1/messages/batch", `{"messages": [{"id": "d", "content": "a", `+okPhone+`}, {"id": "d", "content": "a", `+okPhone+`}]}`, bearer(testKey))
	wantError(t, status, h, b, http.StatusUnprocessableEntity, "validation_failed")
}

// The batch create takes its 1,000 items at their largest: every item with
// a 36-character id and content of the longest allowed length, each
// character escaped (\u00e7, six bytes), over 1 MB in all. They are all
// stored, exactly as sent. The 64 KiB limit of the other routes once
// refused such a batch with 413.
func TestBatchOfAThousandLargestItems(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const items, length = 1000, 160 // MAX_CONTENT_LENGTH's default
	content := strings.Repeat(`\u00e7`, length)
	all := make([]string, items)
	for i := range all {
		all[i] = fmt.Sprintf(`{"id": "%036d", "content": "%s", %s, "validity_period": 2592000, "priority": 9}`, i, content, okPhone)
	}
	body := `{"messages": [` + strings.Join(all, ", ") + `]}`
	if len(body) <= api.BodyLimit || len(body) > api.BatchBodyLimit {
		t.Fatalf("the body is %d bytes; the test wants more than %d and at most %d", len(body), api.BodyLimit, api.BatchBodyLimit)
	}
	status, _, b := e.postJSON("/api/v1/messages/batch", body)
	if status != http.StatusCreated {
		t.Fatalf("batch of %d bytes: %d %.300s", len(body), status, b)
	}
	var stored int
	if err := e.pool.QueryRow(context.Background(),
		`SELECT count(*) FROM messages WHERE content = $1`, strings.Repeat("ç", length)).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != items {
		t.Fatalf("%d of %d items stored exactly as sent", stored, items)
	}
}

func TestListCancelAttemptsReceipts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for i := range 5 {
		status, _, b := e.postJSON("/api/v1/messages", fmt.Sprintf(`{"id": "l-%d", "content": "m", %s, "priority": %d}`, i, okPhone, i%2))
		if status != http.StatusCreated {
			t.Fatalf("create: %d %s", status, b)
		}
	}
	// Cancel: 200, 200 again, 409 for other states, 404 unknown.
	for range 2 {
		status, _, b := e.postJSON("/api/v1/messages/l-1/cancel", "")
		if status != 200 || decode[api.MessageDetail](t, b).Status != "canceled" {
			t.Fatalf("cancel: %d %s", status, b)
		}
	}
	e.markSent(time.Now().Add(-time.Hour), "l-2")
	status, h, b := e.postJSON("/api/v1/messages/l-2/cancel", "")
	wantError(t, status, h, b, http.StatusConflict, "not_cancelable")
	status, h, b = e.postJSON("/api/v1/messages/nope/cancel", "")
	wantError(t, status, h, b, http.StatusNotFound, "not_found")

	// The list: newest first, keyset pages, filters.
	var ids []string
	cursor := ""
	for {
		status, _, b := e.get("/api/v1/messages?limit=2" + cursor)
		if status != 200 {
			t.Fatalf("list: %d %s", status, b)
		}
		p := decode[api.MessagePage](t, b)
		for _, m := range p.Data {
			ids = append(ids, m.ID)
		}
		if p.NextCursor == nil {
			break
		}
		cursor = "&cursor=" + *p.NextCursor
	}
	if strings.Join(ids, ",") != "l-4,l-3,l-2,l-1,l-0" {
		t.Fatalf("walk %v", ids)
	}
	status, _, b = e.get("/api/v1/messages?status=canceled&priority=1")
	if p := decode[api.MessagePage](t, b); status != 200 || len(p.Data) != 1 || p.Data[0].ID != "l-1" {
		t.Fatalf("filtered: %d %s", status, b)
	}
	for _, q := range []string{"status=gone", "priority=10", "priority=x", "cursor=zzz"} {
		status, h, b := e.get("/api/v1/messages?" + q)
		if status != 400 {
			t.Fatalf("%s: %d %s", q, status, b)
		}
		_ = h
	}

	// Attempts: as recorded, oldest first; 404 unknown.
	e.exec(`INSERT INTO message_attempts VALUES ('l-2', 1, '2026-01-01T00:00:00Z', 12, NULL, 'retry', 'webhook call failed: timeout'),
        ('l-2', 2, '2026-01-01T00:01:00Z', 7, 202, 'sent', NULL)`)
	status, _, b = e.get("/api/v1/messages/l-2/attempts")
	as := decode[api.AttemptList](t, b)
	if status != 200 || len(as.Data) != 2 || as.Data[0].StatusCode != nil || *as.Data[1].StatusCode != 202 || as.Data[1].Error != nil || as.Data[0].Outcome != "retry" {
		t.Fatalf("attempts: %d %s", status, b)
	}
	status, _, b = e.get("/api/v1/messages/l-3/attempts")
	if status != 200 || string(b) != `{"data":[]}` {
		t.Fatalf("no attempts: %d %s", status, b)
	}
	status, h, b = e.get("/api/v1/messages/nope/attempts")
	wantError(t, status, h, b, http.StatusNotFound, "not_found")

	// Receipts.
	t2 := time.Now().Add(-10 * time.Minute).UTC().Format(time.RFC3339)
	t1 := time.Now().Add(-20 * time.Minute).UTC().Format(time.RFC3339)
	status, _, b = e.postJSON("/api/v1/receipts", `{"message_id": "remote-l-2", "status": "undelivered", "error_code": "30003", "timestamp": "`+t2+`"}`)
	r := decode[api.MessageDetail](t, b)
	if status != 200 || r.ID != "l-2" || *r.DeliveryStatus != "undelivered" || *r.DeliveryError != "30003" || r.Status != "sent" {
		t.Fatalf("receipt: %d %s", status, b)
	}
	status, _, b = e.postJSON("/api/v1/receipts", `{"message_id": "remote-l-2", "status": "delivered", "timestamp": "`+t1+`"}`)
	if r := decode[api.MessageDetail](t, b); status != 200 || *r.DeliveryStatus != "undelivered" {
		t.Fatalf("older receipt won: %d %s", status, b)
	}
	status, h, b = e.postJSON("/api/v1/receipts", `{"message_id": "remote-nope", "status": "delivered"}`)
	wantError(t, status, h, b, http.StatusNotFound, "not_found")
	for _, bad := range []string{`{"message_id": "", "status": "delivered"}`, `{"message_id": "r", "status": "read"}`,
		`{"message_id": "r", "status": "delivered", "timestamp": "yesterday"}`, `{"message_id": "r\u0001", "status": "delivered"}`} {
		status, h, b := e.postJSON("/api/v1/receipts", bad)
		wantError(t, status, h, b, http.StatusUnprocessableEntity, "validation_failed")
	}
}

// A receipt names exactly one message, within the time it can have
// happened, and delivered never carries an error code; a receipt that
// breaks a rule changes nothing. Of two with the same timestamp, the first
// wins.
func TestReceiptRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.exec(`INSERT INTO messages (id, content, phone_number) VALUES
        ('one', 'hi', '+905551111111'), ('twin-a', 'hi', '+905551111111'), ('twin-b', 'hi', '+905551111111')`)
	sent := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	e.markSent(sent, "one", "twin-a", "twin-b")
	e.exec(`UPDATE messages SET remote_message_id = 'remote-twin' WHERE id LIKE 'twin-%'`)
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	receipt := func(remote, status, extra string) string {
		return `{"message_id": "` + remote + `", "status": "` + status + `"` + extra + `}`
	}
	for _, c := range []struct {
		name, body  string
		status      int
		code, field string
	}{
		{"ambiguous remote id", receipt("remote-twin", "delivered", ""), 409, "ambiguous_remote_id", "message_id"},
		{"ambiguous, with a timestamp", receipt("remote-twin", "undelivered", `, "timestamp": "`+ts(time.Now().Add(-time.Minute))+`"`), 409, "ambiguous_remote_id", "message_id"},
		{"year 9999", receipt("remote-one", "delivered", `, "timestamp": "9999-12-31T23:59:59Z"`), 422, "validation_failed", "timestamp"},
		{"six minutes ahead", receipt("remote-one", "delivered", `, "timestamp": "`+ts(time.Now().Add(6*time.Minute))+`"`), 422, "validation_failed", "timestamp"},
		{"six minutes before sent_at", receipt("remote-one", "delivered", `, "timestamp": "`+ts(sent.Add(-6*time.Minute))+`"`), 422, "validation_failed", "timestamp"},
		{"delivered with an error code", receipt("remote-one", "delivered", `, "error_code": "30003"`), 422, "validation_failed", "error_code"},
		{"delivered with an empty error code", receipt("remote-one", "delivered", `, "error_code": ""`), 422, "validation_failed", "error_code"},
	} {
		status, h, b := e.postJSON("/api/v1/receipts", c.body)
		if got := wantError(t, status, h, b, c.status, c.code); got.Field != c.field {
			t.Errorf("%s: field %q, want %q", c.name, got.Field, c.field)
		}
	}
	if n := e.count("delivery_status IS NOT NULL OR delivered_at IS NOT NULL OR delivery_error IS NOT NULL"); n != 0 {
		t.Fatalf("refused receipts changed %d messages", n)
	}
	// The first of two receipts with one timestamp wins; the second
	// answers 200 with the message as stored.
	at := ts(time.Now().Add(-time.Minute))
	status, _, b := e.postJSON("/api/v1/receipts", receipt("remote-one", "delivered", `, "timestamp": "`+at+`"`))
	if r := decode[api.MessageDetail](t, b); status != 200 || *r.DeliveryStatus != "delivered" {
		t.Fatalf("first: %d %s", status, b)
	}
	status, _, b = e.postJSON("/api/v1/receipts", receipt("remote-one", "undelivered", `, "error_code": "30003", "timestamp": "`+at+`"`))
	if r := decode[api.MessageDetail](t, b); status != 200 || *r.DeliveryStatus != "delivered" || r.DeliveryError != nil {
		t.Fatalf("second with the same timestamp: %d %s", status, b)
	}
	if n := e.count("id = 'one' AND delivery_status = 'delivered' AND delivery_error IS NULL"); n != 1 {
		t.Fatal("the second receipt of one timestamp changed the message")
	}
	// Within the margins: four minutes ahead is taken.
	status, _, b = e.postJSON("/api/v1/receipts", receipt("remote-one", "undelivered", `, "error_code": "30003", "timestamp": "`+ts(time.Now().Add(4*time.Minute))+`"`))
	if r := decode[api.MessageDetail](t, b); status != 200 || *r.DeliveryStatus != "undelivered" || *r.DeliveryError != "30003" {
		t.Fatalf("four minutes ahead: %d %s", status, b)
	}
}

func TestReceiptNeedsTheKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "API_KEY="+testKey)
	for _, path := range []string{"/api/v1/receipts", "/api/v1/messages/x/cancel"} {
		status, h, b := e.postJSON(path, `{"message_id": "r", "status": "delivered"}`)
		wantError(t, status, h, b, http.StatusUnauthorized, "unauthorized")
	}
}

// Ids of the accepted form, look-alikes of the route words included, are
// stored and read back as sent.
func TestChosenIDsAreStoredAsSent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, id := range []string{"otp-4711", "lc_x.i:y-1", "0192f0c4-6a1e-7cc1-9e07-3b1f2ad1c0de", "a~b", "x", strings.Repeat("z", 36), "sent-1", "batch2", "a..b"} {
		status, _, b := e.postJSON("/api/v1/messages", `{"id": "`+id+`", "content": "hi", `+okPhone+`}`)
		if status != http.StatusCreated || decode[api.MessageCreated](t, b).ID != id {
			t.Fatalf("create %q: %d %s", id, status, b)
		}
		if status, _, b := e.get("/api/v1/messages/" + id); status != 200 || decode[api.MessageDetail](t, b).ID != id {
			t.Fatalf("read %q: %d %s", id, status, b)
		}
	}
	// Rows another system inserted keep any id the column takes; reads and
	// cancel work on them as before.
	for _, id := range []string{"_legacy", "-legacy", "legacy id", "é"} {
		e.exec(`INSERT INTO messages (id, content, phone_number) VALUES ($1, 'hi', '+905551111111')`, id)
		if status, _, b := e.get("/api/v1/messages/" + url.PathEscape(id)); status != 200 || decode[api.MessageDetail](t, b).ID != id {
			t.Fatalf("read inserted %q: %d %s", id, status, b)
		}
		if status, _, b := e.postJSON("/api/v1/messages/"+url.PathEscape(id)+"/cancel", ""); status != 200 {
			t.Fatalf("cancel inserted %q: %d %s", id, status, b)
		}
	}
}

// RouteWords holds every fixed segment directly under /api/v1/messages/,
// so no id a create accepts is hidden by a route.
func TestRouteWordsMatchTheRouter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const prefix = "/api/v1/messages/"
	for _, r := range e.srv.App().GetRoutes(true) {
		rest, ok := strings.CutPrefix(r.Path, prefix)
		if !ok {
			continue
		}
		seg, _, _ := strings.Cut(rest, "/")
		if seg == "" || strings.HasPrefix(seg, ":") {
			continue
		}
		if !slices.Contains(api.RouteWords, strings.ToLower(seg)) {
			t.Errorf("route %s %s: %q is not in api.RouteWords", r.Method, r.Path, seg)
		}
		// A create with the route word as its id is refused, in any case.
		for _, id := range []string{seg, strings.ToUpper(seg)} {
			status, h, b := e.postJSON("/api/v1/messages", `{"id": "`+id+`", "content": "hi", `+okPhone+`}`)
			if got := wantError(t, status, h, b, http.StatusUnprocessableEntity, "validation_failed"); got.Field != "id" {
				t.Errorf("create with the route word %q as id: field %q, want id", id, got.Field)
			}
		}
	}
}
