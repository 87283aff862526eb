package api

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzDecodeCursor checks that no client-supplied cursor can reach
// PostgreSQL in a form it rejects, and that every cursor the API issues
// reads back as the same position.
func FuzzDecodeCursor(f *testing.F) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 123456000, time.UTC)
	for _, c := range []pageCursor{{At: &at, ID: "abc"}, {ID: "x|y"}, {At: &at, ID: strings.Repeat("z", 36)}} {
		f.Add(encodeCursor(c))
	}
	f.Add("!!!")
	f.Add("")
	f.Add("fA")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor(s)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != "invalid_cursor" {
				t.Fatalf("DecodeCursor(%q) error %v is not a 400 invalid_cursor", s, err)
			}
			return
		}
		if c.ID == "" || !utf8.ValidString(c.ID) || strings.ContainsRune(c.ID, 0) || utf8.RuneCountInString(c.ID) > 36 {
			t.Fatalf("DecodeCursor(%q) accepted id %q", s, c.ID)
		}
		again, err := decodeCursor(encodeCursor(c))
		if err != nil || again.ID != c.ID || (again.At == nil) != (c.At == nil) ||
			(c.At != nil && !again.At.Equal(*c.At)) {
			t.Fatalf("cursor %q does not round-trip: %+v then %+v, %v", s, c, again, err)
		}
	})
}
