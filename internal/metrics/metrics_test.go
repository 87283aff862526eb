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

// TestProviderMetricsCarryTheProvider: the breaker's state and the calls
// are labelled by provider.
func TestProviderMetricsCarryTheProvider(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	states := []string{"closed", "open", "half_open", "disabled"}
	b := metrics.NewBreakers(reg)
	primary, backup := b.For("primary", states), b.For("backup", states)
	primary.State("open", states)
	backup.State("closed", states)
	p := metrics.NewProviders(reg)
	p.Call("backup", "sent", 10*time.Millisecond)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += " " + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case m.GetGauge() != nil:
				got[key] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				got[key] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				got[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	for key, want := range map[string]float64{
		"messaging_breaker_state provider=primary state=open":         1,
		"messaging_breaker_state provider=primary state=closed":       0,
		"messaging_breaker_state provider=backup state=closed":        1,
		"messaging_provider_calls_total outcome=sent provider=backup": 1,
		"messaging_provider_call_duration_seconds provider=backup":    1,
		"messaging_breaker_trips_total provider=primary":              0,
	} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", key, v, ok, want)
		}
	}
}
