package api_test

import (
	"context"
	"strings"
	"testing"

	"github.com/messaging-server/messaging-server/internal/api"
)

// GET /api/v1/scheduler shows the last purge under retention, and /metrics
// the total, as the scheduler stored them.
func TestSchedulerShowsRetention(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "RETENTION_PERIOD=30d")
	status, _, b := e.get("/api/v1/scheduler")
	st := decode[api.SchedulerStatus](t, b)
	if status != 200 || st.Retention.PeriodSeconds != 30*86400 || st.Retention.LastPurgeAt != nil || st.Retention.LastPurged != 0 {
		t.Fatalf("before a purge: %d %s", status, b)
	}
	if !strings.Contains(string(b), `"retention":{"period_seconds":2592000,"last_purge_at":null,"last_purged":0}`) {
		t.Fatalf("retention shape: %s", b)
	}
	for _, n := range []int64{40, 2} {
		if err := e.st.RecordPurge(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
	_, _, b = e.get("/api/v1/scheduler")
	st = decode[api.SchedulerStatus](t, b)
	if st.Retention.LastPurgeAt == nil || st.Retention.LastPurged != 2 {
		t.Fatalf("after two purges: %s", b)
	}
	_, _, m := e.get("/metrics")
	if !strings.Contains(string(m), "messaging_retention_purged_total 42") {
		t.Errorf("/metrics lacks messaging_retention_purged_total 42")
	}
}
