package api

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/messaging-server/messaging-server/internal/breaker"
	"github.com/messaging-server/messaging-server/internal/store"
)

// scrapeTimeout bounds the PostgreSQL queries of one scrape.
const scrapeTimeout = 5 * time.Second

// metrics is the scrape endpoint.
//
//	@Summary		Prometheus metrics
//	@Description	Prometheus text format: asynq queue metrics (asynq_*, for every queue in Redis), messages by status, the sending switch and each provider's shared circuit breaker (messaging_breaker_state{provider,state}, messaging_breaker_trips_total{provider}) and the retention purge (messaging_retention_purged_total) read from PostgreSQL at scrape time (messaging_*), and Go/process metrics of the API. Per-delivery counters and webhook latency histograms live in the worker processes, which serve them on METRICS_PORT.
//	@Tags			health
//	@Produce		plain,json
//	@Success		200	{string}	string	"Prometheus text exposition format"
//	@Failure		429	{object}	ErrorResponse	"Rate limit reached"
//	@Failure		431	{object}	ErrorResponse	"Request headers larger than 4 KiB"
//	@Router			/metrics [get]
func (s *Server) metricsHandler() fiber.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		unchecked{asynqmetrics.NewQueueMetricsCollector(s.insp)},
		&storeCollector{st: s.deps.Store, providers: s.providerNames()},
	)
	// A failing collector costs its own metrics, not the whole scrape.
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	return adaptor.HTTPHandler(h)
}

// unchecked registers a collector without describing it. asynq's queue
// collector describes itself by collecting, which would scan Redis while
// New runs (and log through the standard logger when Redis is down); its
// metrics are still checked for consistency at every scrape.
type unchecked struct{ prometheus.Collector }

// Describe sends nothing, which makes the collector unchecked.
func (unchecked) Describe(chan<- *prometheus.Desc) {}

// storeCollector reads the message counts and the switch from PostgreSQL at
// scrape time, so the numbers are right whichever process changed them.
type storeCollector struct {
	st *store.Store
	// providers are the names in PROVIDERS (default when it is unset),
	// whose shared breakers the metrics show.
	providers []string
}

var (
	messagesDesc = prometheus.NewDesc("messaging_messages",
		"Messages in the table by status, counted at scrape time.", []string{"status"}, nil)
	runningDesc = prometheus.NewDesc("messaging_sending_running",
		"1 while automatic sending runs, 0 while it is stopped.", nil, nil)
	lastTickDesc = prometheus.NewDesc("messaging_last_tick_timestamp_seconds",
		"Unix time a worker last started a tick (absent before the first).", nil, nil)
	breakerStateDesc = prometheus.NewDesc("messaging_breaker_state",
		"1 for the state each provider's shared circuit breaker is in (closed, open, half_open), 0 for the others.", []string{"provider", "state"}, nil)
	breakerTripsDesc = prometheus.NewDesc("messaging_breaker_trips_total",
		"Times each provider's shared circuit breaker went from closed to open, across every worker.", []string{"provider"}, nil)
	retentionPurgedDesc = prometheus.NewDesc("messaging_retention_purged_total",
		"Messages the retention purge deleted, across every scheduler process.", nil, nil)
)

// Describe sends the descriptors of the project's scrape-time gauges.
func (sc *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- messagesDesc
	ch <- runningDesc
	ch <- lastTickDesc
	ch <- breakerStateDesc
	ch <- breakerTripsDesc
	ch <- retentionPurgedDesc
}

// Collect queries PostgreSQL; a failed query yields an invalid metric, which
// promhttp reports without dropping the rest of the scrape.
func (sc *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	counts, err := sc.st.CountByStatus(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(messagesDesc, err)
	} else {
		for status, n := range counts {
			ch <- prometheus.MustNewConstMetric(messagesDesc, prometheus.GaugeValue, float64(n), status)
		}
	}
	for _, name := range sc.providers {
		br, err := breaker.Read(ctx, sc.st.ProviderBreaker(name))
		if err != nil {
			ch <- prometheus.NewInvalidMetric(breakerStateDesc, err)
			continue
		}
		for _, m := range breaker.Modes {
			v := 0.0
			if m == br.State {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(breakerStateDesc, prometheus.GaugeValue, v, name, string(m))
		}
		ch <- prometheus.MustNewConstMetric(breakerTripsDesc, prometheus.CounterValue, float64(br.Trips), name)
	}
	if ret, err := sc.st.Retention(ctx); err != nil {
		ch <- prometheus.NewInvalidMetric(retentionPurgedDesc, err)
	} else {
		ch <- prometheus.MustNewConstMetric(retentionPurgedDesc, prometheus.CounterValue, float64(ret.PurgedTotal))
	}
	ctl, err := sc.st.Control(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(runningDesc, err)
		return
	}
	running := 0.0
	if ctl.Running {
		running = 1
	}
	ch <- prometheus.MustNewConstMetric(runningDesc, prometheus.GaugeValue, running)
	if ctl.LastTickAt != nil {
		ch <- prometheus.MustNewConstMetric(lastTickDesc, prometheus.GaugeValue, float64(ctl.LastTickAt.UnixNano())/1e9)
	}
}
