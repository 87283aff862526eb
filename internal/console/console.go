// Package console is the operator console served by cmd/api at /console/:
// an embedded page (HTML, CSS and vanilla JavaScript, nothing fetched from
// outside) that drives the public JSON API, and the sign-in that guards it
// and the asynqmon dashboard when API_KEY is set.
//
// The page itself holds no logic the API does not have: it calls the same
// endpoints curl users call. What this package owns is the session: a
// sign-in page that takes the API key once, an HMAC-signed cookie
// (HttpOnly, SameSite=Strict, Secure behind https, with an expiry), the
// checks that make a cookie-authenticated change safe from cross-site
// requests, and sign-out.
package console

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"
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

// Deps is what the console needs from the program.
type Deps struct {
	// AppName titles the pages.
	AppName string
	// APIKey turns the sign-in on; empty leaves every page open.
	APIKey string
	// SessionTTL is how long a sign-in lasts.
	SessionTTL time.Duration
	// Now is the clock sessions are issued and checked against (default
	// time.Now).
	Now func() time.Time
	Log *slog.Logger
}

// Console serves the pages and checks sessions.
type Console struct {
	appName string
	keyHash *[sha256.Size]byte // nil: no sign-in
	signKey []byte
	ttl     time.Duration
	now     func() time.Time
	log     *slog.Logger
	index   *template.Template
	signin  *template.Template
	static  fs.FS
}

// New builds the console. It panics only if the embedded pages do not
// parse, which every test of the package would catch.
func New(d Deps) *Console {
	c := &Console{appName: d.AppName, ttl: d.SessionTTL, now: d.Now, log: d.Log}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.ttl <= 0 {
		c.ttl = 12 * time.Hour
	}
	if key := strings.TrimSpace(d.APIKey); key != "" {
		sum := sha256.Sum256([]byte(key))
		c.keyHash = &sum
		c.signKey = sessionKey(key)
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
func (c *Console) Protected() bool { return c.keyHash != nil }

// HasSession tells whether the request carries a valid session cookie.
// Without API_KEY there are no sessions, and it is false.
func (c *Console) HasSession(ctx *fiber.Ctx) bool {
	if c.keyHash == nil {
		return false
	}
	return verifySession(c.signKey, ctx.Cookies(CookieName), c.now())
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
	if c.Protected() && !c.HasSession(ctx) {
		return c.RedirectToSignIn(ctx)
	}
	return c.render(ctx, fiber.StatusOK, c.index, pageData{AppName: c.appName, SignOut: c.Protected()})
}

func (c *Console) signInPage(ctx *fiber.Ctx) error {
	next := safeNext(ctx.Query("next"))
	if !c.Protected() || c.HasSession(ctx) {
		return ctx.Redirect(next, fiber.StatusSeeOther)
	}
	return c.render(ctx, fiber.StatusOK, c.signin, pageData{AppName: c.appName, Next: next})
}

// signIn takes the key from the form, and on a match sets the session
// cookie and sends the browser on.
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
	sum := sha256.Sum256([]byte(strings.TrimSpace(ctx.FormValue("key"))))
	if subtle.ConstantTimeCompare(sum[:], c.keyHash[:]) != 1 {
		c.log.Warn("console sign-in refused: wrong key", "ip", ctx.IP())
		return c.render(ctx, fiber.StatusUnauthorized, c.signin, pageData{AppName: c.appName, Next: next, Error: "That key is not the API key. Try again."})
	}
	expires := c.now().Add(c.ttl)
	value, err := signSession(c.signKey, expires)
	if err != nil {
		return err
	}
	ctx.Cookie(c.cookie(ctx, value, expires))
	c.log.Info("console sign-in", "ip", ctx.IP(), "expires", expires.UTC())
	return ctx.Redirect(next, fiber.StatusSeeOther)
}

func (c *Console) signOut(ctx *fiber.Ctx) error {
	if err := CheckSameOrigin(ctx); err != nil {
		return err
	}
	ctx.Cookie(c.cookie(ctx, "", time.Unix(1, 0)))
	if c.Protected() {
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

// contentSecurityPolicy lets a page load only what this server serves: no
// inline script, no outside font, no framing.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

func (c *Console) render(ctx *fiber.Ctx, status int, t *template.Template, d pageData) error {
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return err
	}
	ctx.Set(fiber.HeaderContentSecurityPolicy, contentSecurityPolicy)
	ctx.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	ctx.Set(fiber.HeaderReferrerPolicy, "same-origin")
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
