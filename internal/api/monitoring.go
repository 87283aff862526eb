package api

import (
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/hibiken/asynqmon"

	"github.com/messaging-server/messaging-server/internal/redisconn"
)

// MonitoringPath is where the asynqmon dashboard lives.
const MonitoringPath = "/monitoring"

// monitoring serves the asynqmon dashboard. asynqmon routes on the full
// path (RootPath), so the handler is mounted without stripping the prefix.
//
// Without API_KEY the dashboard is fully usable by anyone who reaches it.
// With API_KEY it is read-only (asynqmon's ReadOnly mode) unless the
// request carries the bearer key; a request that would change the queues
// without the key gets our JSON 401 before asynqmon sees it. A browser does
// not send the header by itself, so write access from a browser needs a
// proxy or extension that adds it.
func (s *Server) monitoring() fiber.Handler {
	// The same Redis mode (one server, Sentinel or Cluster; TLS) as every
	// other program.
	opt := redisconn.AsynqOpt(s.cfg)
	full := asynqmon.New(asynqmon.Options{RootPath: MonitoringPath, RedisConnOpt: opt})
	s.closers = append(s.closers, full.Close)
	fullH := adaptor.HTTPHandler(full)
	if s.keyHash == nil {
		return fullH
	}
	ro := asynqmon.New(asynqmon.Options{RootPath: MonitoringPath, RedisConnOpt: opt, ReadOnly: true})
	s.closers = append(s.closers, ro.Close)
	roH := adaptor.HTTPHandler(ro)
	return func(c *fiber.Ctx) error {
		if s.authorized(c) {
			return fullH(c)
		}
		if c.Method() != fiber.MethodGet && c.Method() != fiber.MethodHead {
			return errUnauthorized
		}
		return roH(c)
	}
}
