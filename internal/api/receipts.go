package api

import (
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/messaging-server/messaging-server/internal/store"
)

// ReceiptRequest is a delivery receipt from the provider.
type ReceiptRequest struct {
	// MessageID is the messageId the webhook answered with.
	MessageID string `json:"message_id" example:"67f2f8a8-ea58-4ed0-a6f9-ff217df4d849" minLength:"1" maxLength:"255"`
	Status    string `json:"status" enums:"delivered,undelivered" example:"delivered"`
	// ErrorCode is the provider's reason for an undelivered message; a
	// delivered receipt must not carry one.
	ErrorCode *string `json:"error_code,omitempty" example:"30003" maxLength:"255"`
	// Timestamp is when the provider says it happened (RFC 3339): at most
	// 5 minutes after the server's time and at most 5 minutes before the
	// message was sent. The newest receipt wins; of equal ones, the first.
	// Without it, the time the receipt arrived.
	Timestamp *string `json:"timestamp,omitempty" format:"date-time" example:"2025-01-02T03:04:07Z"`
}

// maxReceiptText bounds message_id and error_code.
const maxReceiptText = 255

// receiptFields lists the names of a receipt, for the unknown-field answer.
const receiptFields = "message_id, status, error_code and timestamp"

// decodeReceipt parses and checks a receipt body: strict JSON (decodeStrict:
// 400 for malformed JSON, an unknown or repeated name, 422 for a field of
// the wrong type), then 422 for a missing or bad field. A delivered receipt
// carries no error_code: one that does is refused (422 on error_code)
// rather than stored with it, so delivery_error only ever explains an
// undelivered message.
func decodeReceipt(body []byte) (store.Receipt, error) {
	var r ReceiptRequest
	if err := decodeStrict(body, &r, receiptFields); err != nil {
		return store.Receipt{}, err
	}
	if !printable(r.MessageID) {
		return store.Receipt{}, invalid("message_id", "message_id must be the webhook's messageId: 1 to 255 printable characters")
	}
	if r.Status != "delivered" && r.Status != "undelivered" {
		return store.Receipt{}, invalid("status", "status must be delivered or undelivered")
	}
	out := store.Receipt{RemoteID: r.MessageID, Status: r.Status}
	if r.ErrorCode != nil && r.Status == "delivered" {
		return store.Receipt{}, invalid("error_code", "a delivered receipt carries no error_code; send error_code only with undelivered")
	}
	if r.ErrorCode != nil {
		if !printable(*r.ErrorCode) {
			return store.Receipt{}, invalid("error_code", "error_code must be 1 to 255 printable characters")
		}
		out.Error = *r.ErrorCode
	}
	if r.Timestamp != nil {
		t, err := time.Parse(time.RFC3339Nano, *r.Timestamp)
		if err != nil || t.Year() < 1 || t.Year() > 9999 {
			return store.Receipt{}, invalid("timestamp", "timestamp must be an RFC 3339 time, e.g. 2025-01-02T03:04:07Z")
		}
		t = t.UTC().Truncate(time.Microsecond)
		out.At = &t
	}
	return out, nil
}

// printable: 1 to 255 characters of valid UTF-8 without control
// characters or U+FFFD, so it can be stored and compared unaltered.
func printable(s string) bool {
	if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxReceiptText {
		return false
	}
	// A body the JSON decoder would alter (a bad byte, a lone surrogate)
	// is refused before, by checkJSONText; a U+FFFD sent as such stays
	// refused here.
	for _, r := range s {
		if r < 0x20 || r >= 0x7f && r < 0xa0 || r == utf8.RuneError {
			return false
		}
	}
	return true
}

// postReceipt stores a delivery receipt.
//
//	@Summary		Take a delivery receipt
//	@Description	Sets delivery_status, delivered_at and delivery_error on the one sent message whose remote_message_id is message_id; its status stays sent. A repeated or older receipt is harmless: the newest timestamp wins, the first of equal timestamps wins, and the answer is the message as stored. When several sent messages carry message_id the answer is 409 ambiguous_remote_id and nothing changes. timestamp may be at most 5 minutes after the server's time (the database's clock) and at most 5 minutes before the message's sent_at, else 422 on timestamp. A delivered receipt carries no error_code (422 on error_code). A refused receipt changes nothing.
//	@Tags			messages
//	@Accept			json
//	@Produce		json
//	@Security		BearerAuth
//	@Param			receipt	body		ReceiptRequest	true	"The receipt"
//	@Success		200		{object}	MessageDetail
//	@Failure		400		{object}	ErrorResponse	"Malformed JSON, a repeated key, or an unknown field (names match exactly)"
//	@Failure		401		{object}	ErrorResponse	"API_KEY is set and the bearer key is missing or wrong"
//	@Failure		404		{object}	ErrorResponse	"No sent message has this message_id"
//	@Failure		413		{object}	ErrorResponse	"Body larger than 64 KiB"
//	@Failure		415		{object}	ErrorResponse	"Content-Type is not application/json"
//	@Failure		409		{object}	ErrorResponse	"ambiguous_remote_id: several sent messages have this message_id"
//	@Failure		422		{object}	ErrorResponse	"A field is invalid or of the wrong JSON type, timestamp is out of range, or a delivered receipt has an error_code; error.field names it"
//	@Failure		429		{object}	ErrorResponse	"Rate limit reached"
//	@Failure		500		{object}	ErrorResponse
//	@Failure		431	{object}	ErrorResponse	"Request headers larger than 4 KiB"
//	@Router			/api/v1/receipts [post]
func (s *Server) postReceipt(c *fiber.Ctx) error {
	r, err := decodeReceipt(c.Body())
	if err != nil {
		return err
	}
	m, err := s.deps.Store.ApplyReceipt(c.UserContext(), r)
	if err != nil {
		return err
	}
	return c.JSON(detail(m))
}
