package api

// The message lifecycle (issue 10): the optional fields of a create
// (id, send_at, validity_period, priority), idempotent replays, the batch
// create, the list of every message, cancel and the attempts of a message.

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/messaging-server/messaging-server/internal/store"
)

// Limits of the lifecycle fields.
const (
	MaxIDLength      = 36
	MaxScheduleAhead = 366 * 24 * time.Hour
	MaxValidity      = 2_592_000 // seconds: 30 days
	MaxPriority      = 9
	MaxBatch         = 1000
)

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
}

// Lifecycle is the lifecycle state every message answer shows.
type Lifecycle struct {
	// SendAt is the earliest send time; null: at once.
	SendAt *time.Time `json:"send_at" extensions:"x-nullable" format:"date-time" example:"2026-12-01T09:00:00Z"`
	// ExpiresAt is the latest time a call may start; null: never.
	ExpiresAt *time.Time `json:"expires_at" extensions:"x-nullable" format:"date-time" example:"2026-12-01T11:00:00Z"`
	Priority  int        `json:"priority" example:"0" minimum:"0" maximum:"9"`
	// DeliveryStatus is the latest delivery receipt; null without one.
	DeliveryStatus *string `json:"delivery_status" extensions:"x-nullable" enums:"delivered,undelivered" example:"delivered"`
	// DeliveredAt is the time of the latest receipt.
	DeliveredAt *time.Time `json:"delivered_at" extensions:"x-nullable" format:"date-time" example:"2025-01-02T03:04:07Z"`
	// DeliveryError is the provider's error code of an undelivered
	// receipt.
	DeliveryError *string `json:"delivery_error" extensions:"x-nullable" example:"30003"`
}

func lifecycle(m store.Message) Lifecycle {
	return Lifecycle{
		SendAt: utc(m.SendAt), ExpiresAt: utc(m.ExpiresAt), Priority: m.Priority,
		DeliveryStatus: nullable(m.DeliveryStatus), DeliveredAt: utc(m.DeliveredAt), DeliveryError: nullable(m.DeliveryError),
	}
}

func invalid(field, msg string) *ValidationError {
	return &ValidationError{Field: field, Message: msg}
}

// IDPattern is the form of an id a create may choose, as the OpenAPI
// document states it: a letter or digit, then up to 35 more of letters,
// digits and _ . : ~ -, so it fits the column, any header and a URL path
// segment unescaped, and is never "." or "..", which clients that tidy URLs
// cannot reach. ParseID also refuses RouteWords.
const IDPattern = `^[A-Za-z0-9][A-Za-z0-9_.:~-]{0,35}$`

// RouteWords are the fixed path segments directly under
// /api/v1/messages/. A message with such an id could not be read at
// /api/v1/messages/{id} (GET /api/v1/messages/sent is the sent list), so a
// create refuses them, in any case, since routes match without regard to
// case. A test checks the list against the router.
var RouteWords = []string{"sent", "batch"}

var idForm = regexp.MustCompile(IDPattern)

// ParseID checks a client-chosen message id: IDPattern, and not one of
// RouteWords in any case. Ids of rows other systems inserted are not
// checked here: reads and delivery take any id the column holds.
func ParseID(id string) error {
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

// errSendAtPast is returned by ParseSendAt, wrapped in its validation
// error's place, when send_at is well formed but already past: a replay of
// an earlier create may still match.
var errSendAtPast = invalid("send_at", "send_at must not be in the past")

// ParseSendAt reads send_at: RFC 3339, not before now, at most 366 days
// after now. It is kept to the microsecond, PostgreSQL's precision.
func ParseSendAt(s string, now time.Time) (time.Time, error) {
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

// ParseWhole reads an optional integer field within [lo, hi]: digits only,
// no fraction or exponent. Absent (nil) gives ok false.
func ParseWhole(num *json.Number, field string, lo, hi int) (n int, ok bool, err error) {
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

// CheckWhole checks an optional integer field against [lo, hi]. Absent
// (nil) gives ok false.
func CheckWhole(v *int, field string, lo, hi int) (n int, ok bool, err error) {
	if v == nil {
		return 0, false, nil
	}
	if *v < lo || *v > hi {
		return 0, false, invalid(field, fmt.Sprintf("%s must be a whole number from %d to %d", field, lo, hi))
	}
	return *v, true, nil
}

// ParseValidity reads validity_period in seconds (1 to 2592000).
func ParseValidity(v *int) (time.Duration, bool, error) {
	n, ok, err := CheckWhole(v, "validity_period", 1, MaxValidity)
	return time.Duration(n) * time.Second, ok, err
}

// CreateLimits are the settings a create is checked and completed with:
// MAX_CONTENT_LENGTH and DEFAULT_VALIDITY_PERIOD.
type CreateLimits struct {
	MaxContent      int
	DefaultValidity time.Duration
}

// newMessage turns a decoded create into what the store inserts; see
// BuildNewMessage.
func (s *Server) newMessage(r CreateMessageRequest, now time.Time) (store.NewMessage, bool, error) {
	return BuildNewMessage(r, now, CreateLimits{MaxContent: s.cfg.MaxContentLength, DefaultValidity: s.cfg.DefaultValidity()})
}

// BuildNewMessage turns a decoded create into what the store inserts, with
// content, phone number and id exactly as sent, or the *ValidationError of
// its first bad field. past reports that the only fault was a send_at
// already past (a replay may still match). Without an id it picks a
// version 7 UUID.
func BuildNewMessage(r CreateMessageRequest, now time.Time, lim CreateLimits) (n store.NewMessage, past bool, err error) {
	if err := ValidateNewMessage(r, lim.MaxContent); err != nil {
		return n, false, err
	}
	n = store.NewMessage{Content: r.Content, PhoneNumber: r.PhoneNumber, Validity: lim.DefaultValidity}
	if r.ID != nil {
		if err := ParseID(*r.ID); err != nil {
			return n, false, err
		}
		n.ID = *r.ID
	}
	if r.SendAt != nil {
		t, err := ParseSendAt(*r.SendAt, now)
		if err != nil && !errors.Is(err, errSendAtPast) {
			return n, false, err
		}
		n.SendAt, past = &t, err != nil
	}
	v, ok, err := ParseValidity(r.ValidityPeriod)
	if err != nil {
		return n, false, err
	}
	if ok {
		n.Validity = v
	}
	p, _, err := CheckWhole(r.Priority, "priority", 0, MaxPriority)
	if err != nil {
		return n, false, err
	}
	n.Priority = p
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

// replayOf answers whether a create whose send_at is already past is a
// replay of an earlier create with the same id and body: then it is not
// an error. Only a client-chosen id can be replayed.
func (s *Server) replayOf(c *fiber.Ctx, r CreateMessageRequest, n store.NewMessage) bool {
	if r.ID == nil {
		return false
	}
	m, err := s.deps.Store.Get(c.UserContext(), n.ID)
	return err == nil && store.SameMessage(m, n)
}

// createOne validates and stores one create; see createMessage.
func (s *Server) createOne(c *fiber.Ctx, r CreateMessageRequest) (store.Created, error) {
	n, past, err := s.newMessage(r, time.Now())
	if err != nil && (!past || !s.replayOf(c, r, n)) {
		return store.Created{}, err
	}
	out, err := s.deps.Store.Create(c.UserContext(), []store.NewMessage{n})
	if err != nil {
		return store.Created{}, err
	}
	return out[0], nil
}

func created(m store.Message) MessageCreated {
	return MessageCreated{
		ID: m.ID, Content: m.Content, PhoneNumber: m.PhoneNumber, Status: m.Status, CreatedAt: m.CreatedAt.UTC(),
		Lifecycle: lifecycle(m),
	}
}

// BatchRequest is the body of POST /api/v1/messages/batch.
type BatchRequest struct {
	// Messages are 1 to 1000 creates, each shaped like POST /api/v1/messages.
	Messages []CreateMessageRequest `json:"messages" minItems:"1" maxItems:"1000"`
}

// BatchCreated is the answer to a batch create, in request order.
type BatchCreated struct {
	Data []MessageCreated `json:"data"`
}

// ItemError says what is wrong with one item of a batch.
type ItemError struct {
	Index   int    `json:"index" example:"1"`
	Field   string `json:"field,omitempty" example:"phone_number"`
	Message string `json:"message" example:"phone_number must be in E.164 form: + then 8 to 15 digits, the first not 0"`
}

// BatchError is a refused batch: one entry per bad item. Nothing was
// stored.
type BatchError struct {
	Items []ItemError
}

func (e *BatchError) Error() string { return fmt.Sprintf("%d invalid items", len(e.Items)) }

// batchFields lists the names of a batch body, for the unknown-field
// answer.
const batchFields = "messages"

// DecodeBatch parses a batch body strictly (decodeStrict), so a malformed
// body, a duplicate name anywhere in it, or an unknown name outside the
// items refuses the whole batch with 400. Each item is then decoded like a
// single create, and a malformed item or a field of the wrong type is
// reported as that item's entry in bad (its slot in the requests stays
// empty).
func DecodeBatch(body []byte) (reqs []CreateMessageRequest, bad []ItemError, err error) {
	var raw struct {
		Messages []jsontext.Value `json:"messages"`
	}
	if err := decodeStrict(body, &raw, batchFields); err != nil {
		return nil, nil, err
	}
	if len(raw.Messages) == 0 || len(raw.Messages) > MaxBatch {
		return nil, nil, invalid("messages", fmt.Sprintf("messages must hold 1 to %d items", MaxBatch))
	}
	reqs = make([]CreateMessageRequest, len(raw.Messages))
	for i, item := range raw.Messages {
		if item.Kind() != '{' {
			bad = append(bad, ItemError{Index: i, Message: "each item of messages must be a JSON object"})
			continue
		}
		r, err := DecodeNewMessage(item)
		var (
			ae *Error
			ve *ValidationError
		)
		switch {
		case err == nil:
			reqs[i] = r
		case errors.As(err, &ae):
			bad = append(bad, ItemError{Index: i, Field: ae.Field, Message: ae.Message})
		case errors.As(err, &ve):
			bad = append(bad, ItemError{Index: i, Field: ve.Field, Message: ve.Message})
		default:
			return nil, nil, err
		}
	}
	return reqs, bad, nil
}

// createBatch stores up to 1000 messages, all or nothing.
//
//	@Summary		Create messages in one request
//	@Description	Takes 1 to 1000 messages, each shaped like POST /api/v1/messages, in a body of at most 2 MiB, and stores all of them or none. Items are decoded as strictly as a single create; a field of the wrong JSON type or an unknown field in an item is that item's entry in error.items. Answers 201 with the messages in request order (an item whose id exists with the same body is a replay and comes back as stored). When any item is invalid the answer is 422 with error.items holding one entry (index, field, message) per bad item, and nothing is stored. An item whose id exists with a different body makes the whole batch 409 duplicate_id.
//	@Tags			messages
//	@Accept			json
//	@Produce		json
//	@Security		BearerAuth
//	@Param			batch	body		BatchRequest	true	"The messages"
//	@Success		201		{object}	BatchCreated
//	@Failure		400		{object}	ErrorResponse	"Malformed JSON, a repeated key anywhere in the body (error.field names it, e.g. messages[1].content), or an unknown field outside the items"
//	@Failure		401		{object}	ErrorResponse	"API_KEY is set and the bearer key is missing or wrong"
//	@Failure		409		{object}	ErrorResponse	"duplicate_id: an item reuses an id with a different body"
//	@Failure		413		{object}	ErrorResponse	"Body larger than 2 MiB"
//	@Failure		415		{object}	ErrorResponse	"Content-Type is not application/json"
//	@Failure		422		{object}	ErrorResponse	"Invalid items; error.items lists them"
//	@Failure		429		{object}	ErrorResponse	"Rate limit reached"
//	@Failure		500		{object}	ErrorResponse
//	@Failure		431	{object}	ErrorResponse	"Request headers larger than 4 KiB"
//	@Router			/api/v1/messages/batch [post]
func (s *Server) createBatch(c *fiber.Ctx) error {
	reqs, bad, err := DecodeBatch(c.Body())
	if err != nil {
		return err
	}
	now := time.Now()
	ns := make([]store.NewMessage, len(reqs))
	seen := make(map[string]int, len(reqs))
	malformed := make(map[int]bool, len(bad))
	for _, b := range bad {
		malformed[b.Index] = true
	}
	for i, r := range reqs {
		if malformed[i] {
			continue
		}
		n, past, err := s.newMessage(r, now)
		if err != nil && (!past || !s.replayOf(c, r, n)) {
			var ve *ValidationError
			if !errors.As(err, &ve) {
				return err
			}
			bad = append(bad, ItemError{Index: i, Field: ve.Field, Message: ve.Message})
			continue
		}
		if j, dup := seen[n.ID]; dup {
			bad = append(bad, ItemError{Index: i, Field: "id", Message: fmt.Sprintf("id repeats item %d of this batch", j)})
			continue
		}
		seen[n.ID] = i
		ns[i] = n
	}
	if bad != nil {
		slices.SortStableFunc(bad, func(a, b ItemError) int { return a.Index - b.Index })
		return &BatchError{Items: bad}
	}
	out, err := s.deps.Store.Create(c.UserContext(), ns)
	if err != nil {
		return err
	}
	resp := BatchCreated{Data: make([]MessageCreated, len(out))}
	for i, m := range out {
		resp.Data[i] = created(m.Message)
	}
	return c.Status(fiber.StatusCreated).JSON(resp)
}

// MessagePage is one page of the list of every message, newest first.
type MessagePage struct {
	Data []MessageDetail `json:"data"`
	// NextCursor fetches the following page; null on the last one.
	NextCursor *string `json:"next_cursor" extensions:"x-nullable" example:"MjAyNS0wMS0wMlQwMzowNDowNS4xMjM0NTZafDAxOTJmMGM0"`
}

// ParseStatusFilter checks the status query parameter.
func ParseStatusFilter(s string) error {
	for _, st := range store.Statuses {
		if s == st {
			return nil
		}
	}
	return &Error{Status: fiber.StatusBadRequest, Code: "invalid_parameter", Field: "status",
		Message: "status must be one of pending, sending, sent, failed, expired, canceled"}
}

// listMessages pages through every message, newest first.
//
//	@Summary		List messages
//	@Description	Every message, newest first (created_at, then id, descending), by keyset pagination: pass next_cursor back as cursor for the next page; it is null on the last page. status and priority filter the list; keep them the same while you page.
//	@Tags			messages
//	@Produce		json
//	@Security		BearerAuth
//	@Param			status		query		string	false	"Only messages in this status"	Enums(pending, sending, sent, failed, expired, canceled)
//	@Param			priority	query		int		false	"Only messages of this priority"	minimum(0)	maximum(9)
//	@Param			limit		query		int		false	"Page size; values above 100 are capped"	minimum(1)	default(20)
//	@Param			cursor		query		string	false	"next_cursor of the previous page"
//	@Success		200			{object}	MessagePage
//	@Failure		400			{object}	ErrorResponse	"Bad status, priority, limit or cursor"
//	@Failure		401	{object}	ErrorResponse	"API_KEY is set and neither the bearer API_KEY or API_READ_KEY nor a console session came with the request"
//	@Failure		429			{object}	ErrorResponse	"Rate limit reached"
//	@Failure		500			{object}	ErrorResponse
//	@Failure		431	{object}	ErrorResponse	"Request headers larger than 4 KiB"
//	@Router			/api/v1/messages [get]
func (s *Server) listMessages(c *fiber.Ctx) error {
	limit, err := ParseLimit(c.Query("limit"))
	if err != nil {
		return err
	}
	var f store.ListFilter
	if st := c.Query("status"); st != "" {
		if err := ParseStatusFilter(st); err != nil {
			return err
		}
		f.Status = st
	}
	if p := c.Query("priority"); p != "" {
		num := json.Number(p)
		n, _, err := ParseWhole(&num, "priority", 0, MaxPriority)
		if err != nil {
			return &Error{Status: fiber.StatusBadRequest, Code: "invalid_parameter", Field: "priority", Message: "priority must be a whole number from 0 to 9"}
		}
		f.Priority = &n
	}
	var after *store.ListCursor
	if raw := c.Query("cursor"); raw != "" {
		cur, err := DecodeCursor(raw)
		if err != nil {
			return err
		}
		if cur.SentAt == nil {
			return errBadCursor
		}
		after = &store.ListCursor{CreatedAt: *cur.SentAt, ID: cur.ID}
	}
	rows, more, err := s.deps.Store.ListMessages(c.UserContext(), f, after, limit)
	if err != nil {
		return err
	}
	page := MessagePage{Data: make([]MessageDetail, len(rows))}
	for i, m := range rows {
		page.Data[i] = detail(m)
	}
	if more {
		last := rows[len(rows)-1]
		next := EncodeCursor(store.SentCursor{SentAt: &last.CreatedAt, ID: last.ID})
		page.NextCursor = &next
	}
	return c.JSON(page)
}

// cancelMessage cancels a pending message.
//
//	@Summary		Cancel a message
//	@Description	Cancels a pending message (scheduled, due, or waiting for a retry): it will never be sent, even if a worker is claiming it at the same moment (then one of the two wins: the cancel, or the claim and the cancel answers 409). Canceling a canceled message answers 200 again.
//	@Tags			messages
//	@Produce		json
//	@Security		BearerAuth
//	@Param			id	path		string	true	"Message id"
//	@Success		200	{object}	MessageDetail
//	@Failure		401	{object}	ErrorResponse	"API_KEY is set and the bearer key is missing or wrong"
//	@Failure		404	{object}	ErrorResponse	"No such message"
//	@Failure		409	{object}	ErrorResponse	"not_cancelable: the message is sending, sent, failed or expired"
//	@Failure		429	{object}	ErrorResponse	"Rate limit reached"
//	@Failure		500	{object}	ErrorResponse
//	@Failure		431	{object}	ErrorResponse	"Request headers larger than 4 KiB"
//	@Router			/api/v1/messages/{id}/cancel [post]
func (s *Server) cancelMessage(c *fiber.Ctx) error {
	id, err := messageID(c)
	if err != nil {
		return err
	}
	m, err := s.deps.Store.Cancel(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(detail(m))
}

// AttemptView is one webhook call made for a message.
type AttemptView struct {
	Attempt    int       `json:"attempt" example:"1"`
	StartedAt  time.Time `json:"started_at" format:"date-time" example:"2025-01-02T03:04:05.123456Z"`
	DurationMS int       `json:"duration_ms" example:"42"`
	// StatusCode is the webhook's HTTP status; null for a timeout or a
	// connection error.
	StatusCode *int   `json:"status_code" extensions:"x-nullable" example:"503"`
	Outcome    string `json:"outcome" enums:"sent,retry,failed,gone" example:"retry"`
	// Error is why the call failed; null when it succeeded.
	Error *string `json:"error" extensions:"x-nullable" example:"webhook answered 503: busy"`
}

// AttemptList is the answer of GET /api/v1/messages/{id}/attempts.
type AttemptList struct {
	Data []AttemptView `json:"data"`
}

// listAttempts lists the webhook calls made for a message.
//
//	@Summary		List a message's delivery attempts
//	@Description	One entry per webhook call, oldest first, written in the same statement as the call's outcome. Numbering continues across a manual retry. A message that failed without a call (an invalid row) or that expired has none.
//	@Tags			messages
//	@Produce		json
//	@Security		BearerAuth
//	@Param			id	path		string	true	"Message id"
//	@Success		200	{object}	AttemptList
//	@Failure		404	{object}	ErrorResponse	"No such message"
//	@Failure		401	{object}	ErrorResponse	"API_KEY is set and neither the bearer API_KEY or API_READ_KEY nor a console session came with the request"
//	@Failure		429	{object}	ErrorResponse	"Rate limit reached"
//	@Failure		500	{object}	ErrorResponse
//	@Failure		431	{object}	ErrorResponse	"Request headers larger than 4 KiB"
//	@Router			/api/v1/messages/{id}/attempts [get]
func (s *Server) listAttempts(c *fiber.Ctx) error {
	id, err := messageID(c)
	if err != nil {
		return err
	}
	as, err := s.deps.Store.Attempts(c.UserContext(), id)
	if err != nil {
		return err
	}
	out := AttemptList{Data: make([]AttemptView, len(as))}
	for i, a := range as {
		out.Data[i] = AttemptView{Attempt: a.Attempt, StartedAt: a.StartedAt.UTC(), DurationMS: a.DurationMS,
			StatusCode: a.StatusCode, Outcome: a.Outcome, Error: nullable(a.Error)}
	}
	return c.JSON(out)
}
