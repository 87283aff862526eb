package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"regexp"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/swagger"
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

// googleFonts matches links to Google Fonts (the dashboard's page and the
// OpenAPI page have them). The pages must work on a closed network and
// load nothing from outside (their CSP forbids it), so the links are
// dropped and the pages fall back to system fonts.
var googleFonts = regexp.MustCompile(`<link (?:rel="stylesheet" )?href="https://fonts\.googleapis\.com/[^"]*"(?: rel="stylesheet")?\s*/?>`)

// manifestLink is the dashboard page's link to its web manifest. Browsers
// fetch a manifest without cookies unless the link asks for them, and
// nothing under /monitoring answers without a session.
var manifestLink = []byte(`<link rel="manifest" href=`)

// The Content-Security-Policy of the dashboard and of the OpenAPI page.
// Both pages load only what this server serves. Their inline scripts (the
// dashboard's flags and loader, the OpenAPI page's start-up) are allowed by
// their SHA-256, added to script-src per answer by withInlineScripts. Both
// UIs set styles from script (Material-UI's JSS, swagger-ui's style
// attributes), hence 'unsafe-inline' for styles only.
const (
	monitoringCSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
		"font-src 'self' data:; connect-src 'self'; manifest-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
	swaggerCSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
		"font-src 'self' data:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)

// setSecurityHeaders sets the headers of the HTML areas on every answer
// there (pages, files, redirects and errors alike): the area's CSP, no
// framing, no type sniffing, no referrer to other sites.
func setSecurityHeaders(c *fiber.Ctx, z zone) {
	var csp string
	switch z {
	case zoneConsole:
		csp = console.ContentSecurityPolicy
	case zoneMonitoring:
		csp = monitoringCSP
	case zoneSwagger:
		csp = swaggerCSP
	default:
		return
	}
	c.Set(fiber.HeaderContentSecurityPolicy, csp)
	c.Set(fiber.HeaderXFrameOptions, "DENY")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "same-origin")
}

// inlineScript matches a script element without a src, capturing its text.
var inlineScript = regexp.MustCompile(`(?s)<script>(.*?)</script>`)

// withInlineScripts returns csp with the SHA-256 of each inline script of
// page added to its script-src.
func withInlineScripts(csp string, page []byte) string {
	var hashes []string
	for _, m := range inlineScript.FindAllSubmatch(page, -1) {
		sum := sha256.Sum256(m[1])
		hashes = append(hashes, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
	}
	if len(hashes) == 0 {
		return csp
	}
	return strings.Replace(csp, "script-src 'self'", "script-src 'self' "+strings.Join(hashes, " "), 1)
}

// fitPage adapts an HTML answer of a third-party UI to the area's CSP: no
// outside fonts, and its own inline scripts allowed by hash.
func fitPage(c *fiber.Ctx, csp string) {
	if !bytes.HasPrefix(c.Response().Header.ContentType(), []byte("text/html")) {
		return
	}
	body := googleFonts.ReplaceAll(c.Response().Body(), nil)
	body = bytes.Replace(body, manifestLink, []byte(`<link rel="manifest" crossorigin="use-credentials" href=`), 1)
	c.Response().SetBodyRaw(body)
	c.Set(fiber.HeaderContentSecurityPolicy, withInlineScripts(csp, body))
}

// dispatchQueueChange tells whether a dashboard request (its cleaned path
// p) would delete or pause the queue the scheduler fills and the workers
// drain. Either stops delivery behind the sending switch's back (and a
// deleted queue drops out of the api's asynq_* metrics until the scheduler
// enqueues again); the switch is POST /api/v1/scheduler/stop.
func (s *Server) dispatchQueueChange(method, p string) bool {
	queue := MonitoringPath + "/api/queues/" + s.cfg.Queue
	p = strings.TrimSuffix(p, "/")
	return method == fiber.MethodDelete && strings.EqualFold(p, queue) ||
		method == fiber.MethodPost && strings.EqualFold(p, queue+":pause")
}

// monitoring serves the asynqmon dashboard. asynqmon routes on the full
// path (RootPath), so the handler is mounted without stripping the prefix.
// guard has decided who may reach it: with API_KEY, the bearer key or a
// console session, for its pages, files and API alike.
func (s *Server) monitoring() fiber.Handler {
	// The same Redis mode (one server, Sentinel or Cluster; TLS) as every
	// other program.
	h := asynqmon.New(asynqmon.Options{RootPath: MonitoringPath, RedisConnOpt: redisconn.AsynqOpt(s.cfg)})
	s.closers = append(s.closers, h.Close)
	dashboard := adaptor.HTTPHandler(h)
	return func(c *fiber.Ctx) error {
		p := strings.TrimSuffix(c.Path(), "/")
		switch p {
		case monitoringMetricsAPI:
			return errMetricsOff
		case monitoringMetricsPage:
			return c.Redirect(MonitoringPath+"/", fiber.StatusSeeOther)
		}
		if err := dashboard(c); err != nil {
			return err
		}
		fitPage(c, monitoringCSP)
		return nil
	}
}

// openAPIPage serves the OpenAPI document and swagger-ui. The validator
// badge is off: it would load an image from swagger.io.
func openAPIPage() fiber.Handler {
	cfg := swagger.ConfigDefault
	cfg.ValidatorUrl = "none"
	ui := swagger.New(cfg)
	return func(c *fiber.Ctx) error {
		if err := ui(c); err != nil {
			return err
		}
		fitPage(c, swaggerCSP)
		return nil
	}
}
