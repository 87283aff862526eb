// Package message holds the rules a message must meet to be sendable. The
// API applies them to what it accepts, and the workers apply them to rows
// other systems inserted directly, so a bad row fails with a clear reason
// instead of reaching the webhook.
package message

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// InvalidError says which field is wrong and why, in words fit for a user.
type InvalidError struct {
	Field   string
	Message string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Message }

// e164 is "+", a non-zero digit, then 7 to 14 more digits: 8 to 15 digits
// in all, which also fits the VARCHAR(20) column.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)

// Validate checks content and phone number: content present, valid UTF-8,
// not blank, free of control characters other than tab and line breaks
// (PostgreSQL rejects NUL), at most maxContent characters (runes, not
// bytes); phone number in E.164 form. It returns nil or an *InvalidError
// naming the first bad field.
func Validate(content, phone string, maxContent int) error {
	switch c := content; {
	case c == "":
		return &InvalidError{Field: "content", Message: "content is required"}
	case !utf8.ValidString(c):
		return &InvalidError{Field: "content", Message: "content must be valid UTF-8"}
	case strings.TrimSpace(c) == "":
		return &InvalidError{Field: "content", Message: "content must not be blank"}
	case hasControl(c):
		return &InvalidError{Field: "content", Message: "content must not contain control characters other than tab, CR and LF"}
	case utf8.RuneCountInString(c) > maxContent:
		return &InvalidError{Field: "content", Message: fmt.Sprintf("content must be at most %d characters", maxContent)}
	}
	switch {
	case phone == "":
		return &InvalidError{Field: "phone_number", Message: "phone_number is required"}
	case !e164.MatchString(phone):
		return &InvalidError{Field: "phone_number", Message: "phone_number must be in E.164 form: + then 8 to 15 digits, the first not 0"}
	}
	return nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f {
			return true
		}
	}
	return false
}
