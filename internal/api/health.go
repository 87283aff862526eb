package api

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Health is the answer of /healthz.
type Health struct {
	Status string `json:"status" example:"ok"`
}

// Readiness is the answer of /readyz: the overall status and each
// dependency's.
type Readiness struct {
	Status string            `json:"status" example:"ok" enums:"ok,unavailable"`
	Checks map[string]string `json:"checks"`
}

// healthz answers while the process lives.
//
//	@Summary		Liveness
//	@Description	200 while the process lives; it checks nothing else, so a restart is never triggered by a dependency outage.
//	@Tags			health
//	@Produce		json
//	@Success		200	{object}	Health
//	@Failure		431	{object}	ErrorResponse	"Request headers larger than 4 KiB"
//	@Router			/healthz [get]
func (s *Server) healthz(c *fiber.Ctx) error {
	return c.JSON(Health{Status: "ok"})
}

// readyz tells whether PostgreSQL and Redis answer.
//
//	@Summary		Readiness
//	@Description	200 when PostgreSQL and Redis both answer within 2 s; 503 otherwise, with checks naming the one that failed ("ok" or "unavailable").
//	@Tags			health
//	@Produce		json
//	@Success		200	{object}	Readiness
//	@Failure		503	{object}	Readiness	"A dependency does not answer"
//	@Failure		431	{object}	ErrorResponse	"Request headers larger than 4 KiB"
//	@Router			/readyz [get]
func (s *Server) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"postgres": "ok", "redis": "ok"}
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
		return c.Status(fiber.StatusServiceUnavailable).JSON(Readiness{Status: "unavailable", Checks: checks})
	}
	return c.JSON(Readiness{Status: "ok", Checks: checks})
}
