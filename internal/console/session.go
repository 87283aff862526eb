package console

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// A session is a random id the server keeps in PostgreSQL (only its
// SHA-256) together with the fingerprint of the API key that created it and
// its expiry. The cookie carries the id:
//
//	v2.<base64url of 32 random bytes>
//
// Every request that uses the cookie looks the row up, so signing out,
// revoking every session or changing API_KEY ends a session at once, on
// every api replica.
const (
	sessionVersion = "v2"
	sessionIDBytes = 32
	// maxCookieLen bounds what the parser looks at; a real value is 46
	// characters.
	maxCookieLen = 128
)

// newSession returns a fresh cookie value and the digest of its id, the
// key its row is stored under.
func newSession() (string, []byte, error) {
	id := make([]byte, sessionIDBytes)
	if _, err := rand.Read(id); err != nil {
		return "", nil, err
	}
	sum := sha256.Sum256(id)
	return sessionVersion + "." + base64.RawURLEncoding.EncodeToString(id), sum[:], nil
}

// parseSession returns the digest of the id a cookie value carries, or
// false when the value is not a session cookie of this version. It never
// panics on any input (FuzzParseSession).
func parseSession(value string) ([]byte, bool) {
	if len(value) > maxCookieLen {
		return nil, false
	}
	enc, ok := strings.CutPrefix(value, sessionVersion+".")
	if !ok {
		return nil, false
	}
	id, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(id) != sessionIDBytes {
		return nil, false
	}
	sum := sha256.Sum256(id)
	return sum[:], true
}
