// Package api is the HTTP face of the system: health, readiness and (in
// time) the control and read endpoints. It is the only package that imports
// fiber, so the worker and scheduler binaries stay free of it.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/messaging-server/messaging-server/internal/app"
	"github.com/messaging-server/messaging-server/internal/config"
)

// Server is the api program.
type Server struct {
	cfg  config.Config
	deps *app.Deps
	log  *slog.Logger
	app  *fiber.App
}

// New builds the routes over d.
func New(cfg config.Config, d *app.Deps) *Server {
	s := &Server{cfg: cfg, deps: d, log: d.Log.With("component", "api")}
	s.app = fiber.New(fiber.Config{
		AppName:               cfg.AppName,
		DisableStartupMessage: true,
		ErrorHandler:          s.handleError,
		ReadTimeout:           15 * time.Second,
		WriteTimeout:          15 * time.Second,
		IdleTimeout:           60 * time.Second,
	})
	s.app.Get("/healthz", s.healthz)
	s.app.Get("/readyz", s.readyz)
	s.app.Use(func(c *fiber.Ctx) error { return fiber.ErrNotFound })
	return s
}

// App exposes the fiber app, for app.Test in tests.
func (s *Server) App() *fiber.App { return s.app }

// Serve listens on HTTP_PORT until ctx ends, then drains connections within
// SERVER_GRACE_PERIOD.
func (s *Server) Serve(ctx context.Context) error {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(s.cfg.HTTPPort))
	if err != nil {
		return fmt.Errorf("api: listen: %w", err)
	}
	return s.ServeListener(ctx, ln)
}

// ServeListener serves on ln until ctx ends.
func (s *Server) ServeListener(ctx context.Context, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- s.app.Listener(ln) }()
	s.log.Info("api listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("api: serve: %w", err)
	case <-ctx.Done():
	}
	if err := s.app.ShutdownWithTimeout(s.cfg.GracePeriod()); err != nil {
		return fmt.Errorf("api: shutdown: %w", err)
	}
	<-errc
	s.log.Info("api stopped")
	return nil
}

func (s *Server) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

func (s *Server) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	checks := fiber.Map{"postgres": "ok", "redis": "ok"}
	ready := true
	if err := s.deps.Pool.Ping(ctx); err != nil {
		checks["postgres"], ready = "unavailable", false
		s.log.Warn("readiness: postgres", "err", err)
	}
	if err := s.deps.Redis.Ping(ctx).Err(); err != nil {
		checks["redis"], ready = "unavailable", false
		s.log.Warn("readiness: redis", "err", err)
	}
	if !ready {
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable", "checks": checks})
	}
	return c.JSON(fiber.Map{"status": "ok", "checks": checks})
}

// handleError is the one place errors become HTTP answers. Users see a code
// and a safe message; internal error text goes to the log only.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	var fe *fiber.Error
	if errors.As(err, &fe) {
		return c.Status(fe.Code).JSON(errorBody(codeFor(fe.Code), fe.Message))
	}
	s.log.Error("request failed", "method", c.Method(), "path", c.Path(), "err", err)
	return c.Status(fiber.StatusInternalServerError).JSON(errorBody("internal", "internal server error"))
}

func errorBody(code, msg string) fiber.Map {
	return fiber.Map{"error": fiber.Map{"code": code, "message": msg}}
}

func codeFor(status int) string {
	switch status {
	case fiber.StatusNotFound:
		return "not_found"
	case fiber.StatusMethodNotAllowed:
		return "method_not_allowed"
	case fiber.StatusRequestEntityTooLarge:
		return "too_large"
	case fiber.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case fiber.StatusTooManyRequests:
		return "rate_limited"
	case fiber.StatusUnauthorized:
		return "unauthorized"
	default:
		if status >= 500 {
			return "internal"
		}
		return "bad_request"
	}
}
