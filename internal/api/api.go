// Package api is the HTTP face of the system (cmd/api): health and
// readiness, the switch that starts and stops sending, message intake and
// reads, the OpenAPI document, the asynqmon dashboard and the Prometheus
// scrape. It is the only package that imports fiber, swag and asynqmon, so
// the worker and scheduler binaries stay free of them.
//
// Every error leaves through one place, Server.handleError, as
// {"error": {"code", "message"}} with the matching status.
//
//	@title						Messaging Server API
//	@version					1.0
//	@description				Controls automatic message sending and reads messages.
//	@description				When API_KEY is set, every /api/v1 endpoint needs `Authorization: Bearer <API_KEY>` (or the console's session), reads included; `Authorization: Bearer <API_READ_KEY>`, when that is set, may only read (GET). /healthz, /readyz, /metrics and this document stay open.
//	@description				Per-delivery counters and webhook latency histograms are served by each worker process on METRICS_PORT, not by this API's /metrics.
//	@BasePath					/
//	@securityDefinitions.apikey	BearerAuth
//	@in							header
//	@name						Authorization
//	@description				"Bearer " followed by the API_KEY value (or, for reads only, the API_READ_KEY value).
package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/contrib/otelfiber/v2"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/limiter"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/hibiken/asynq"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/metric/noop"

	// The generated OpenAPI document registers itself with swag.
	_ "github.com/messaging-server/messaging-server/docs"
	"github.com/messaging-server/messaging-server/internal/app"
	"github.com/messaging-server/messaging-server/internal/auth"
	"github.com/messaging-server/messaging-server/internal/cache"
	"github.com/messaging-server/messaging-server/internal/config"
	"github.com/messaging-server/messaging-server/internal/console"
	"github.com/messaging-server/messaging-server/internal/message"
	"github.com/messaging-server/messaging-server/internal/tracing"
)

// BodyLimit is the largest request body the API reads on every route but
// the batch create; larger ones get 413 from their declared length, before
// the body is read or any handler runs. A message is at most 255
// characters, so 64 KiB leaves room for any honest client and none for a
// memory attack.
const BodyLimit = 64 << 10

// BatchBodyLimit is the largest body of POST /api/v1/messages/batch: 1,000
// items of the largest valid message, every character of its content
// escaped as \uXXXX (255 × 6 bytes) with its other fields, fit in it.
const BatchBodyLimit = 2 << 20

// batchPath is the one route that takes BatchBodyLimit.
const batchPath = "/api/v1/messages/batch"

// bodyLimit gives each request its body limit once its header is read:
// BatchBodyLimit for the batch create, BodyLimit for everything else.
// fasthttp refuses a larger declared length before reading the body, and
// the error handler answers 413.
func bodyLimit(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	path, _, _ := bytes.Cut(h.RequestURI(), []byte("?"))
	if bytes.EqualFold(bytes.TrimSuffix(path, []byte("/")), []byte(batchPath)) {
		return fasthttp.RequestConfig{MaxRequestBodySize: BatchBodyLimit}
	}
	return fasthttp.RequestConfig{MaxRequestBodySize: BodyLimit}
}

// Server is the api program: a fiber app over the shared connections.
type Server struct {
	cfg     config.Config
	deps    *app.Deps
	log     *slog.Logger
	app     *fiber.App
	cache   *cache.Cache
	insp    *asynq.Inspector
	console *console.Console
	fullKey *auth.Key // API_KEY; nil when unset, and then everything is open
	readKey *auth.Key // API_READ_KEY; nil when unset
	trusted []netip.Prefix
	closers []func() error
	limits  createLimits // what a create is checked and completed with
	traces  *tracing.Tracing
}

// New builds the routes over d, the connections every program shares (the
// program that runs the API owns and closes them). Call Close when done with
// the Server: the dashboard holds Redis connections of its own.
func New(cfg config.Config, d *app.Deps) *Server {
	s := &Server{
		cfg:   cfg,
		deps:  d,
		log:   d.Log.With("component", "api"),
		cache: cache.New(d.Redis, cfg.CacheTTL()),
		// Shares the client, so it has nothing of its own to close.
		insp:   asynq.NewInspectorFromRedisClient(d.Redis),
		traces: d.Traces(),
	}
	s.limits = createLimits{
		MaxContent: cfg.MaxContentLength, DefaultValidity: cfg.DefaultValidity(),
		MaxSegments: cfg.MaxSegments, Countries: message.NewCountries(cfg.AllowedCountries),
		CallbackHosts: cfg.CallbackHosts(),
	}
	s.fullKey = auth.NewKey(cfg.APIKey)
	s.readKey = auth.NewKey(cfg.APIReadKey)
	s.trusted = auth.ParsePrefixes(cfg.TrustedProxies)
	if s.fullKey != nil {
		if len(strings.TrimSpace(cfg.APIKey)) < 16 {
			s.log.Warn("API_KEY is shorter than 16 characters; use a long random key")
		}
	} else {
		s.log.Warn("API_KEY is not set: the API, the console and the dashboard are open to anyone who can reach the API")
	}
	s.console = console.New(console.Deps{
		AppName: cfg.AppName, APIKey: cfg.APIKey, SessionTTL: cfg.SessionDuration(),
		Sessions: d.Store,
		// Namespaced by QUEUE_NAME, like the deployment's asynq keys, so
		// deployments that share one Redis keep counts of their own.
		Throttle: auth.NewThrottle(auth.ThrottleDeps{Redis: d.Redis, Namespace: cfg.Queue}),
		ClientIP: s.clientIP,
		Log:      s.log,
	})
	s.app = fiber.New(fiber.Config{
		AppName:               cfg.AppName,
		DisableStartupMessage: true,
		ErrorHandler:          s.handleError,
		// The ceiling of every route; bodyLimit lowers it per request.
		BodyLimit: BatchBodyLimit,
		// Values from the request outlive nothing by accident.
		Immutable:    true,
		ReadTimeout:  15 * time.Second,
		WriteTimeout: 15 * time.Second,
		IdleTimeout:  60 * time.Second,
		// X-Forwarded-Proto and -Host are believed only from the proxies
		// the operator lists; from anyone else they are ignored (they
		// decide the session cookie's Secure flag and the CSRF origin
		// check). X-Forwarded-For is read by clientIP, under the same
		// list.
		EnableTrustedProxyCheck: true,
		TrustedProxies:          cfg.TrustedProxies,
		// No route takes a form: a multipart body is left unread, so
		// requireJSON answers 415 for it, whatever it holds, instead of
		// fasthttp answering 400 when it is not well-formed multipart.
		DisablePreParseMultipartForm: true,
	})
	s.app.Server().HeaderReceived = bodyLimit
	s.routes()
	return s
}

func (s *Server) routes() {
	a := s.app
	// The access log runs first, so it sees a panic too, as the 500 that
	// recover turns it into.
	a.Use(s.accessLog)
	a.Use(recover.New())
	if s.cfg.RateLimit > 0 {
		a.Use(limiter.New(limiter.Config{
			Max:        s.cfg.RateLimit,
			Expiration: time.Minute,
			// One bucket per client, behind trusted proxies too. The
			// buckets live in this process: each api replica counts its
			// own share of a client's requests.
			KeyGenerator: s.clientIP,
			// Probes come often from one address and must never be
			// refused.
			Next: func(c *fiber.Ctx) bool { return c.Path() == "/healthz" || c.Path() == "/readyz" },
			LimitReached: func(*fiber.Ctx) error {
				return errRateLimited
			},
		}))
	}
	// Every request passes the guard before any route: the access rule,
	// the path checks and the security headers (auth.go).
	a.Use(s.guard)
	// Each API request past the guard is a span, in the trace its
	// traceparent header names or in a fresh one; a create stores that
	// span's context with its messages (tracedPath says which requests).
	// After the guard, which reads the raw path before anything parses
	// the URI.
	a.Use(otelfiber.Middleware(
		otelfiber.WithTracerProvider(s.traces.Provider),
		otelfiber.WithPropagators(s.traces.Propagator),
		otelfiber.WithMeterProvider(noop.NewMeterProvider()),
		otelfiber.WithNext(func(c *fiber.Ctx) bool { return !tracedPath(c.Path()) }),
	))

	a.Get("/healthz", s.healthz)
	a.Get("/readyz", s.readyz)
	a.Get("/metrics", s.metricsHandler())

	v1 := a.Group("/api/v1")
	v1.Get("/scheduler", s.getScheduler)
	v1.Post("/scheduler/start", s.startScheduler)
	v1.Post("/scheduler/stop", s.stopScheduler)
	v1.Get("/providers", s.listProviders)
	v1.Post("/providers/:name/enable", s.enableProvider)
	// Every route that reads a JSON body takes requireJSON, so a wrong
	// Content-Type gets 415 before the body is read.
	v1.Post("/messages", requireJSON, s.createMessage)
	v1.Get("/messages", s.listMessages)
	v1.Post(strings.TrimPrefix(batchPath, "/api/v1"), requireJSON, s.createBatch)
	v1.Post("/receipts", requireJSON, s.postReceipt)
	v1.Post("/inbound", requireJSON, s.inbound)
	v1.Get("/opt-outs", s.listOptOuts)
	v1.Put("/opt-outs/:phone_number", s.putOptOut)
	v1.Delete("/opt-outs/:phone_number", s.deleteOptOut)
	// Registered before /messages/:id so that "sent" is not read as an id.
	v1.Get("/messages/sent", s.listSent)
	v1.Get("/messages/:id", s.getMessage)
	v1.Post("/messages/:id/retry", s.retryMessage)
	v1.Post("/messages/:id/cancel", s.cancelMessage)
	v1.Get("/messages/:id/attempts", s.listAttempts)
	v1.Get("/messages/:id/events", s.listEvents)
	v1.Post("/events/:id/redeliver", s.redeliverEvent)
	v1.Get("/stats/counts", s.statusCounts)
	v1.Get("/stats/minutes", s.minuteStats)
	v1.Post("/sessions/revoke-all", s.revokeAllSessions)
	v1.Post("/erasures", requireJSON, s.postErasure)

	s.console.Mount(a)

	a.Get("/swagger/*", openAPIPage())

	mon := s.monitoring()
	a.All(MonitoringPath, mon)
	a.All(MonitoringPath+"/*", mon)
}

// tracedPath tells the requests that get a span: those under /api/v1,
// except the opt-out routes, whose path holds a phone number (the span
// would carry it in http.target). Probes, the scrape, the document, the
// dashboard and the console are not traced.
func tracedPath(path string) bool {
	return strings.HasPrefix(path, "/api/v1/") && !strings.HasPrefix(path, "/api/v1/opt-outs")
}

// App exposes the fiber app, for app.Test and route listings in tests.
func (s *Server) App() *fiber.App { return s.app }

// Close releases the dashboard's Redis connections. The shared connections
// in app.Deps belong to the caller.
func (s *Server) Close() error {
	var errs []error
	for _, f := range s.closers {
		errs = append(errs, f())
	}
	s.closers = nil
	return errors.Join(errs...)
}

// Serve listens on HTTP_PORT until ctx ends, then drains connections within
// SERVER_GRACE_PERIOD.
func (s *Server) Serve(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", ":"+strconv.Itoa(s.cfg.HTTPPort))
	if err != nil {
		return fmt.Errorf("api: listen: %w", err)
	}
	return s.ServeListener(ctx, ln)
}

// ServeListener serves on ln until ctx ends; it takes the listener so tests
// can serve on a free port.
func (s *Server) ServeListener(ctx context.Context, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- s.app.Listener(ln) }()
	s.log.Info("api listening", "addr", ln.Addr().String(), "auth", s.fullKey != nil, "read_key", s.readKey != nil)
	select {
	case err := <-errc:
		return fmt.Errorf("api: serve: %w", err)
	case <-ctx.Done():
	}
	if err := s.app.ShutdownWithTimeout(s.cfg.GracePeriod()); err != nil {
		return fmt.Errorf("api: shutdown: %w", err)
	}
	if err := <-errc; err != nil {
		return fmt.Errorf("api: serve: %w", err)
	}
	s.log.Info("api stopped")
	return nil
}

// accessLog records each request without its headers (which may carry the
// API key) or body. Mutations are logged at INFO as an audit trail of who
// started, stopped or retried what; reads at DEBUG.
//
// fiber calls the ErrorHandler only after the whole chain has returned, so
// an error a handler returns has no status yet when the chain returns here.
// accessLog therefore writes the error answer itself, through the same
// handleError, and logs the status of the response actually sent (as
// fiber's own logger middleware does).
func (s *Server) accessLog(c *fiber.Ctx) error {
	start := time.Now()
	if err := c.Next(); err != nil {
		if herr := s.handleError(c, err); herr != nil {
			s.log.Error("write error answer", "method", c.Method(), "path", c.Path(), "err", herr)
			c.Status(fiber.StatusInternalServerError)
		}
	}
	status := c.Response().StatusCode()
	level := slog.LevelDebug
	if c.Method() != fiber.MethodGet && c.Method() != fiber.MethodHead {
		level = slog.LevelInfo
	}
	s.log.Log(c.UserContext(), level, "request",
		"method", c.Method(), "path", c.Path(), "status", status,
		"took", time.Since(start), "ip", s.clientIP(c))
	return nil
}
