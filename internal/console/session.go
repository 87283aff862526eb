package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// A session is a cookie the server signed and nobody else can forge:
//
//	v1.<expiry, Unix seconds>.<random nonce>.<HMAC-SHA256 of what precedes>
//
// The signing key is derived from API_KEY, so every api replica accepts the
// others' cookies, and rotating API_KEY ends every session. Nothing is kept
// on the server; signing out removes the cookie from the browser.
const (
	sessionVersion = "v1"
	// maxCookieLen bounds what the parser looks at; a real value is about
	// 90 characters.
	maxCookieLen = 256
)

// sessionKey derives the cookie-signing key from the API key, so that the
// key itself never signs anything another protocol might also sign.
func sessionKey(apiKey string) []byte {
	m := hmac.New(sha256.New, []byte(apiKey))
	m.Write([]byte("messaging-server console session " + sessionVersion))
	return m.Sum(nil)
}

// signSession returns a cookie value that is valid until expires.
func signSession(key []byte, expires time.Time) (string, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	body := sessionVersion + "." + strconv.FormatInt(expires.Unix(), 10) + "." + base64.RawURLEncoding.EncodeToString(nonce)
	return body + "." + base64.RawURLEncoding.EncodeToString(mac(key, body)), nil
}

// verifySession tells whether value is a session this key signed that has
// not expired at now. It never panics on any input (FuzzVerifySession).
func verifySession(key []byte, value string, now time.Time) bool {
	if value == "" || len(value) > maxCookieLen {
		return false
	}
	i := strings.LastIndexByte(value, '.')
	if i < 0 {
		return false
	}
	body, sig := value[:i], value[i+1:]
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac(key, body)) {
		return false
	}
	// Only now is the body ours; its fields still get checked.
	parts := strings.Split(body, ".")
	if len(parts) != 3 || parts[0] != sessionVersion {
		return false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return false
	}
	return now.Unix() < exp
}

func mac(key []byte, body string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(body))
	return m.Sum(nil)
}
