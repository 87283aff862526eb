// Package metrics defines the project's own Prometheus metrics. Each program
// registers them on its own registry and serves it; constructors take the
// registerer so tests and several in-process workers do not collide.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Delivery counts what workers do with messages.
type Delivery struct {
	outcomes       *prometheus.CounterVec
	webhookLatency *prometheus.HistogramVec
	claimLatency   prometheus.Histogram
	claimed        prometheus.Counter
	cacheErrors    prometheus.Counter
	released       prometheus.Counter
	recordFailures prometheus.Counter
	recordFailing  prometheus.Gauge
	messageAge     prometheus.Histogram
}

// NewDelivery creates the delivery metrics and registers them on reg.
func NewDelivery(reg prometheus.Registerer) *Delivery {
	d := &Delivery{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "messaging", Name: "deliveries_total",
			Help: "Webhook deliveries by outcome (sent, retried, failed) and reason (ok, invalid, http_5xx, http_429, http_408, http_410, http_4xx, http_3xx, timeout, connection, canceled).",
		}, []string{"outcome", "reason"}),
		webhookLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "messaging", Name: "webhook_request_duration_seconds",
			Help:    "Time of one webhook call, by outcome.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"outcome"}),
		claimLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "messaging", Name: "claim_duration_seconds",
			Help:    "Time of one claim statement.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
		claimed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "messaging", Name: "claimed_total", Help: "Messages claimed for delivery.",
		}),
		cacheErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "messaging", Name: "cache_errors_total", Help: "Sent records that could not be written to Redis.",
		}),
		released: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "messaging", Name: "released_total", Help: "Claimed messages handed back unsent at shutdown.",
		}),
		recordFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "messaging", Name: "record_failures_total",
			Help: "Statements recording delivery outcomes that failed (each retry counts); while they fail the worker starts no call.",
		}),
		recordFailing: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "messaging", Name: "record_failing",
			Help: "1 while this worker cannot record outcomes and so starts no call (its /readyz answers 503), else 0.",
		}),
	}
	d.messageAge = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "messaging", Name: "message_age_seconds",
		Help:    "Time from a message's created_at (or its send_at, when later) to its first attempt's claim: the queue lag.",
		Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600},
	})
	reg.MustRegister(d.outcomes, d.webhookLatency, d.claimLatency, d.claimed, d.cacheErrors, d.released,
		d.recordFailures, d.recordFailing, d.messageAge)
	return d
}

// Outcome records one delivery's result and the webhook call's duration.
func (d *Delivery) Outcome(outcome, reason string, took time.Duration) {
	if d == nil {
		return
	}
	d.outcomes.WithLabelValues(outcome, reason).Inc()
	d.webhookLatency.WithLabelValues(outcome).Observe(took.Seconds())
}

// Claim records one claim statement.
func (d *Delivery) Claim(n int, took time.Duration) {
	if d == nil {
		return
	}
	d.claimed.Add(float64(n))
	d.claimLatency.Observe(took.Seconds())
}

// FirstAttempt records the queue lag of a message claimed for its first
// attempt.
func (d *Delivery) FirstAttempt(waited time.Duration) {
	if d == nil {
		return
	}
	d.messageAge.Observe(max(waited, 0).Seconds())
}

// CacheError records a failed cache write.
func (d *Delivery) CacheError() {
	if d != nil {
		d.cacheErrors.Inc()
	}
}

// Released records messages handed back at shutdown.
func (d *Delivery) Released(n int) {
	if d != nil {
		d.released.Add(float64(n))
	}
}

// RecordFailure counts one failed record statement.
func (d *Delivery) RecordFailure() {
	if d != nil {
		d.recordFailures.Inc()
	}
}

// RecordFailing sets whether outcomes cannot be recorded now.
func (d *Delivery) RecordFailing(failing bool) {
	if d == nil {
		return
	}
	v := 0.0
	if failing {
		v = 1
	}
	d.recordFailing.Set(v)
}
