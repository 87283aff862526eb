package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// requireKey guards a mutating route: with API_KEY set, the request must
// carry Authorization: Bearer <key>, or it gets 401 and the handler does
// not run. Without API_KEY it lets everything through (New warns at start).
func (s *Server) requireKey(c *fiber.Ctx) error {
	if s.keyHash != nil && !s.authorized(c) {
		return errUnauthorized
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
