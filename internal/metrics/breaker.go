package metrics

import "github.com/prometheus/client_golang/prometheus"

// Breaker exposes a worker's view of the shared circuit breaker.
type Breaker struct {
	state *prometheus.GaugeVec
	trips prometheus.Counter
}

// NewBreaker creates the breaker metrics and registers them on reg.
func NewBreaker(reg prometheus.Registerer, states []string) *Breaker {
	b := &Breaker{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "messaging", Name: "breaker_state",
			Help: "1 for the state the shared circuit breaker is in (closed, open, half_open) as this process last saw it, 0 for the others.",
		}, []string{"state"}),
		trips: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "messaging", Name: "breaker_trips_total",
			Help: "Times this process tripped the shared circuit breaker (closed to open); the sum over workers is every trip.",
		}),
	}
	for _, s := range states {
		b.state.WithLabelValues(s).Set(0)
	}
	reg.MustRegister(b.state, b.trips)
	return b
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
		b.state.WithLabelValues(s).Set(v)
	}
}

// Trip counts one closed-to-open transition made by this process.
func (b *Breaker) Trip() {
	if b != nil {
		b.trips.Inc()
	}
}
