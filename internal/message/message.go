// Package message holds the rules a message must meet to be sendable. The
// API applies them to what it accepts, and the workers apply them to rows
// other systems inserted directly, so a bad row fails with a clear reason
// instead of reaching the webhook.
package message

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// InvalidError says which field is wrong and why, in words fit for a user.
type InvalidError struct {
	Field   string
	Message string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Message }

// MaxIDLength is the longest id, in characters: the id column is
// VARCHAR(36).
const MaxIDLength = 36

// PhonePattern is E.164: "+", a non-zero digit, then 7 to 14 more digits, 8
// to 15 digits in all, which also fits the VARCHAR(20) column. It is the
// form NormalizePhone returns and the API stores.
const PhonePattern = `^\+[1-9][0-9]{7,14}$`

var e164Form = regexp.MustCompile(PhonePattern)

// ContentPattern matches text free of the control characters CheckContent
// refuses (it allows tab, LF and CR). The OpenAPI document states it, in a
// form both ECMA-262 and Go's regexp read; the other content rules (a
// visible base character, the length) are not in it.
const ContentPattern = `^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]+$`

// Validate checks a message before it is stored or sent: content as
// CheckContent, phone number as NormalizePhone. It returns the number's
// E.164 form, or an *InvalidError naming the first bad field.
func Validate(content, phone string, maxContent int) (string, error) {
	if err := CheckContent(content, maxContent); err != nil {
		return "", err
	}
	return NormalizePhone("phone_number", phone)
}

// ValidateClaimed is the check a worker makes on each claimed row before it
// calls the webhook: the id must be able to travel in a header (CheckID),
// and content and phone number must pass Validate. It returns the number's
// E.164 form, which is what the webhook receives. phoneChecked says the API
// created the row, having read the number and stored it in E.164: then
// only the id and the content are checked. A row that fails it is failed
// at once with the error as its reason, and no call is made.
func ValidateClaimed(id, content, phone string, maxContent int, phoneChecked bool) (string, error) {
	if err := CheckID(id); err != nil {
		return "", err
	}
	if phoneChecked {
		// The API read this number at the create and stored its E.164
		// form; the content is checked again, it costs little.
		return phone, CheckContent(content, maxContent)
	}
	return Validate(content, phone, maxContent)
}

// CheckContent checks message text: present, valid UTF-8, free of control
// characters (C0 other than tab, CR and LF; DEL; C1, U+0080 to U+009F;
// PostgreSQL rejects NUL and receivers mangle the rest), holding at least
// one visible base character (see VisibleBase), and at most maxContent
// characters (runes, not bytes).
func CheckContent(c string, maxContent int) error {
	switch {
	case c == "":
		return &InvalidError{Field: "content", Message: "content is required"}
	case !utf8.ValidString(c):
		return &InvalidError{Field: "content", Message: "content must be valid UTF-8"}
	case hasControl(c):
		return &InvalidError{Field: "content", Message: "content must not contain control characters (U+0000 to U+001F other than tab, CR and LF; U+007F to U+009F)"}
	case !strings.ContainsFunc(c, VisibleBase):
		return &InvalidError{Field: "content", Message: "content must not be blank: it needs a letter, digit, punctuation mark or symbol; white space, format characters (zero-width, BOM, bidi controls), combining marks and blank symbols (U+2800, Hangul fillers) alone are not a message"}
	case utf8.RuneCountInString(c) > maxContent:
		return &InvalidError{Field: "content", Message: fmt.Sprintf("content must be at most %d characters", maxContent)}
	}
	return nil
}

// CheckID checks that a message id can travel unaltered as the
// Idempotency-Key and webhook-id headers: 1 to MaxIDLength characters of
// valid UTF-8, no control character (a header cannot carry one, and Go's
// client refuses such a request on every attempt), and no leading or
// trailing space (receivers trim it, so the signed id would not match).
func CheckID(id string) error {
	switch {
	case id == "":
		return &InvalidError{Field: "id", Message: "id is empty, so it cannot be sent as the Idempotency-Key"}
	case !utf8.ValidString(id):
		return &InvalidError{Field: "id", Message: "id is not valid UTF-8"}
	case utf8.RuneCountInString(id) > MaxIDLength:
		return &InvalidError{Field: "id", Message: fmt.Sprintf("id is longer than %d characters", MaxIDLength)}
	case hasIDControl(id):
		return &InvalidError{Field: "id", Message: "id contains a control character, which cannot travel in a header"}
	case id[0] == ' ' || id[len(id)-1] == ' ':
		return &InvalidError{Field: "id", Message: "id starts or ends with a space, which receivers strip from a header"}
	}
	return nil
}

// IsControl reports whether r is a C0 control, DEL or a C1 control
// (U+0080 to U+009F).
func IsControl(r rune) bool {
	return r < 0x20 || r >= 0x7f && r <= 0x9f
}

// VisibleBase reports whether r is a visible base character: one that
// shows something on its own, so that content holding one is not blank.
// That is a rune of Unicode general category L (letters), N (numbers), P
// (punctuation) or S (symbols), except those that render as nothing:
//   - the default-ignorable letters, which Unicode lists in
//     Other_Default_Ignorable_Code_Point: the Hangul fillers U+115F,
//     U+1160, U+3164 and U+FFA0;
//   - U+2800 BRAILLE PATTERN BLANK, a symbol with no dots;
//   - U+1D159 MUSICAL SYMBOL NULL NOTEHEAD, a symbol drawn as nothing.
//
// Everything else is not a base character, or not a visible one: white
// space and separators (Z), format characters (Cf: zero-width space and
// joiners, the BOM, bidi controls, soft hyphen, tags), controls, private
// use and unassigned code points (C), and marks (M: combining accents,
// variation selectors), which only change the base before them.
func VisibleBase(r rune) bool {
	if !unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S) {
		return false
	}
	return !unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) && r != '\u2800' && r != '\U0001D159'
}

func hasControl(s string) bool {
	for _, r := range s {
		if IsControl(r) && r != '\t' && r != '\n' && r != '\r' {
			return true
		}
	}
	return false
}

func hasIDControl(s string) bool {
	for _, r := range s {
		if IsControl(r) {
			return true
		}
	}
	return false
}
