package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/messaging-server/messaging-server/internal/cache"
	"github.com/messaging-server/messaging-server/internal/message"
	"github.com/messaging-server/messaging-server/internal/messaging"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/tracing"
)

// MessageCreated is the answer to POST /api/v1/messages.
type MessageCreated struct {
	ID          string `json:"id" example:"0192f0c4-6a1e-7cc1-9e07-3b1f2ad1c0de"`
	Content     string `json:"content" example:"Your verification code is 123456"`
	PhoneNumber string `json:"phone_number" example:"+905551111111"`
	// Status is pending for a new message, or suppressed when its number
	// opted out (it will never be sent); a replay shows the stored
	// message's status.
	Status    string    `json:"status" example:"pending" enums:"pending,sending,sent,failed,expired,canceled,suppressed"`
	CreatedAt time.Time `json:"created_at" format:"date-time" example:"2025-01-02T03:04:05.123456Z"`
	Lifecycle
	SMSParts
}

// SentMessage is one entry of the sent list.
type SentMessage struct {
	ID          string `json:"id" example:"0192f0c4-6a1e-7cc1-9e07-3b1f2ad1c0de"`
	Content     string `json:"content" example:"Your verification code is 123456"`
	PhoneNumber string `json:"phone_number" example:"+905551111111"`
	// RemoteMessageID is the provider's id for the delivery; null for
	// messages sent before it was recorded.
	RemoteMessageID *string `json:"remote_message_id" extensions:"x-nullable" example:"67f2f8a8-ea58-4ed0-a6f9-ff217df4d849"`
	// SentAt is null for messages sent before it was recorded; those come
	// last.
	SentAt *time.Time `json:"sent_at" extensions:"x-nullable" format:"date-time" example:"2025-01-02T03:04:05.123456Z"`
	Lifecycle
	SMSParts
}

// SentPage is one page of the sent list, newest first.
type SentPage struct {
	Data []SentMessage `json:"data"`
	// NextCursor fetches the following page; null on the last one.
	NextCursor *string `json:"next_cursor" extensions:"x-nullable" example:"MjAyNS0wMS0wMlQwMzowNDowNS4xMjM0NTZafDAxOTJmMGM0"`
}

// MessageDetail is one message with its delivery state.
type MessageDetail struct {
	ID          string `json:"id" example:"0192f0c4-6a1e-7cc1-9e07-3b1f2ad1c0de"`
	Content     string `json:"content" example:"Your verification code is 123456"`
	PhoneNumber string `json:"phone_number" example:"+905551111111"`
	Status      string `json:"status" example:"sent" enums:"pending,sending,sent,failed,expired,canceled,suppressed"`
	// Attempts is how many times a worker took the message since it was
	// created or last retried; a try can end without a webhook call (an
	// invalid row). The calls are in /attempts.
	Attempts int `json:"attempts" example:"1"`
	// RemoteMessageID is the provider's id; null until sent.
	RemoteMessageID *string `json:"remote_message_id" extensions:"x-nullable" example:"67f2f8a8-ea58-4ed0-a6f9-ff217df4d849"`
	// SentAt is null until sent.
	SentAt *time.Time `json:"sent_at" extensions:"x-nullable" format:"date-time" example:"2025-01-02T03:04:05.123456Z"`
	// LastError is why the latest attempt failed; null when none did.
	LastError *string   `json:"last_error" extensions:"x-nullable" example:"webhook answered 503"`
	CreatedAt time.Time `json:"created_at" format:"date-time" example:"2025-01-02T03:04:05.123456Z"`
	Lifecycle
	SMSParts
}

// MessagePage is one page of the list of every message, newest first.
type MessagePage struct {
	Data []MessageDetail `json:"data"`
	// NextCursor fetches the following page; null on the last one.
	NextCursor *string `json:"next_cursor" extensions:"x-nullable" example:"MjAyNS0wMS0wMlQwMzowNDowNS4xMjM0NTZafDAxOTJmMGM0"`
}

// Where GET /api/v1/messages/{id} took remote_message_id and sent_at from,
// in the X-Sent-Record-Source header of a sent message's answer.
const (
	HeaderSentRecordSource = "X-Sent-Record-Source"
	SourceCache            = "cache"
	SourceDatabase         = "database"
)

// cacheTimeout bounds the Redis read of GET /api/v1/messages/{id}: a slow
// cache must not slow a read PostgreSQL can answer alone.
const cacheTimeout = 500 * time.Millisecond

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
	// Provider is the provider that accepted the message (PROVIDERS;
	// default when it is unset); null until sent.
	Provider *string `json:"provider" extensions:"x-nullable" example:"primary"`
}

// SMSParts is how a message's content travels as SMS, computed from the
// content (message.Split).
type SMSParts struct {
	// Encoding is GSM-7 when every character is in the GSM 03.38 basic
	// set or its extension table, else UCS-2.
	Encoding string `json:"encoding" enums:"GSM-7,UCS-2" example:"GSM-7"`
	// Segments is how many SMS the content takes: one holds 160 GSM-7
	// septets (an extension-table character such as € takes 2) or 70
	// UCS-2 units (a character outside the BMP, such as an emoji, takes
	// 2); a longer content is split into segments of 153 septets or 67
	// units, never inside a character.
	Segments int `json:"segments" example:"1"`
}

func smsParts(content string) SMSParts {
	p := message.Split(content)
	return SMSParts{Encoding: p.Encoding, Segments: p.Count()}
}

func lifecycle(m store.Message) Lifecycle {
	return Lifecycle{
		SendAt: utc(m.SendAt), ExpiresAt: utc(m.ExpiresAt), Priority: m.Priority,
		DeliveryStatus: nullable(m.DeliveryStatus), DeliveredAt: utc(m.DeliveredAt), DeliveryError: nullable(m.DeliveryError),
		Provider: nullable(m.Provider),
	}
}

// createMessage stores a new pending message.
//
//	@Summary		Create a message
//	@Description	Stores a pending message; the workers send it on a coming tick, or at send_at, highest priority first, and never after expires_at (send_at or creation plus validity_period, or DEFAULT_VALIDITY_PERIOD). With an id, repeating the same create is safe: the same id and the same body answer 200 with the stored message and store nothing; the same id with another body answers 409 duplicate_id. Content is 1 to MAX_CONTENT_LENGTH (default 160; the document states the default) characters, without control characters other than tab, CR and LF (C1 controls U+0080 to U+009F included), with at least one visible character: a letter, digit, punctuation mark or symbol (Unicode categories L, N, P and S, except U+2800 braille blank, the Hangul fillers U+115F, U+1160, U+3164 and U+FFA0, and U+1D159); white space, format characters (zero-width, the BOM, bidi controls), combining marks and those blank symbols alone are refused. phone_number is a full international number in any usual form (+1 (201) 555-0123, +44 7400 123456): it must be a possible number for its country by length, in a country ALLOWED_COUNTRIES allows (when set), and it is stored, shown and sent in E.164 (+12015550123); a replay compares that form. The content may take at most MAX_SEGMENTS (default 10) SMS segments; every message answer shows its encoding (GSM-7 or UCS-2) and segments. A message to an opted-out number is stored with status suppressed (201) and never sent. The body must be UTF-8 JSON (Content-Type: application/json, charset utf-8 if any; escaped lone surrogates are refused), at most 64 KiB, with no unknown fields: names match exactly (case included), a name appears once, and each field has its documented JSON type (validity_period and priority are JSON integers: a string, fraction, exponent or boolean is refused with 422). Any other Content-Type, with or without parameters (multipart/form-data included), gets 415. Nothing is stored when any check fails, and what is stored is exactly what was sent, apart from the phone number's E.164 form.
//	@Tags			messages
//	@Accept			json
//	@Produce		json
//	@Security		BearerAuth
//	@Param			message	body		CreateMessageRequest	true	"The message"
//	@Success		201		{object}	MessageCreated			"Stored; Location names the new message"
//	@Success		200		{object}	MessageCreated			"A replay: this id was created with the same body before; nothing new is stored"
//	@Header			201		{string}	Location				"/api/v1/messages/{id}"
//	@Failure		400		{object}	ErrorResponse			"Malformed JSON, text that is not UTF-8 (including an escaped lone surrogate such as \ud800), a repeated key (invalid_json, error.field names it), or an unknown field (unknown_field; names match exactly, so Content is unknown)"
//	@Failure		401		{object}	ErrorResponse			"API_KEY is set and the bearer key is missing or wrong"
//	@Failure		409		{object}	ErrorResponse			"duplicate_id: the id exists with a different body"
//	@Failure		413		{object}	ErrorResponse			"Body larger than 64 KiB"
//	@Failure		415		{object}	ErrorResponse			"Content-Type is not application/json, or names a charset other than utf-8"
//	@Failure		422		{object}	ErrorResponse			"A field is invalid or of the wrong JSON type; error.field names it"
//	@Failure		429		{object}	ErrorResponse			"Rate limit reached"
//	@Failure		500		{object}	ErrorResponse
//	@Failure		431	{object}	ErrorResponse	"Request headers larger than 4 KiB"
//	@Router			/api/v1/messages [post]
func (s *Server) createMessage(c *fiber.Ctx) error {
	req, err := decodeNewMessage(c.Body())
	if err != nil {
		return err
	}
	m, err := s.createOne(c, req)
	if err != nil {
		return err
	}
	c.Location("/api/v1/messages/" + m.ID)
	status := fiber.StatusCreated
	if !m.New {
		status = fiber.StatusOK // a replay: the same id and body
	}
	return c.Status(status).JSON(created(m.Message))
}

// newMessage turns a decoded create into what the store inserts; see
// buildNewMessage.
func (s *Server) newMessage(r CreateMessageRequest, now time.Time) (store.NewMessage, bool, error) {
	return buildNewMessage(r, now, s.limits)
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
	// The message keeps the request's trace; its id tags the request's
	// span and, through baggage, the statements that store it.
	ctx := c.UserContext()
	n.Traceparent = s.traces.Traceparent(ctx)
	trace.SpanFromContext(ctx).SetAttributes(attribute.String(tracing.MessageID, n.ID))
	out, err := s.deps.Store.Create(tracing.WithMessageID(ctx, n.ID), []store.NewMessage{n})
	if err != nil {
		return store.Created{}, err
	}
	return out[0], nil
}

func created(m store.Message) MessageCreated {
	return MessageCreated{
		ID: m.ID, Content: m.Content, PhoneNumber: m.PhoneNumber, Status: m.Status, CreatedAt: m.CreatedAt.UTC(),
		Lifecycle: lifecycle(m), SMSParts: smsParts(m.Content),
	}
}

// getMessage reads one message.
//
//	@Summary		Get a message
//	@Description	PostgreSQL supplies the message; for a sent message, remote_message_id and sent_at come from the Redis record the worker cached at delivery when it is still there (header X-Sent-Record-Source: cache), else from PostgreSQL (database).
//	@Tags			messages
//	@Produce		json
//	@Security		BearerAuth
//	@Param			id	path		string	true	"Message id (1 to 36 characters)"	minlength(1)	maxlength(36)
//	@Success		200	{object}	MessageDetail
//	@Header			200	{string}	X-Sent-Record-Source	"cache or database; only for sent messages"
//	@Failure		404	{object}	ErrorResponse			"No such message"
//	@Failure		401	{object}	ErrorResponse	"API_KEY is set and neither the bearer API_KEY or API_READ_KEY nor a console session came with the request"
//	@Failure		429	{object}	ErrorResponse			"Rate limit reached"
//	@Failure		500	{object}	ErrorResponse
//	@Failure		431	{object}	ErrorResponse	"Request headers larger than 4 KiB"
//	@Router			/api/v1/messages/{id} [get]
func (s *Server) getMessage(c *fiber.Ctx) error {
	id, err := messageID(c)
	if err != nil {
		return err
	}
	m, err := s.deps.Store.Get(c.UserContext(), id)
	if err != nil {
		return err
	}
	d := detail(m)
	if m.Status == messaging.StatusSent {
		source := SourceDatabase
		ctx, cancel := context.WithTimeout(c.UserContext(), cacheTimeout)
		rec, err := s.cache.GetSent(ctx, id)
		cancel()
		switch {
		case err == nil:
			source = SourceCache
			d.RemoteMessageID = nullable(rec.MessageID)
			at := rec.SentAt.UTC()
			d.SentAt = &at
		case !errors.Is(err, cache.ErrMiss):
			s.log.Warn("read sent record from cache; answering from PostgreSQL", "id", id, "err", err)
		}
		c.Set(HeaderSentRecordSource, source)
	}
	return c.JSON(d)
}

// listMessages pages through every message, newest first.
//
//	@Summary		List messages
//	@Description	Every message, newest first (created_at, then id, descending), by keyset pagination: pass next_cursor back as cursor for the next page; it is null on the last page. status and priority filter the list; keep them the same while you page.
//	@Tags			messages
//	@Produce		json
//	@Security		BearerAuth
//	@Param			status		query		string	false	"Only messages in this status"	Enums(pending, sending, sent, failed, expired, canceled, suppressed)
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
	limit, err := parseLimit(c.Query("limit"))
	if err != nil {
		return err
	}
	var f store.ListFilter
	if st := c.Query("status"); st != "" {
		if err := parseStatusFilter(st); err != nil {
			return err
		}
		f.Status = st
	}
	if p := c.Query("priority"); p != "" {
		num := json.Number(p)
		n, _, err := parseWhole(&num, "priority", 0, MaxPriority)
		if err != nil {
			return &Error{Status: fiber.StatusBadRequest, Code: "invalid_parameter", Field: "priority", Message: "priority must be a whole number from 0 to 9"}
		}
		f.Priority = &n
	}
	var after *store.ListCursor
	cur, err := decodeTimedCursor(c.Query("cursor"))
	if err != nil {
		return err
	}
	if cur != nil {
		after = &store.ListCursor{CreatedAt: *cur.At, ID: cur.ID}
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
		next := encodeCursor(pageCursor{At: &last.CreatedAt, ID: last.ID})
		page.NextCursor = &next
	}
	return c.JSON(page)
}

// parseStatusFilter checks the status query parameter.
func parseStatusFilter(s string) error {
	for _, st := range messaging.Statuses {
		if s == st {
			return nil
		}
	}
	return &Error{Status: fiber.StatusBadRequest, Code: "invalid_parameter", Field: "status",
		Message: "status must be one of pending, sending, sent, failed, expired, canceled, suppressed"}
}

// listSent pages through sent messages, newest first.
//
//	@Summary		List sent messages
//	@Description	Newest first (sent_at, then id, descending), by keyset pagination: pass next_cursor back as cursor for the next page; it is null on the last page. Messages sent while you page do not shift later pages, so a walk neither repeats nor skips a message. Messages sent before sent_at was recorded come last with sent_at null.
//	@Tags			messages
//	@Produce		json
//	@Security		BearerAuth
//	@Param			limit	query		int		false	"Page size; values above 100 are capped"	minimum(1)	default(20)
//	@Param			cursor	query		string	false	"next_cursor of the previous page"
//	@Success		200		{object}	SentPage
//	@Failure		400		{object}	ErrorResponse	"Bad limit or cursor"
//	@Failure		401	{object}	ErrorResponse	"API_KEY is set and neither the bearer API_KEY or API_READ_KEY nor a console session came with the request"
//	@Failure		429		{object}	ErrorResponse	"Rate limit reached"
//	@Failure		500		{object}	ErrorResponse
//	@Failure		431	{object}	ErrorResponse	"Request headers larger than 4 KiB"
//	@Router			/api/v1/messages/sent [get]
func (s *Server) listSent(c *fiber.Ctx) error {
	limit, err := parseLimit(c.Query("limit"))
	if err != nil {
		return err
	}
	var after *store.SentCursor
	if raw := c.Query("cursor"); raw != "" {
		cur, err := decodeCursor(raw)
		if err != nil {
			return err
		}
		after = &store.SentCursor{SentAt: cur.At, ID: cur.ID}
	}
	rows, more, err := s.deps.Store.ListSent(c.UserContext(), after, limit)
	if err != nil {
		return err
	}
	page := SentPage{Data: make([]SentMessage, len(rows))}
	for i, r := range rows {
		page.Data[i] = SentMessage{
			ID: r.ID, Content: r.Content, PhoneNumber: r.PhoneNumber,
			RemoteMessageID: nullable(r.RemoteMessageID), SentAt: utc(r.SentAt), Lifecycle: lifecycle(r),
			SMSParts: smsParts(r.Content),
		}
	}
	if more {
		last := rows[len(rows)-1]
		next := encodeCursor(pageCursor{At: last.SentAt, ID: last.ID})
		page.NextCursor = &next
	}
	return c.JSON(page)
}

// Page sizes of the sent list.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// parseLimit reads the limit query parameter: empty means DefaultPageSize,
// larger than MaxPageSize is capped, anything but a positive whole number
// is a 400.
func parseLimit(s string) (int, error) {
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

// The cursor is opaque to clients: base64url (no padding) of
// "<sent_at RFC 3339 with nanoseconds, UTC>|<id>", with an empty time for
// rows sent before sent_at was recorded. The id goes last because it may
// hold any character, '|' included.
var cursorEncoding = base64.RawURLEncoding

// pageCursor is where a keyset page ends: the time the list is ordered by
// (created_at for the list of all messages, sent_at for the sent list; nil
// for a sent row without sent_at) and the row's id.
type pageCursor struct {
	At *time.Time
	ID string
}

// encodeCursor turns the last row of a page into the next page's cursor.
func encodeCursor(c pageCursor) string {
	t := ""
	if c.At != nil {
		t = c.At.UTC().Format(time.RFC3339Nano)
	}
	return cursorEncoding.EncodeToString([]byte(t + "|" + c.ID))
}

var errBadCursor = &Error{Status: fiber.StatusBadRequest, Code: "invalid_cursor", Field: "cursor",
	Message: "cursor is not one this API issued; start again without it"}

// decodeTimedCursor parses the cursor of a list ordered by a time every
// row has (created_at): nil when raw is empty, a 400 when it is not one
// this API issued or carries no time.
func decodeTimedCursor(raw string) (*pageCursor, error) {
	if raw == "" {
		return nil, nil
	}
	cur, err := decodeCursor(raw)
	if err != nil {
		return nil, err
	}
	if cur.At == nil {
		return nil, errBadCursor
	}
	return &cur, nil
}

// decodeCursor parses a cursor from encodeCursor; anything else is a 400,
// never a database error.
func decodeCursor(s string) (pageCursor, error) {
	b, err := cursorEncoding.Strict().DecodeString(s)
	if err != nil || !utf8.Valid(b) {
		return pageCursor{}, errBadCursor
	}
	t, id, ok := strings.Cut(string(b), "|")
	if !ok || id == "" || utf8.RuneCountInString(id) > 36 || strings.ContainsRune(id, 0) {
		return pageCursor{}, errBadCursor
	}
	c := pageCursor{ID: id}
	if t != "" {
		at, err := time.Parse(time.RFC3339Nano, t)
		if err != nil || at.Year() < 1 || at.Year() > 9999 {
			return pageCursor{}, errBadCursor
		}
		at = at.UTC()
		c.At = &at
	}
	return c, nil
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

// retryMessage puts a failed message back in line.
//
//	@Summary		Retry a failed message
//	@Description	Puts a failed message back to pending, due now, with attempts reset to 0; last_error stays until the next attempt. Only failed messages qualify.
//	@Tags			messages
//	@Produce		json
//	@Security		BearerAuth
//	@Param			id	path		string	true	"Message id (1 to 36 characters)"	minlength(1)	maxlength(36)
//	@Success		200	{object}	MessageDetail
//	@Failure		401	{object}	ErrorResponse	"API_KEY is set and the bearer key is missing or wrong"
//	@Failure		404	{object}	ErrorResponse	"No such message"
//	@Failure		409	{object}	ErrorResponse	"The message is not failed"
//	@Failure		429	{object}	ErrorResponse	"Rate limit reached"
//	@Failure		500	{object}	ErrorResponse
//	@Failure		431	{object}	ErrorResponse	"Request headers larger than 4 KiB"
//	@Router			/api/v1/messages/{id}/retry [post]
func (s *Server) retryMessage(c *fiber.Ctx) error {
	id, err := messageID(c)
	if err != nil {
		return err
	}
	m, err := s.deps.Store.RetryFailed(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(detail(m))
}

// messageID reads the :id path segment. An id no row can have (the column
// is VARCHAR(36)) is a 404 without a query; invalid UTF-8 or NUL, which
// PostgreSQL would reject with an error, are too.
func messageID(c *fiber.Ctx) (string, error) {
	id, err := url.PathUnescape(c.Params("id"))
	if err != nil || id == "" || !utf8.ValidString(id) || strings.ContainsRune(id, 0) || utf8.RuneCountInString(id) > 36 {
		return "", messaging.ErrNotFound
	}
	return id, nil
}

func detail(m store.Message) MessageDetail {
	return MessageDetail{
		ID: m.ID, Content: m.Content, PhoneNumber: m.PhoneNumber, Status: m.Status, Attempts: m.Attempts,
		RemoteMessageID: nullable(m.RemoteMessageID), SentAt: utc(m.SentAt),
		LastError: nullable(m.LastError), CreatedAt: m.CreatedAt.UTC(), Lifecycle: lifecycle(m),
		SMSParts: smsParts(m.Content),
	}
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
