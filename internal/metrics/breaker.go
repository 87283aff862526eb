package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Breakers exposes a worker's view of every provider's shared circuit
// breaker; For gives one provider's handle.
type Breakers struct {
	state *prometheus.GaugeVec
	trips *prometheus.CounterVec
}

// Breaker is one provider's breaker metrics.
type Breaker struct {
	b        *Breakers
	provider string
}

// NewBreakers creates the breaker metrics and registers them on reg.
func NewBreakers(reg prometheus.Registerer) *Breakers {
	b := &Breakers{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "messaging", Name: "breaker_state",
			Help: "1 for the state each provider's shared circuit breaker is in (closed, open, half_open, or disabled by a 410) as this process last saw it, 0 for the others.",
		}, []string{"provider", "state"}),
		trips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "messaging", Name: "breaker_trips_total",
			Help: "Times this process tripped a provider's shared circuit breaker (closed to open); the sum over workers is every trip.",
		}, []string{"provider"}),
	}
	reg.MustRegister(b.state, b.trips)
	return b
}

// For is provider's handle, its states all 0 until the first view.
func (b *Breakers) For(provider string, states []string) *Breaker {
	for _, s := range states {
		b.state.WithLabelValues(provider, s).Set(0)
	}
	b.trips.WithLabelValues(provider)
	return &Breaker{b: b, provider: provider}
}

// State marks current as the breaker's state.
func (b *Breaker) State(current string, states []string) {
	if b == nil {
		return
	}
	for _, s := range states {
		v := 0.0
		if s == current {
			v = 1
		}
		b.b.state.WithLabelValues(b.provider, s).Set(v)
	}
}

// Trip counts one closed-to-open transition made by this process.
func (b *Breaker) Trip() {
	if b != nil {
		b.b.trips.WithLabelValues(b.provider).Inc()
	}
}

// Providers counts each provider's calls.
type Providers struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewProviders creates the per-provider call metrics and registers them
// on reg.
func NewProviders(reg prometheus.Registerer) *Providers {
	p := &Providers{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "messaging", Name: "provider_calls_total",
			Help: "Calls to each provider by outcome (sent, retried, failed).",
		}, []string{"provider", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "messaging", Name: "provider_call_duration_seconds",
			Help:    "Time of one call to each provider.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"provider"}),
	}
	reg.MustRegister(p.calls, p.duration)
	return p
}

// Call records one call to provider.
func (p *Providers) Call(provider, outcome string, took time.Duration) {
	if p == nil {
		return
	}
	p.calls.WithLabelValues(provider, outcome).Inc()
	p.duration.WithLabelValues(provider).Observe(took.Seconds())
}
