package api

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/messaging-server/messaging-server/internal/callback"
	"github.com/messaging-server/messaging-server/internal/message"
	"github.com/messaging-server/messaging-server/internal/store"
)

// requireJSON guards a route that reads a JSON body: the Content-Type must
// be application/json, with no charset or charset=utf-8 (RFC 8259: JSON
// text is UTF-8), or the answer is 415 and the handler does not run.
func requireJSON(c *fiber.Ctx) error {
	mt, params, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || mt != fiber.MIMEApplicationJSON {
		return errUnsupportedMedia
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return errUnsupportedCharset
	}
	return c.Next()
}

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
	// PhoneNumber is the recipient as a full international number: + and
	// the country code, then the number, in any usual formatting (spaces,
	// dashes, parentheses, dots), at most 64 characters. It must be a
	// possible number for its country by length. It is stored, shown and
	// sent in E.164 form (+12015550123).
	PhoneNumber string `json:"phone_number" example:"+1 (201) 555-0123" minLength:"1" maxLength:"64"`
	// The optional lifecycle fields (LifecycleFields, below).
	LifecycleFields
}

// createFields lists the names a create takes, for the unknown-field
// answer.
const createFields = "content, phone_number, id, send_at, validity_period, priority and status_callback"

// LifecycleFields are the optional fields of a create. swag reads no
// pattern from struct tags: internal/api/apidoc writes IDPattern for id.
type LifecycleFields struct {
	// ID is the message id to use, so that a producer's retry is safe:
	// 1 to 36 characters from A-Z a-z 0-9 _ . : ~ -, the first a letter or
	// digit, and not "sent" or "batch" in any case (route words under
	// /api/v1/messages/). Without it the server picks a UUID.
	ID *string `json:"id,omitempty" example:"order-4711-otp" minLength:"1" maxLength:"36"`
	// SendAt is the earliest time to send (RFC 3339), not in the past and
	// at most 366 days ahead. Without it the message is due at once.
	SendAt *string `json:"send_at,omitempty" format:"date-time" example:"2026-12-01T09:00:00Z"`
	// ValidityPeriod is how many seconds (1 to 2592000) the message stays
	// sendable, counted from send_at or else from creation; it sets
	// expires_at. Without it DEFAULT_VALIDITY_PERIOD applies. A JSON
	// integer: a string, fraction or exponent is refused.
	ValidityPeriod *int `json:"validity_period,omitempty" minimum:"1" maximum:"2592000" example:"7200"`
	// Priority 0 (default) to 9: among due messages a higher one is sent
	// first. A JSON integer: a string, fraction, exponent or boolean is
	// refused.
	Priority *int `json:"priority,omitempty" minimum:"0" maximum:"9" example:"9"`
	// StatusCallback is where this message's status callbacks go instead
	// of STATUS_CALLBACK_URL: an absolute http or https URL of at most
	// 2048 bytes, without user information or fragment, on a host
	// STATUS_CALLBACK_ALLOWED_HOSTS allows (default: the host of
	// STATUS_CALLBACK_URL).
	StatusCallback *string `json:"status_callback,omitempty" example:"https://hooks.example.com/sms-status" maxLength:"2048"`
}

// Limits of the lifecycle fields.
const (
	MaxIDLength      = 36
	MaxScheduleAhead = 366 * 24 * time.Hour
	MaxValidity      = 2_592_000 // seconds: 30 days
	MaxPriority      = 9
	MaxBatch         = 1000
)

// validateNewMessage checks a new message against the rules the database
// and the provider impose (message.Validate), MAX_SEGMENTS and
// ALLOWED_COUNTRIES, so that a message the API accepts can always be
// stored and sent. It returns the phone number's E.164 form, or a
// *ValidationError naming the first bad field.
func validateNewMessage(r CreateMessageRequest, lim createLimits) (string, error) {
	phone, err := message.Validate(r.Content, r.PhoneNumber, lim.MaxContent)
	if err != nil {
		return "", err
	}
	if err := message.CheckSegments(r.Content, lim.MaxSegments); err != nil {
		return "", err
	}
	if err := lim.Countries.CheckCountry(phone); err != nil {
		return "", err
	}
	return phone, nil
}

// IDPattern is the form of an id a create may choose, as the OpenAPI
// document states it: a letter or digit, then up to 35 more of letters,
// digits and _ . : ~ -, so it fits the column, any header and a URL path
// segment unescaped, and is never "." or "..", which clients that tidy URLs
// cannot reach. parseID also refuses RouteWords.
const IDPattern = `^[A-Za-z0-9][A-Za-z0-9_.:~-]{0,35}$`

// RouteWords are the fixed path segments directly under
// /api/v1/messages/. A message with such an id could not be read at
// /api/v1/messages/{id} (GET /api/v1/messages/sent is the sent list), so a
// create refuses them, in any case, since routes match without regard to
// case. A test checks the list against the router.
var RouteWords = []string{"sent", "batch"}

var idForm = regexp.MustCompile(IDPattern)

// parseID checks a client-chosen message id: IDPattern, and not one of
// RouteWords in any case. Ids of rows other systems inserted are not
// checked here: reads and delivery take any id the column holds.
func parseID(id string) error {
	if !idForm.MatchString(id) {
		return invalid("id", "id must be 1 to 36 characters from A-Z a-z 0-9 _ . : ~ -, the first a letter or digit")
	}
	for _, w := range RouteWords {
		if strings.EqualFold(id, w) {
			return invalid("id", fmt.Sprintf("id must not be %q, in any case: /api/v1/messages/%s is another route", w, w))
		}
	}
	return nil
}

// errSendAtPast is returned by parseSendAt, wrapped in its validation
// error's place, when send_at is well formed but already past: a replay of
// an earlier create may still match.
var errSendAtPast = invalid("send_at", "send_at must not be in the past")

// parseSendAt reads send_at: RFC 3339, not before now, at most 366 days
// after now. It is kept to the microsecond, PostgreSQL's precision.
func parseSendAt(s string, now time.Time) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, invalid("send_at", "send_at must be an RFC 3339 time, e.g. 2026-12-01T09:00:00Z")
	}
	t = t.UTC().Truncate(time.Microsecond)
	if t.After(now.Add(MaxScheduleAhead)) {
		return time.Time{}, invalid("send_at", "send_at must be at most 366 days ahead")
	}
	if t.Before(now.Truncate(time.Second)) {
		return t, errSendAtPast
	}
	return t, nil
}

// parseWhole reads an optional integer field within [lo, hi]: digits only,
// no fraction or exponent. Absent (nil) gives ok false.
func parseWhole(num *stdjson.Number, field string, lo, hi int) (n int, ok bool, err error) {
	if num == nil {
		return 0, false, nil
	}
	raw := string(*num)
	bad := invalid(field, fmt.Sprintf("%s must be a whole number from %d to %d", field, lo, hi))
	for i, c := range raw {
		digit := c >= '0' && c <= '9'
		if !digit && (c != '-' || i > 0) {
			return 0, false, bad
		}
	}
	v, err := strconv.Atoi(raw)
	if raw == "" || err != nil || v < lo || v > hi {
		return 0, false, bad
	}
	return v, true, nil
}

// checkWhole checks an optional integer field against [lo, hi]. Absent
// (nil) gives ok false.
func checkWhole(v *int, field string, lo, hi int) (n int, ok bool, err error) {
	if v == nil {
		return 0, false, nil
	}
	if *v < lo || *v > hi {
		return 0, false, invalid(field, fmt.Sprintf("%s must be a whole number from %d to %d", field, lo, hi))
	}
	return *v, true, nil
}

// parseValidity reads validity_period in seconds (1 to 2592000).
func parseValidity(v *int) (time.Duration, bool, error) {
	n, ok, err := checkWhole(v, "validity_period", 1, MaxValidity)
	return time.Duration(n) * time.Second, ok, err
}

// createLimits are the settings a create is checked and completed with:
// MAX_CONTENT_LENGTH, DEFAULT_VALIDITY_PERIOD, MAX_SEGMENTS,
// ALLOWED_COUNTRIES and the hosts a status_callback may name.
type createLimits struct {
	MaxContent      int
	DefaultValidity time.Duration
	MaxSegments     int
	Countries       message.Countries
	// CallbackHosts are the hosts a status_callback may name.
	CallbackHosts []string
}

// buildNewMessage turns a decoded create into what the store inserts, with
// content and id exactly as sent and the phone number in E.164 form (so a
// replay that formats the number otherwise is the same message), or the
// *ValidationError of
// its first bad field. past reports that the only fault was a send_at
// already past (a replay may still match). Without an id it picks a
// version 7 UUID.
func buildNewMessage(r CreateMessageRequest, now time.Time, lim createLimits) (n store.NewMessage, past bool, err error) {
	phone, err := validateNewMessage(r, lim)
	if err != nil {
		return n, false, err
	}
	n = store.NewMessage{Content: r.Content, PhoneNumber: phone, Validity: lim.DefaultValidity}
	if r.ID != nil {
		if err := parseID(*r.ID); err != nil {
			return n, false, err
		}
		n.ID = *r.ID
	}
	if r.SendAt != nil {
		t, err := parseSendAt(*r.SendAt, now)
		if err != nil && !errors.Is(err, errSendAtPast) {
			return n, false, err
		}
		n.SendAt, past = &t, err != nil
	}
	v, ok, err := parseValidity(r.ValidityPeriod)
	if err != nil {
		return n, false, err
	}
	if ok {
		n.Validity = v
	}
	p, _, err := checkWhole(r.Priority, "priority", 0, MaxPriority)
	if err != nil {
		return n, false, err
	}
	n.Priority = p
	if r.StatusCallback != nil {
		if err := callback.CheckURL(*r.StatusCallback, lim.CallbackHosts); err != nil {
			return n, false, callbackURLError(err)
		}
		n.StatusCallback = *r.StatusCallback
	}
	if n.ID == "" {
		// Version 7: time-ordered, so new ids land at the end of the
		// primary key index instead of all over it.
		id, err := uuid.NewV7()
		if err != nil {
			return n, false, err
		}
		n.ID = id.String()
	}
	if past {
		return n, true, errSendAtPast
	}
	return n, false, nil
}

// decodeNewMessage parses a POST /api/v1/messages body strictly (see
// decodeStrict): a 400 *Error for a body that is not one JSON object of
// known, distinct names, a 422 *ValidationError for a field of the wrong
// JSON type. Neither echoes the body beyond a field name.
func decodeNewMessage(body []byte) (CreateMessageRequest, error) {
	var r CreateMessageRequest
	if err := decodeStrict(body, &r, createFields); err != nil {
		return CreateMessageRequest{}, err
	}
	return r, nil
}

// strictJSON are the options of every request body the API decodes, stated
// even where they are JSON v2's defaults, since they are the contract:
// object names match exactly (encoding/json matches them without regard to
// case, so "Content" would overwrite "content"), a name may appear once, an
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
			if e := checkJSONText(body); e != nil {
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

// Sentinel answers of checkJSONText.
var (
	errNotUTF8 = &Error{Status: fiber.StatusBadRequest, Code: "invalid_json",
		Message: "request body is not valid UTF-8 (JSON text must be UTF-8; overlong and surrogate encodings are invalid)"}
	errLoneSurrogate = &Error{Status: fiber.StatusBadRequest, Code: "invalid_json",
		Message: "a JSON string holds an escaped lone surrogate (\\ud800 to \\udfff without its pair), which is not a character"}
)

// checkJSONText refuses JSON text that encoding/json would alter while
// decoding it: bytes that are not UTF-8 (raw invalid bytes, overlong forms,
// encoded surrogates) and \u escapes of lone surrogates, all of which it
// silently turns into U+FFFD. decodeError calls it on a body encoding/json
// reads but JSON v2 refuses, to name the fault; jsontext (the JSON v2
// tokenizer) validates by RFC 7493. Duplicate names are allowed here:
// decodeStrict refuses them itself, with their name.
func checkJSONText(body []byte) error {
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

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
