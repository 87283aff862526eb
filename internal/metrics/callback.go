package metrics

import "github.com/prometheus/client_golang/prometheus"

// Callback counts what a worker's status callback sender does.
type Callback struct {
	events     *prometheus.CounterVec
	deliveries *prometheus.CounterVec
	pending    prometheus.Gauge
}

// NewCallback creates the status callback metrics and registers them on
// reg.
func NewCallback(reg prometheus.Registerer) *Callback {
	c := &Callback{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "messaging", Name: "callback_events_total",
			Help: "Status callback events this worker started to send (first call only), by type (message.sent, message.failed, message.expired, message.canceled, message.delivered, message.undelivered).",
		}, []string{"type"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "messaging", Name: "callback_deliveries_total",
			Help: "Status callback calls by outcome: accepted (2xx), retried, failed (the schedule ran out), lost (the lease ran out and another claim holds the event).",
		}, []string{"outcome"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "messaging", Name: "callback_pending_events",
			Help: "Status callback events neither accepted nor failed, across all workers, as this worker last counted them.",
		}),
	}
	reg.MustRegister(c.events, c.deliveries, c.pending)
	return c
}

// Started counts an event's first call.
func (c *Callback) Started(typ string) {
	if c != nil {
		c.events.WithLabelValues(typ).Inc()
	}
}

// Delivery counts a call's outcome.
func (c *Callback) Delivery(outcome string) {
	if c != nil {
		c.deliveries.WithLabelValues(outcome).Inc()
	}
}

// Pending sets the gauge of pending events.
func (c *Callback) Pending(n int64) {
	if c != nil {
		c.pending.Set(float64(n))
	}
}
