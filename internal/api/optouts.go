package api

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/messaging-server/messaging-server/internal/message"
	"github.com/messaging-server/messaging-server/internal/messaging"
	"github.com/messaging-server/messaging-server/internal/store"
)

// InboundRequest is the body of POST /api/v1/inbound: a message a
// recipient sent back, as the provider reports it. It is decoded strictly
// (decodeStrict).
type InboundRequest struct {
	// From is the sender, a full international number in any usual form.
	From string `json:"from" example:"+1 (201) 555-0123" minLength:"1" maxLength:"64"`
	// Text is what the sender wrote.
	Text *string `json:"text" example:"STOP" maxLength:"1600"`
	// ReceivedAt is when the provider received it (RFC 3339); an opt-out
	// it makes is dated so. Without it: now.
	ReceivedAt *string `json:"received_at,omitempty" format:"date-time" example:"2026-12-01T09:00:00Z"`
}

// inboundFields lists the names of an inbound body, for the unknown-field
// answer.
const inboundFields = "from, text and received_at"

// MaxInboundText is the longest inbound text read, in bytes: ten segments
// of the longest encoding.
const MaxInboundText = 1600

// InboundResult is the answer to POST /api/v1/inbound.
type InboundResult struct {
	Action      string `json:"action" enums:"opted_out,opted_in,none" example:"opted_out"`
	PhoneNumber string `json:"phone_number" example:"+12015550123"`
}

// OptOutEntry is one opted-out number.
type OptOutEntry struct {
	PhoneNumber string    `json:"phone_number" example:"+12015550123"`
	CreatedAt   time.Time `json:"created_at" format:"date-time" example:"2026-12-01T09:00:00Z"`
	// Source is inbound (the recipient sent a STOP keyword) or api (added
	// by hand).
	Source string `json:"source" enums:"inbound,api" example:"inbound"`
}

// OptOutPage is one page of the opt-outs, newest first.
type OptOutPage struct {
	Data []OptOutEntry `json:"data"`
	// NextCursor fetches the following page; null on the last one.
	NextCursor *string `json:"next_cursor" extensions:"x-nullable" example:"MjAyNi0xMi0wMVQwOTowMDowMFp8KzEyMDE1NTUwMTIz"`
}

// maxReceivedAhead is how far in the future received_at may be: clocks
// differ, but an opt-out dated later than that is a mistake.
const maxReceivedAhead = 5 * time.Minute

// decodeInbound parses and checks an inbound body: from must be a phone
// number (422 field from), text present, received_at RFC 3339 and not more
// than 5 minutes ahead of now. It returns the sender's E.164 form.
func decodeInbound(body []byte, now time.Time) (from, text string, at *time.Time, err error) {
	var r InboundRequest
	if err := decodeStrict(body, &r, inboundFields); err != nil {
		return "", "", nil, err
	}
	from, err = message.NormalizePhone("from", r.From)
	if err != nil {
		return "", "", nil, err
	}
	if r.Text == nil {
		return "", "", nil, invalid("text", "text is required")
	}
	if len(*r.Text) > MaxInboundText {
		return "", "", nil, invalid("text", fmt.Sprintf("text must be at most %d bytes", MaxInboundText))
	}
	if r.ReceivedAt != nil {
		t, err := time.Parse(time.RFC3339Nano, *r.ReceivedAt)
		if err != nil || t.Year() < 1 || t.Year() > 9999 {
			return "", "", nil, invalid("received_at", "received_at must be an RFC 3339 time, e.g. 2026-12-01T09:00:00Z")
		}
		if t.After(now.Add(maxReceivedAhead)) {
			return "", "", nil, invalid("received_at", "received_at must not be more than 5 minutes in the future")
		}
		t = t.UTC().Truncate(time.Microsecond)
		at = &t
	}
	return from, *r.Text, at, nil
}

// inbound reads a message a recipient sent back.
//
//	@Summary		Receive an inbound message
//	@Description	The endpoint a provider calls with a message a recipient sent back. The text, trimmed and compared without regard to case, opts the sender out when it is STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE or OPTOUT, and back in when it is START, UNSTOP or YES; any other text (HELP included) changes nothing. From then on a message to an opted-out number ends suppressed without a call: at its create, or at its claim for one created earlier. Opting out again keeps the first opt-out; opting in a number that is not opted out changes nothing. The body is decoded as strictly as a create.
//	@Tags			opt-outs
//	@Accept			json
//	@Produce		json
//	@Security		BearerAuth
//	@Param			message	body		InboundRequest	true	"The inbound message"
//	@Success		200		{object}	InboundResult
//	@Failure		400		{object}	ErrorResponse	"Malformed JSON, a repeated key or an unknown field"
//	@Failure		401		{object}	ErrorResponse	"API_KEY is set and the bearer key is missing or wrong"
//	@Failure		413		{object}	ErrorResponse	"Body larger than 64 KiB"
//	@Failure		415		{object}	ErrorResponse	"Content-Type is not application/json"
//	@Failure		422		{object}	ErrorResponse	"from is not a phone number, text is missing, or received_at is bad; error.field names it"
//	@Failure		429		{object}	ErrorResponse	"Rate limit reached"
//	@Failure		500		{object}	ErrorResponse
//	@Failure		431	{object}	ErrorResponse	"Request headers larger than 4 KiB"
//	@Router			/api/v1/inbound [post]
func (s *Server) inbound(c *fiber.Ctx) error {
	from, text, at, err := decodeInbound(c.Body(), time.Now())
	if err != nil {
		return err
	}
	action := message.Keyword(text)
	switch action {
	case message.ActionOptOut:
		if _, _, err := s.deps.Store.AddOptOut(c.UserContext(), from, store.OptOutInbound, at); err != nil {
			return err
		}
	case message.ActionOptIn:
		if err := s.deps.Store.RemoveOptOut(c.UserContext(), from); err != nil && !isOptOutMissing(err) {
			return err
		}
	}
	return c.JSON(InboundResult{Action: action, PhoneNumber: from})
}

// listOptOuts pages through the opt-outs, newest first.
//
//	@Summary		List opt-outs
//	@Description	Every opted-out number, newest first (created_at, then phone_number, descending), by keyset pagination: pass next_cursor back as cursor for the next page; it is null on the last page.
//	@Tags			opt-outs
//	@Produce		json
//	@Security		BearerAuth
//	@Param			limit	query		int		false	"Page size; values above 100 are capped"	minimum(1)	default(20)
//	@Param			cursor	query		string	false	"next_cursor of the previous page"
//	@Success		200		{object}	OptOutPage
//	@Failure		400		{object}	ErrorResponse	"Bad limit or cursor"
//	@Failure		401		{object}	ErrorResponse	"API_KEY is set and neither the bearer API_KEY or API_READ_KEY nor a console session came with the request"
//	@Failure		429		{object}	ErrorResponse	"Rate limit reached"
//	@Failure		500		{object}	ErrorResponse
//	@Failure		431	{object}	ErrorResponse	"Request headers larger than 4 KiB"
//	@Router			/api/v1/opt-outs [get]
func (s *Server) listOptOuts(c *fiber.Ctx) error {
	limit, err := parseLimit(c.Query("limit"))
	if err != nil {
		return err
	}
	var after *store.OptOutCursor
	cur, err := decodeTimedCursor(c.Query("cursor"))
	if err != nil {
		return err
	}
	if cur != nil {
		after = &store.OptOutCursor{CreatedAt: *cur.At, PhoneNumber: cur.ID}
	}
	rows, more, err := s.deps.Store.ListOptOuts(c.UserContext(), after, limit)
	if err != nil {
		return err
	}
	page := OptOutPage{Data: make([]OptOutEntry, len(rows))}
	for i, o := range rows {
		page.Data[i] = optOutEntry(o)
	}
	if more {
		last := rows[len(rows)-1]
		next := encodeCursor(pageCursor{At: &last.CreatedAt, ID: last.PhoneNumber})
		page.NextCursor = &next
	}
	return c.JSON(page)
}

// putOptOut opts a number out by hand.
//
//	@Summary		Opt a number out
//	@Description	Adds an opt-out with source api. Idempotent: a number already opted out keeps its opt-out (and its source and created_at), and the answer is 200 again. Write the + as %2B in the path; any usual formatting of the number is read, and it is stored in E.164.
//	@Tags			opt-outs
//	@Produce		json
//	@Security		BearerAuth
//	@Param			phone_number	path		string	true	"The number, e.g. %2B12015550123"
//	@Success		200				{object}	OptOutEntry
//	@Failure		401				{object}	ErrorResponse	"API_KEY is set and the bearer key is missing or wrong"
//	@Failure		422				{object}	ErrorResponse	"Not a phone number (error.field is phone_number)"
//	@Failure		429				{object}	ErrorResponse	"Rate limit reached"
//	@Failure		500				{object}	ErrorResponse
//	@Failure		431	{object}	ErrorResponse	"Request headers larger than 4 KiB"
//	@Router			/api/v1/opt-outs/{phone_number} [put]
func (s *Server) putOptOut(c *fiber.Ctx) error {
	phone, err := optOutPhone(c)
	if err != nil {
		return err
	}
	o, _, err := s.deps.Store.AddOptOut(c.UserContext(), phone, store.OptOutAPI, nil)
	if err != nil {
		return err
	}
	return c.JSON(optOutEntry(o))
}

// deleteOptOut opts a number back in.
//
//	@Summary		Remove an opt-out
//	@Description	Removes the number's opt-out, so messages to it are sent again (those already suppressed stay so). Write the + as %2B in the path.
//	@Tags			opt-outs
//	@Security		BearerAuth
//	@Param			phone_number	path	string	true	"The number, e.g. %2B12015550123"
//	@Success		204				"Removed"
//	@Failure		401				{object}	ErrorResponse	"API_KEY is set and the bearer key is missing or wrong"
//	@Failure		404				{object}	ErrorResponse	"The number is not opted out"
//	@Failure		422				{object}	ErrorResponse	"Not a phone number (error.field is phone_number)"
//	@Failure		429				{object}	ErrorResponse	"Rate limit reached"
//	@Failure		500				{object}	ErrorResponse
//	@Failure		431	{object}	ErrorResponse	"Request headers larger than 4 KiB"
//	@Router			/api/v1/opt-outs/{phone_number} [delete]
func (s *Server) deleteOptOut(c *fiber.Ctx) error {
	phone, err := optOutPhone(c)
	if err != nil {
		return err
	}
	if err := s.deps.Store.RemoveOptOut(c.UserContext(), phone); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// optOutPhone reads the :phone_number path segment, percent-decoded, as a phone
// number in E.164 form; a 422 for phone_number otherwise.
func optOutPhone(c *fiber.Ctx) (string, error) {
	raw, err := url.PathUnescape(c.Params("phone_number"))
	if err != nil {
		return "", invalid("phone_number", "phone_number in the path is not percent-encoded correctly; write + as %2B")
	}
	return message.NormalizePhone("phone_number", raw)
}

func optOutEntry(o store.OptOut) OptOutEntry {
	return OptOutEntry{PhoneNumber: o.PhoneNumber, CreatedAt: o.CreatedAt.UTC(), Source: o.Source}
}

// isOptOutMissing tells whether err says the number had no opt-out.
func isOptOutMissing(err error) bool { return errors.Is(err, messaging.ErrOptOutNotFound) }
