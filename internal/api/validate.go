package api

import (
	"bytes"
	"encoding/base64"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/gofiber/fiber/v2"

	"github.com/messaging-server/messaging-server/internal/message"
	"github.com/messaging-server/messaging-server/internal/store"
)

// CreateMessageRequest is the body of POST /api/v1/messages. It is decoded
// strictly (decodeStrict): names match exactly, unknown or repeated names
// are refused, and every field must have its documented JSON type.
//
// The document's maxLength is MAX_CONTENT_LENGTH's default (160). swag
// writes no pattern from struct tags: internal/api/apidoc adds
// message.ContentPattern and message.PhonePattern, and additionalProperties:
// false. The rule that content needs a visible base character
// (message.VisibleBase) is in the description only, as no portable pattern
// states it.
type CreateMessageRequest struct {
	// Content is the text to send: 1 to MAX_CONTENT_LENGTH (default 160)
	// characters, no control characters other than tab, CR and LF, and at
	// least one visible character (a letter, digit, punctuation mark or
	// symbol; U+2800 and the Hangul fillers do not count).
	Content string `json:"content" example:"Your verification code is 123456" minLength:"1" maxLength:"160"`
	// PhoneNumber is the recipient in E.164 form: + then 8 to 15 digits,
	// the first not 0.
	PhoneNumber string `json:"phone_number" example:"+905551111111" maxLength:"16"`
	// The optional lifecycle fields (lifecycle.go).
	LifecycleFields
}

// createFields lists the names a create takes, for the unknown-field
// answer.
const createFields = "content, phone_number, id, send_at, validity_period and priority"

// ValidateNewMessage checks a new message against the rules the database
// and the provider impose (message.Validate), so that a message the API
// accepts can always be stored and sent. It returns nil or a
// *ValidationError naming the first bad field.
func ValidateNewMessage(r CreateMessageRequest, maxContent int) error {
	return message.Validate(r.Content, r.PhoneNumber, maxContent)
}

// DecodeNewMessage parses a POST /api/v1/messages body strictly (see
// decodeStrict): a 400 *Error for a body that is not one JSON object of
// known, distinct names, a 422 *ValidationError for a field of the wrong
// JSON type. Neither echoes the body beyond a field name.
func DecodeNewMessage(body []byte) (CreateMessageRequest, error) {
	var r CreateMessageRequest
	if err := decodeStrict(body, &r, createFields); err != nil {
		return CreateMessageRequest{}, err
	}
	return r, nil
}

// strictJSON are the options of every request body the API decodes, stated
// even where they are JSON v2's defaults, since they are the contract:
// object names match exactly (encoding/json matched them without regard to
// case, so "Content" overwrote "content"), a name may appear once, an
// unknown name is refused, and strings must be valid UTF-8 without escaped
// lone surrogates. JSON v2 also refuses a string for a number, a number for
// a string, and a fraction, exponent or boolean for an integer.
var strictJSON = json.JoinOptions(
	json.RejectUnknownMembers(true),
	json.MatchCaseInsensitiveNames(false),
	jsontext.AllowDuplicateNames(false),
	jsontext.AllowInvalidUTF8(false),
)

// decodeStrict parses body, which must hold exactly one JSON value, into v
// (a pointer to a request struct) with strictJSON. fields lists v's names
// for the unknown-field answer. Errors:
//   - 400 invalid_json: an empty body, bytes that are not UTF-8, an escaped
//     lone surrogate, malformed JSON, a duplicate name (named in the
//     message and in error.field), or a body that is not a JSON object;
//   - 400 unknown_field: a name v does not have, compared exactly;
//   - 422 validation_failed (*ValidationError): a member of the wrong JSON
//     type, error.field naming it as the document does (e.g. priority).
func decodeStrict(body []byte, v any, fields string) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return badJSON("request body is empty")
	}
	if !utf8.Valid(body) {
		return errNotUTF8
	}
	if err := json.Unmarshal(body, v, strictJSON); err != nil {
		return decodeError(body, err, fields)
	}
	return nil
}

// decodeError turns an error of json.Unmarshal on body into the answer
// decodeStrict documents.
func decodeError(body []byte, err error, fields string) error {
	var (
		syn *jsontext.SyntacticError
		sem *json.SemanticError
	)
	switch {
	case errors.Is(err, jsontext.ErrDuplicateName) && errors.As(err, &syn):
		name := fieldName(syn.JSONPointer)
		return &Error{Status: fiber.StatusBadRequest, Code: "invalid_json", Field: name,
			Message: fmt.Sprintf("duplicate key %q: each key may appear once in an object", name)}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badJSON("malformed JSON: unexpected end of body")
	case errors.As(err, &syn):
		// Text encoding/json reads but JSON v2 refuses, apart from a
		// duplicate name, is an escaped lone surrogate: say so.
		if stdjson.Valid(body) {
			if e := CheckJSONText(body); e != nil {
				return e
			}
		}
		return badJSON(fmt.Sprintf("malformed JSON at byte %d", syn.ByteOffset))
	case errors.As(err, &sem) && errors.Is(err, json.ErrUnknownName):
		name := sem.JSONPointer.LastToken()
		return &Error{Status: fiber.StatusBadRequest, Code: "unknown_field", Field: name,
			Message: "unknown field; allowed fields are " + fields + " (names match exactly, case included)"}
	case errors.As(err, &sem) && sem.JSONPointer == "":
		return badJSON("request body must be a JSON object")
	case errors.As(err, &sem):
		name := fieldName(sem.JSONPointer)
		return invalid(name, name+" must be "+jsonTypeOf(sem.GoType))
	}
	return badJSON("malformed JSON")
}

// fieldName writes a JSON Pointer as the API names fields: "/priority" is
// priority, "/messages/3/priority" is messages[3].priority.
func fieldName(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		switch {
		case b.Len() > 0 && isDigits(tok):
			b.WriteString("[" + tok + "]")
		case b.Len() > 0:
			b.WriteString("." + tok)
		default:
			b.WriteString(tok)
		}
	}
	return b.String()
}

// jsonTypeOf says in words which JSON value a Go field of type t takes.
func jsonTypeOf(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "of its documented JSON type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a JSON string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a JSON integer: digits without quotes, fraction or exponent, within its range"
	case reflect.Slice, reflect.Array:
		return "a JSON array"
	case reflect.Struct, reflect.Map:
		return "a JSON object"
	}
	return "of its documented JSON type"
}

// Sentinel answers of CheckJSONText.
var (
	errNotUTF8 = &Error{Status: fiber.StatusBadRequest, Code: "invalid_json",
		Message: "request body is not valid UTF-8 (JSON text must be UTF-8; overlong and surrogate encodings are invalid)"}
	errLoneSurrogate = &Error{Status: fiber.StatusBadRequest, Code: "invalid_json",
		Message: "a JSON string holds an escaped lone surrogate (\\ud800 to \\udfff without its pair), which is not a character"}
)

// CheckJSONText refuses JSON text that encoding/json would alter while
// decoding it: bytes that are not UTF-8 (raw invalid bytes, overlong forms,
// encoded surrogates) and \u escapes of lone surrogates, all of which it
// silently turns into U+FFFD. decodeError calls it on a body encoding/json
// reads but JSON v2 refuses, to name the fault; jsontext (the JSON v2
// tokenizer) validates by RFC 7493. Duplicate names are allowed here:
// decodeStrict refuses them itself, with their name.
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
