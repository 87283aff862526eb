package metrics_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/messaging-server/messaging-server/internal/metrics"
)

func TestFirstAttemptObservesMessageAge(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	d := metrics.NewDelivery(reg)
	d.FirstAttempt(3 * time.Second)
	d.FirstAttempt(-time.Second) // a clock quirk counts as 0
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "messaging_message_age_seconds" {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != 2 || h.GetSampleSum() != 3 {
			t.Fatalf("count %d sum %g, want 2 and 3", h.GetSampleCount(), h.GetSampleSum())
		}
		return
	}
	t.Fatal("messaging_message_age_seconds is not registered")
}
