// Package auth holds what the api and its console share to tell who a
// request comes from: the API keys compared in constant time, the
// fingerprint that ties a console session to the key that created it, the
// client address behind trusted proxies, and the sign-in throttle. It knows
// nothing of HTTP frameworks, so both internal/api and internal/console
// import it.
package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"strings"
)

// Key is a secret the server compares requests against (API_KEY or
// API_READ_KEY). Only its SHA-256 digest is kept for comparisons.
type Key struct {
	sum [sha256.Size]byte
	fp  []byte
}

// NewKey returns the Key for secret, or nil when secret is empty after
// trimming spaces (the key is not set).
func NewKey(secret string) *Key {
	secret = strings.TrimSpace(secret)
	if secret == "" {
		return nil
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("messaging-server console session key fingerprint v1"))
	return &Key{sum: sha256.Sum256([]byte(secret)), fp: m.Sum(nil)}
}

// Matches tells whether candidate is this key. It compares SHA-256
// digests in constant time, so neither the key's bytes nor its length leak
// through timing. A nil Key matches nothing.
func (k *Key) Matches(candidate string) bool {
	if k == nil {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(candidate)))
	return subtle.ConstantTimeCompare(sum[:], k.sum[:]) == 1
}

// Fingerprint names the key without revealing it: an HMAC of a fixed label
// under the key. Each console session row stores the fingerprint of the
// key that created it, and a session is honoured only while that key is
// still API_KEY, so changing the key ends every session.
func (k *Key) Fingerprint() []byte {
	if k == nil {
		return nil
	}
	return append([]byte(nil), k.fp...)
}

// BearerToken returns the token of an "Authorization: Bearer <token>"
// header value (the scheme in any case), and whether it had that form.
func BearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
