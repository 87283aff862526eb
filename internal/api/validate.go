package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/gofiber/fiber/v2"

	"github.com/messaging-server/messaging-server/internal/message"
	"github.com/messaging-server/messaging-server/internal/store"
)

// CreateMessageRequest is the body of POST /api/v1/messages. Unknown fields
// are rejected, so a misspelt field never silently becomes an empty one.
//
// The document's maxLength is MAX_CONTENT_LENGTH's default (160). swag
// writes no pattern from struct tags: internal/api/apidoc adds
// message.ContentPattern and message.PhonePattern, and additionalProperties:
// false. The rule that content needs a visible character (not only white
// space, zero-width, BOM or bidi controls) is in the description only, as no
// portable pattern states it.
type CreateMessageRequest struct {
	// Content is the text to send: 1 to MAX_CONTENT_LENGTH (default 160)
	// characters, no control characters other than tab, CR and LF, and at
	// least one visible character.
	Content string `json:"content" example:"Your verification code is 123456" minLength:"1" maxLength:"160"`
	// PhoneNumber is the recipient in E.164 form: + then 8 to 15 digits,
	// the first not 0.
	PhoneNumber string `json:"phone_number" example:"+905551111111" maxLength:"16"`
	// The optional lifecycle fields (lifecycle.go).
	LifecycleFields
}

// ValidateNewMessage checks a new message against the rules the database
// and the provider impose (message.Validate), so that a message the API
// accepts can always be stored and sent. It returns nil or a
// *ValidationError naming the first bad field.
func ValidateNewMessage(r CreateMessageRequest, maxContent int) error {
	return message.Validate(r.Content, r.PhoneNumber, maxContent)
}

// DecodeNewMessage parses a POST /api/v1/messages body strictly: exactly one
// JSON object, no unknown fields, strings where strings belong. Its errors
// are 400 *Error values that say what was wrong without echoing the body.
func DecodeNewMessage(body []byte) (CreateMessageRequest, error) {
	var r CreateMessageRequest
	if len(bytes.TrimSpace(body)) == 0 {
		return r, badJSON("request body is empty")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return CreateMessageRequest{}, jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return CreateMessageRequest{}, badJSON("request body must hold a single JSON object")
	}
	if err := CheckJSONText(body); err != nil {
		return CreateMessageRequest{}, err
	}
	return r, nil
}

// Sentinel answers of CheckJSONText.
var (
	errNotUTF8 = &Error{Status: fiber.StatusBadRequest, Code: "invalid_json",
		Message: "request body is not valid UTF-8 (JSON text must be UTF-8; overlong and surrogate encodings are invalid)"}
	errLoneSurrogate = &Error{Status: fiber.StatusBadRequest, Code: "invalid_json",
		Message: "a JSON string holds an escaped lone surrogate (\\ud800 to \\udfff without its pair), which is not a character"}
)

// CheckJSONText refuses a JSON body whose text encoding/json would alter
// while decoding it: bytes that are not UTF-8 (raw invalid bytes, overlong
// forms, encoded surrogates) and \u escapes of lone surrogates, all of
// which it silently turns into U+FFFD. It is meant for a body encoding/json
// has already decoded without error, so the only faults left are these;
// jsontext (the JSON v2 tokenizer) validates by RFC 7493. Duplicate names
// stay allowed, as encoding/json allows them.
func CheckJSONText(body []byte) error {
	if !utf8.Valid(body) {
		return errNotUTF8
	}
	if !jsontext.Value(body).IsValid(jsontext.AllowDuplicateNames(true)) {
		return errLoneSurrogate
	}
	return nil
}

func badJSON(msg string) *Error {
	return &Error{Status: fiber.StatusBadRequest, Code: "invalid_json", Message: msg}
}

func jsonError(err error) *Error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn):
		return badJSON(fmt.Sprintf("malformed JSON at byte %d", syn.Offset))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badJSON("malformed JSON: unexpected end of body")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return badJSON("request body must be a JSON object")
		}
		return &Error{Status: fiber.StatusBadRequest, Code: "invalid_json", Field: typ.Field,
			Message: typ.Field + " must be a JSON string"}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return &Error{Status: fiber.StatusBadRequest, Code: "unknown_field", Field: name,
			Message: "unknown field; allowed fields are content, phone_number, id, send_at, validity_period and priority"}
	}
	return badJSON("malformed JSON")
}

// Page sizes of the sent list.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// ParseLimit reads the limit query parameter: empty means DefaultPageSize,
// larger than MaxPageSize is capped, anything but a positive whole number
// is a 400.
func ParseLimit(s string) (int, error) {
	if s == "" {
		return DefaultPageSize, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		if err != nil && isDigits(s) {
			return MaxPageSize, nil // too large for an int: capped like any other
		}
		return 0, &Error{Status: fiber.StatusBadRequest, Code: "invalid_parameter", Field: "limit",
			Message: fmt.Sprintf("limit must be a whole number from 1 (values above %d are capped)", MaxPageSize)}
	}
	return min(n, MaxPageSize), nil
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// The cursor is opaque to clients: base64url (no padding) of
// "<sent_at RFC 3339 with nanoseconds, UTC>|<id>", with an empty time for
// rows sent before sent_at was recorded. The id goes last because it may
// hold any character, '|' included.
var cursorEncoding = base64.RawURLEncoding

// EncodeCursor turns the last row of a page into the next page's cursor.
func EncodeCursor(c store.SentCursor) string {
	t := ""
	if c.SentAt != nil {
		t = c.SentAt.UTC().Format(time.RFC3339Nano)
	}
	return cursorEncoding.EncodeToString([]byte(t + "|" + c.ID))
}

var errBadCursor = &Error{Status: fiber.StatusBadRequest, Code: "invalid_cursor", Field: "cursor",
	Message: "cursor is not one this API issued; start again without it"}

// DecodeCursor parses a cursor from EncodeCursor; anything else is a 400,
// never a database error.
func DecodeCursor(s string) (store.SentCursor, error) {
	b, err := cursorEncoding.Strict().DecodeString(s)
	if err != nil || !utf8.Valid(b) {
		return store.SentCursor{}, errBadCursor
	}
	t, id, ok := strings.Cut(string(b), "|")
	if !ok || id == "" || utf8.RuneCountInString(id) > 36 || strings.ContainsRune(id, 0) {
		return store.SentCursor{}, errBadCursor
	}
	c := store.SentCursor{ID: id}
	if t != "" {
		at, err := time.Parse(time.RFC3339Nano, t)
		if err != nil || at.Year() < 1 || at.Year() > 9999 {
			return store.SentCursor{}, errBadCursor
		}
		at = at.UTC()
		c.SentAt = &at
	}
	return c, nil
}
