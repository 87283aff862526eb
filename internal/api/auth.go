package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/messaging-server/messaging-server/internal/console"
)

// requireKey guards a mutating route: with API_KEY set, the request must
// carry Authorization: Bearer <key>, or come from the console (a signed-in
// session cookie, the console's header and a same-origin Origin), or it
// gets 401 (403 for a cross-site use of the cookie) and the handler does
// not run. Without API_KEY it lets everything through (New warns at
// start).
func (s *Server) requireKey(c *fiber.Ctx) error {
	if s.keyHash == nil || s.authorized(c) {
		return c.Next()
	}
	if !s.console.HasSession(c) {
		return errUnauthorized
	}
	if err := console.CheckAPIRequest(c); err != nil {
		return err
	}
	return c.Next()
}

// authorized tells whether the request carries the API key. It compares
// SHA-256 digests in constant time, so neither the key's bytes nor its
// length leak through timing. The header is never logged.
func (s *Server) authorized(c *fiber.Ctx) bool {
	if s.keyHash == nil {
		return true
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(c.Get(fiber.HeaderAuthorization)), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(sum[:], s.keyHash[:]) == 1
}
