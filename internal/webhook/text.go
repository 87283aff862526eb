package webhook

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on what is stored from a receiver's answer. The columns are TEXT,
// but a provider's id longer than MaxMessageIDBytes is not an id anyone can
// use, and an error text is for an operator to read.
const (
	// MaxMessageIDBytes bounds the stored messageId (remote_message_id).
	MaxMessageIDBytes = 255
	// MaxSnippetBytes bounds the piece of a rejection's body kept in the
	// error text (last_error, message_attempts.error).
	MaxSnippetBytes = 200
	// MaxReasonBytes bounds a whole Error.Reason.
	MaxReasonBytes = 512
)

// Storable makes s safe to store in a PostgreSQL TEXT column: every byte
// that is not part of valid UTF-8 and every control character (NUL
// included) becomes U+FFFD, and the result is cut on a character boundary
// to at most limit bytes. intact reports that s needed none of this, so
// that a caller may reject an altered value instead of storing it. The cut
// of a string is always a prefix of its uncut cleaned form.
func Storable(s string, limit int) (clean string, intact bool) {
	limit = max(limit, 0)
	var b strings.Builder
	intact = true
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		rep := s[i : i+size]
		if (r == utf8.RuneError && size == 1) || unicode.IsControl(r) {
			rep, intact = string(utf8.RuneError), false
		}
		if b.Len()+len(rep) > limit {
			return b.String(), false
		}
		b.WriteString(rep)
		i += size
	}
	return b.String(), intact
}
