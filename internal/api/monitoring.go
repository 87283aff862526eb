package api

import (
	"bytes"
	"path"
	"regexp"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/hibiken/asynqmon"

	"github.com/messaging-server/messaging-server/internal/console"
	"github.com/messaging-server/messaging-server/internal/redisconn"
)

// MonitoringPath is where the asynqmon dashboard lives.
const MonitoringPath = "/monitoring"

// The dashboard's metrics view asks a Prometheus server for time series;
// none is configured (asynqmon.Options.PrometheusAddress is empty, which
// also hides the view's menu entry), so its API route and page are turned
// off here instead of answering 500.
const (
	monitoringMetricsAPI  = MonitoringPath + "/api/metrics"
	monitoringMetricsPage = MonitoringPath + "/q/metrics"
)

// googleFonts matches the dashboard page's links to Google Fonts. The page
// must work on a closed network, and the dashboard's icons are SVG, so the
// links are dropped and the page falls back to system fonts.
var googleFonts = regexp.MustCompile(`<link rel="stylesheet" href="https://fonts\.googleapis\.com/[^"]*"/?>`)

// isDashboardFile tells a GET of one of the dashboard's own files (its
// scripts, icons and web manifest, the same for every installation) from a
// page or a call that shows data. Browsers fetch the manifest without
// cookies, so it must not need a session.
func isDashboardFile(c *fiber.Ctx, isAPI bool) bool {
	if isAPI || (c.Method() != fiber.MethodGet && c.Method() != fiber.MethodHead) {
		return false
	}
	p := c.Path()
	return strings.HasPrefix(p, MonitoringPath+"/static/") || path.Ext(p) != "" && !strings.Contains(strings.TrimPrefix(p, MonitoringPath+"/"), "/")
}

// monitoring serves the asynqmon dashboard. asynqmon routes on the full
// path (RootPath), so the handler is mounted without stripping the prefix.
//
// Without API_KEY the dashboard is open to anyone who reaches it. With
// API_KEY it needs the bearer key or a console session: without one, its
// pages redirect to the console's sign-in and its API answers 401, so
// neither Redis INFO nor task payloads leak. A change made with the session
// cookie must come from a page of this server (Origin check; the cookie is
// SameSite=Strict too).
func (s *Server) monitoring() fiber.Handler {
	// The same Redis mode (one server, Sentinel or Cluster; TLS) as every
	// other program.
	h := asynqmon.New(asynqmon.Options{RootPath: MonitoringPath, RedisConnOpt: redisconn.AsynqOpt(s.cfg)})
	s.closers = append(s.closers, h.Close)
	dashboard := adaptor.HTTPHandler(h)
	return func(c *fiber.Ctx) error {
		p := strings.TrimSuffix(c.Path(), "/")
		isAPI := strings.HasPrefix(p, MonitoringPath+"/api/")
		if s.keyHash != nil && !s.authorized(c) && !isDashboardFile(c, isAPI) {
			if !s.console.HasSession(c) {
				if isAPI || (c.Method() != fiber.MethodGet && c.Method() != fiber.MethodHead) {
					return errUnauthorized
				}
				return s.console.RedirectToSignIn(c)
			}
			if c.Method() != fiber.MethodGet && c.Method() != fiber.MethodHead {
				if err := console.CheckSameOrigin(c); err != nil {
					return err
				}
			}
		}
		switch p {
		case monitoringMetricsAPI:
			return errMetricsOff
		case monitoringMetricsPage:
			return c.Redirect(MonitoringPath+"/", fiber.StatusSeeOther)
		}
		if err := dashboard(c); err != nil {
			return err
		}
		if !isAPI && bytes.HasPrefix(c.Response().Header.ContentType(), []byte("text/html")) {
			c.Response().SetBodyRaw(googleFonts.ReplaceAll(c.Response().Body(), nil))
		}
		return nil
	}
}
