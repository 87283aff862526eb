// Package console is the operator console served by cmd/api at /console/:
// an embedded page (HTML, CSS and vanilla JavaScript, nothing fetched from
// outside) that drives the public JSON API, and the sign-in that guards it
// and the asynqmon dashboard when API_KEY is set.
//
// The page itself holds no logic the API does not have: it calls the same
// endpoints curl users call. What this package owns is the session: a
// sign-in page that takes the API key once (throttled per client), a
// session kept in PostgreSQL whose random id travels in a cookie (HttpOnly,
// SameSite=Strict, Secure behind https, with an expiry), the checks that
// make a cookie-authenticated change safe from cross-site requests, and
// sign-out, which deletes the session.
package console

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"

	"github.com/messaging-server/messaging-server/internal/auth"
	"github.com/messaging-server/messaging-server/internal/store"
)

// Paths the console answers on.
const (
	Path       = "/console"
	SignInPath = Path + "/signin"
	signOut    = Path + "/signout"
	assets     = Path + "/assets"
)

// CookieName is the session cookie.
const CookieName = "ms_session"

// HeaderRequest marks the console's own API calls. A cookie-authenticated
// change to /api/v1 must carry it: a cross-site form cannot set a header,
// and a cross-site script that could would fail CORS first.
const HeaderRequest = "X-Console-Request"

// ErrCrossSite is a change that carries the session cookie but does not
// come from a page of this server. The api answers it 403.
var ErrCrossSite = errors.New("console: cross-site request refused")

//go:embed web
var webFS embed.FS

// SessionStore keeps the sessions (internal/store implements it).
type SessionStore interface {
	CreateSession(ctx context.Context, idHash, keyFingerprint []byte, expires time.Time) error
	SessionValid(ctx context.Context, idHash, keyFingerprint []byte) (bool, error)
	DeleteSession(ctx context.Context, idHash []byte) error
	PurgeExpiredSessions(ctx context.Context, limit int) (int64, error)
}

var _ SessionStore = (*store.Store)(nil)

// Throttle counts sign-in attempts per client (internal/auth implements it
// in Redis).
type Throttle interface {
	// Attempt counts one attempt and tells whether it may go on, or how
	// long the client must wait.
	Attempt(ctx context.Context, client string) (bool, time.Duration, error)
	// Reset forgets the client's attempts after a successful sign-in.
	Reset(ctx context.Context, client string) error
}

var _ Throttle = (*auth.Throttle)(nil)

// purgeBatch bounds how many expired sessions one sign-in deletes.
const purgeBatch = 100

// Deps is what the console needs from the program.
type Deps struct {
	// AppName titles the pages.
	AppName string
	// APIKey turns the sign-in on; empty leaves every page open.
	APIKey string
	// SessionTTL is how long a sign-in lasts.
	SessionTTL time.Duration
	// Sessions and Throttle are required when APIKey is set.
	Sessions SessionStore
	Throttle Throttle
	// ClientIP names the client of a request for the sign-in throttle and
	// the log (the api passes the address behind its trusted proxies;
	// default: the peer).
	ClientIP func(*fiber.Ctx) string
	Log      *slog.Logger
}

// Console serves the pages and checks sessions.
type Console struct {
	appName  string
	key      *auth.Key // nil: no sign-in
	ttl      time.Duration
	sessions SessionStore
	throttle Throttle
	clientIP func(*fiber.Ctx) string
	log      *slog.Logger
	index    *template.Template
	signin   *template.Template
	static   fs.FS
}

// New builds the console. It panics only if the embedded pages do not
// parse, which every test of the package would catch, or when APIKey is set
// without Sessions or Throttle, which every test of the api would.
func New(d Deps) *Console {
	c := &Console{appName: d.AppName, ttl: d.SessionTTL, sessions: d.Sessions, throttle: d.Throttle, clientIP: d.ClientIP, log: d.Log}
	if c.clientIP == nil {
		c.clientIP = func(ctx *fiber.Ctx) string { return ctx.IP() }
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.ttl <= 0 {
		c.ttl = 12 * time.Hour
	}
	c.key = auth.NewKey(d.APIKey)
	if c.key != nil && (c.sessions == nil || c.throttle == nil) {
		panic("console: APIKey is set without Sessions and Throttle")
	}
	c.index = template.Must(template.ParseFS(webFS, "web/index.html"))
	c.signin = template.Must(template.ParseFS(webFS, "web/signin.html"))
	static, err := fs.Sub(webFS, "web/assets")
	if err != nil {
		panic(err)
	}
	c.static = static
	return c
}

// Mount registers the console's routes on r.
func (c *Console) Mount(r fiber.Router) {
	// fiber routes /console and /console/ alike; page tells them apart.
	r.Get(Path+"/", c.page)
	r.Get(SignInPath, c.signInPage)
	r.Post(SignInPath, c.signIn)
	r.Post(signOut, c.signOut)
	r.Use(assets, filesystem.New(filesystem.Config{Root: http.FS(c.static)}))
}

// Protected tells whether a sign-in is needed (API_KEY is set).
func (c *Console) Protected() bool { return c.key != nil }

// HasSession tells whether the request carries the cookie of a live
// session: one stored, not ended, not expired, and made under the current
// API_KEY. It reads the session's row on every call, so a session that was
// ended is refused at once. Without API_KEY there are no sessions, and it
// is false. An error means the store did not answer.
func (c *Console) HasSession(ctx *fiber.Ctx) (bool, error) {
	if c.key == nil {
		return false, nil
	}
	v := ctx.Cookies(CookieName)
	if v == "" {
		return false, nil
	}
	hash, ok := parseSession(v)
	if !ok {
		return false, nil
	}
	live, err := c.sessions.SessionValid(ctx.UserContext(), hash, c.key.Fingerprint())
	if err != nil {
		return false, fmt.Errorf("console: %w", err)
	}
	return live, nil
}

// RedirectToSignIn sends a browser to the sign-in page, which brings it
// back to the page it asked for.
func (c *Console) RedirectToSignIn(ctx *fiber.Ctx) error {
	return ctx.Redirect(SignInPath+"?next="+url.QueryEscape(safeNext(ctx.Path())), fiber.StatusSeeOther)
}

// CheckSameOrigin refuses a request whose Origin (or, without one, Referer)
// names another host than the one it was sent to. Browsers send Origin on
// every POST, PUT, PATCH and DELETE, so a change the console or asynqmon
// makes passes, and a change another site's page makes does not. Together
// with SameSite=Strict (the browser does not even send the cookie
// cross-site) this is the CSRF defence.
func CheckSameOrigin(ctx *fiber.Ctx) error {
	src := ctx.Get(fiber.HeaderOrigin)
	if src == "" {
		src = ctx.Get(fiber.HeaderReferer)
	}
	u, err := url.Parse(src)
	if src == "" || src == "null" || err != nil || u.Host == "" || !strings.EqualFold(u.Host, ctx.Hostname()) {
		return ErrCrossSite
	}
	return nil
}

// CheckAPIRequest is CheckSameOrigin plus the console's own header, for a
// cookie-authenticated change through /api/v1.
func CheckAPIRequest(ctx *fiber.Ctx) error {
	if ctx.Get(HeaderRequest) == "" {
		return ErrCrossSite
	}
	return CheckSameOrigin(ctx)
}

type pageData struct {
	AppName  string
	SignOut  bool
	Next     string
	Error    string
	Protocol string
}

// page is the console itself.
func (c *Console) page(ctx *fiber.Ctx) error {
	if ctx.Path() == Path {
		// One address for the page, the one the sign-in returns to.
		return ctx.Redirect(Path+"/", fiber.StatusMovedPermanently)
	}
	if c.Protected() {
		live, err := c.HasSession(ctx)
		if err != nil {
			return err
		}
		if !live {
			return c.RedirectToSignIn(ctx)
		}
	}
	return c.render(ctx, fiber.StatusOK, c.index, pageData{AppName: c.appName, SignOut: c.Protected()})
}

func (c *Console) signInPage(ctx *fiber.Ctx) error {
	next := safeNext(ctx.Query("next"))
	if !c.Protected() {
		return ctx.Redirect(next, fiber.StatusSeeOther)
	}
	live, err := c.HasSession(ctx)
	if err != nil {
		return err
	}
	if live {
		return ctx.Redirect(next, fiber.StatusSeeOther)
	}
	return c.render(ctx, fiber.StatusOK, c.signin, pageData{AppName: c.appName, Next: next})
}

// signIn takes the key from the form, and on a match stores a session,
// sets its cookie and sends the browser on. Each client gets
// auth.SignInAttempts attempts per auth.SignInWindow; a success clears the
// count, and the attempt after the last one gets 429 with Retry-After
// without the key being looked at.
func (c *Console) signIn(ctx *fiber.Ctx) error {
	if !c.Protected() {
		return ctx.Redirect(Path+"/", fiber.StatusSeeOther)
	}
	// A sign-in forced from another site would log the victim into the
	// attacker's session; with a single shared key that is harmless, but
	// the check costs nothing.
	if err := CheckSameOrigin(ctx); err != nil {
		return err
	}
	next := safeNext(ctx.FormValue("next"))
	client := c.clientIP(ctx)
	ok, wait, err := c.throttle.Attempt(ctx.UserContext(), client)
	if err != nil {
		return fmt.Errorf("console sign-in: %w", err)
	}
	if !ok {
		minutes := int(math.Ceil(wait.Minutes()))
		c.log.Warn("console sign-in refused: too many attempts", "ip", client, "retry_after", wait.Round(time.Second))
		ctx.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		return c.render(ctx, fiber.StatusTooManyRequests, c.signin, pageData{AppName: c.appName, Next: next,
			Error: fmt.Sprintf("Too many failed sign-ins from this address. Try again in %d minute%s.", minutes, plural(minutes))})
	}
	if !c.key.Matches(ctx.FormValue("key")) {
		c.log.Warn("console sign-in refused: wrong key", "ip", client)
		return c.render(ctx, fiber.StatusUnauthorized, c.signin, pageData{AppName: c.appName, Next: next, Error: "That key is not the API key. Try again."})
	}
	if err := c.throttle.Reset(ctx.UserContext(), client); err != nil {
		return fmt.Errorf("console sign-in: %w", err)
	}
	// Expired rows go a bounded batch at a time, here rather than in a
	// job of their own; a failure costs only a larger table.
	if _, err := c.sessions.PurgeExpiredSessions(ctx.UserContext(), purgeBatch); err != nil {
		c.log.Warn("console sign-in: purge expired sessions", "err", err)
	}
	value, hash, err := newSession()
	if err != nil {
		return fmt.Errorf("console sign-in: %w", err)
	}
	expires := time.Now().Add(c.ttl)
	if err := c.sessions.CreateSession(ctx.UserContext(), hash, c.key.Fingerprint(), expires); err != nil {
		return fmt.Errorf("console sign-in: %w", err)
	}
	ctx.Cookie(c.cookie(ctx, value, expires))
	c.log.Info("console sign-in", "ip", client, "expires", expires.UTC())
	return ctx.Redirect(next, fiber.StatusSeeOther)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// signOut deletes the session the cookie names and clears the cookie.
func (c *Console) signOut(ctx *fiber.Ctx) error {
	if err := CheckSameOrigin(ctx); err != nil {
		return err
	}
	if hash, ok := parseSession(ctx.Cookies(CookieName)); ok && c.Protected() {
		if err := c.sessions.DeleteSession(ctx.UserContext(), hash); err != nil {
			return fmt.Errorf("console sign-out: %w", err)
		}
	}
	ctx.Cookie(c.cookie(ctx, "", time.Unix(1, 0)))
	if c.Protected() {
		c.log.Info("console sign-out", "ip", c.clientIP(ctx))
		return ctx.Redirect(SignInPath, fiber.StatusSeeOther)
	}
	return ctx.Redirect(Path+"/", fiber.StatusSeeOther)
}

// cookie is the session cookie: for the whole site (the console calls
// /api/v1 and the dashboard lives at /monitoring), out of reach of
// scripts, never sent cross-site, and Secure when the request came over
// https (directly or through a proxy listed in TRUSTED_PROXIES).
func (c *Console) cookie(ctx *fiber.Ctx, value string, expires time.Time) *fiber.Cookie {
	return &fiber.Cookie{
		Name:     CookieName,
		Value:    value,
		Path:     "/",
		Expires:  expires,
		HTTPOnly: true,
		SameSite: fiber.CookieSameSiteStrictMode,
		Secure:   ctx.Protocol() == "https",
	}
}

// ContentSecurityPolicy lets a console page load only what this server
// serves: no inline script or style, no outside font, no framing.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// SetSecurityHeaders sets the headers every console answer carries: the
// CSP above, no framing, no type sniffing, no referrer to other sites.
func SetSecurityHeaders(ctx *fiber.Ctx) {
	ctx.Set(fiber.HeaderContentSecurityPolicy, ContentSecurityPolicy)
	ctx.Set(fiber.HeaderXFrameOptions, "DENY")
	ctx.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	ctx.Set(fiber.HeaderReferrerPolicy, "same-origin")
}

func (c *Console) render(ctx *fiber.Ctx, status int, t *template.Template, d pageData) error {
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return err
	}
	SetSecurityHeaders(ctx)
	ctx.Set(fiber.HeaderCacheControl, "no-store")
	ctx.Type("html", "utf-8")
	return ctx.Status(status).Send(b.Bytes())
}

// nextPath is where a sign-in may send the browser back to: a page of the
// console or of the dashboard, never another site (//evil.example,
// /\evil.example) or a URL with a scheme.
var nextPath = regexp.MustCompile(`^/(console|monitoring)(/[A-Za-z0-9._~:@!$&'()*+,;=%-]*)*$`)

// safeNext returns p when it is such a path, else the console.
func safeNext(p string) string {
	if len(p) <= 512 && nextPath.MatchString(p) && !strings.Contains(p, "//") {
		return p
	}
	return Path + "/"
}
