package api

import (
	"net/netip"
	"net/url"
	"path"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/messaging-server/messaging-server/internal/auth"
	"github.com/messaging-server/messaging-server/internal/console"
)

// Who may do what, with API_KEY set:
//
//   - /healthz, /readyz, /metrics (counts only), /swagger and the console's
//     sign-in page and its assets are open to anyone;
//   - /api/v1 needs the bearer API_KEY or a console session, reads
//     included; API_READ_KEY may only read it (GET and HEAD); a change made
//     with the session cookie must also carry the console's header and a
//     same-origin Origin;
//   - /monitoring (the dashboard: pages, files and its API) needs API_KEY
//     or a session; a change made with the cookie must come from a page of
//     this server. API_READ_KEY does not open it.
//
// Without API_KEY everything is open (New warns at start). The decision is
// made once, by guard, for every route, on the decoded and cleaned path
// that the routers behind it (fiber's and asynqmon's) route on, so no
// spelling of a path reaches a handler past it.

// zone is the part of the server a path belongs to.
type zone int

const (
	zoneOpen zone = iota
	zoneAPI
	zoneMonitoring
	zoneConsole
	zoneSwagger
)

// zoneOf tells the zone of a cleaned path; routing ignores case, so it
// does too.
func zoneOf(p string) zone {
	p = strings.ToLower(p)
	under := func(prefix string) bool { return p == prefix || strings.HasPrefix(p, prefix+"/") }
	switch {
	case under("/api/v1"):
		return zoneAPI
	case under(MonitoringPath):
		return zoneMonitoring
	case under(console.Path):
		return zoneConsole
	case under("/swagger"):
		return zoneSwagger
	}
	return zoneOpen
}

// credential is what the Authorization header proves.
type credential int

const (
	credNone credential = iota // no bearer, or a wrong one
	credRead                   // API_READ_KEY
	credFull                   // API_KEY
)

// verdict is what guard does with a request.
type verdict int

const (
	allow       verdict = iota
	needSession         // the bearer does not do: a console session may
	readOnly            // the read key, on something it may not do
)

// decide is the access rule for a request to zone z that only reads (GET
// or HEAD) or not, carrying cred, when API_KEY is set.
func decide(z zone, read bool, cred credential) verdict {
	switch z {
	case zoneAPI:
		switch {
		case cred == credFull, cred == credRead && read:
			return allow
		case cred == credRead:
			return readOnly
		}
		return needSession
	case zoneMonitoring:
		switch cred {
		case credFull:
			return allow
		case credRead:
			return readOnly
		}
		return needSession
	}
	// The console checks its own pages' sessions; the rest is open.
	return allow
}

// cleanPath returns the path a request's raw path (as sent, still
// percent-encoded) names, decoded once and cleaned, and false when the raw
// path is one that routers could read two ways: an encoded slash,
// backslash, dot or percent sign (double encoding), a NUL, a backslash, a
// dot segment or an empty segment. No client that builds URLs from
// segments sends those, so they are refused rather than guessed at.
func cleanPath(raw string) (string, bool) {
	if raw == "" || raw[0] != '/' || strings.ContainsAny(raw, "\\\x00") {
		return "", false
	}
	lower := strings.ToLower(raw)
	for _, enc := range []string{"%2f", "%5c", "%2e", "%25", "%00"} {
		if strings.Contains(lower, enc) {
			return "", false
		}
	}
	p, err := url.PathUnescape(raw)
	if err != nil || strings.ContainsAny(p, "\\\x00") {
		return "", false
	}
	clean := path.Clean(p)
	if p != clean && p != clean+"/" {
		return "", false
	}
	return clean, true
}

// guard decides every request before it reaches a route: it refuses
// ambiguous paths, sets the security headers of the HTML areas, refuses
// the dashboard's changes to the dispatch queue, and applies the access
// rule above.
func (s *Server) guard(c *fiber.Ctx) error {
	p, ok := cleanPath(string(c.Request().URI().PathOriginal()))
	if !ok {
		return errBadPath
	}
	z := zoneOf(p)
	setSecurityHeaders(c, z)
	if z == zoneMonitoring && s.dispatchQueueChange(c.Method(), p) {
		return errDispatchQueue
	}
	if s.fullKey == nil {
		return c.Next()
	}
	read := c.Method() == fiber.MethodGet || c.Method() == fiber.MethodHead
	switch decide(z, read, s.credential(c)) {
	case allow:
		return c.Next()
	case readOnly:
		return errReadOnly
	}
	live, err := s.console.HasSession(c)
	if err != nil {
		return err
	}
	if !live {
		if z == zoneMonitoring && read && !strings.HasPrefix(strings.ToLower(p), MonitoringPath+"/api/") {
			return s.console.RedirectToSignIn(c)
		}
		return errUnauthorized
	}
	if !read {
		// The cookie rides along with any request the browser makes, so
		// a change must prove it comes from a page of this server.
		check := console.CheckSameOrigin
		if z == zoneAPI {
			check = console.CheckAPIRequest
		}
		if err := check(c); err != nil {
			return err
		}
	}
	return c.Next()
}

// credential tells which key the request's bearer token is. Both
// comparisons always run, so the time taken does not tell which matched.
func (s *Server) credential(c *fiber.Ctx) credential {
	token, ok := auth.BearerToken(c.Get(fiber.HeaderAuthorization))
	if !ok {
		return credNone
	}
	full, read := s.fullKey.Matches(token), s.readKey.Matches(token)
	switch {
	case full:
		return credFull
	case read:
		return credRead
	}
	return credNone
}

// localClientIP is where clientIP keeps its answer for the request.
const localClientIP = "api.clientIP"

// clientIP is the request's client: the peer, or behind a proxy listed in
// TRUSTED_PROXIES the right-most address of X-Forwarded-For that is not one
// of them. The rate limit, the sign-in throttle and the logs use it.
func (s *Server) clientIP(c *fiber.Ctx) string {
	if ip, ok := c.Locals(localClientIP).(string); ok {
		return ip
	}
	peer, _ := netip.AddrFromSlice(c.Context().RemoteIP())
	var xff []string
	for _, v := range c.Request().Header.PeekAll(fiber.HeaderXForwardedFor) {
		xff = append(xff, string(v))
	}
	ip := auth.ClientIP(peer, strings.Join(xff, ","), s.trusted).String()
	c.Locals(localClientIP, ip)
	return ip
}

// RevokedSessions is the answer of POST /api/v1/sessions/revoke-all.
type RevokedSessions struct {
	// Revoked is how many live (not yet expired) console sessions ended.
	Revoked int64 `json:"revoked" example:"3"`
}

// revokeAllSessions ends every console session.
//
//	@Summary		End every console session
//	@Description	Deletes every console session, on every api replica at once: each browser signed in to the console or the dashboard (this one too, when called from the console) gets the sign-in page at its next request. Changing API_KEY ends every session as well. Idempotent: with no session it answers 200 with revoked 0.
//	@Tags			sessions
//	@Produce		json
//	@Security		BearerAuth
//	@Success		200	{object}	RevokedSessions
//	@Failure		401	{object}	ErrorResponse	"API_KEY is set and the bearer key is missing or wrong, or is the read key"
//	@Failure		429	{object}	ErrorResponse	"Rate limit reached"
//	@Failure		500	{object}	ErrorResponse
//	@Failure		431	{object}	ErrorResponse	"Request headers larger than 4 KiB"
//	@Router			/api/v1/sessions/revoke-all [post]
func (s *Server) revokeAllSessions(c *fiber.Ctx) error {
	n, err := s.deps.Store.DeleteAllSessions(c.UserContext())
	if err != nil {
		return err
	}
	s.log.Info("console sessions revoked", "count", n, "ip", s.clientIP(c))
	return c.JSON(RevokedSessions{Revoked: n})
}
