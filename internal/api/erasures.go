package api

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/messaging-server/messaging-server/internal/message"
	"github.com/messaging-server/messaging-server/internal/store"
)

// ErasureRequest names the recipient whose data is erased.
type ErasureRequest struct {
	// PhoneNumber is the number exactly as the messages store it (the
	// E.164 form the API takes, or whatever another system inserted): 1 to
	// 20 characters without control characters, and not "erased".
	PhoneNumber string `json:"phone_number" example:"+905551111111" minLength:"1" maxLength:"20"`
}

// ErasureResult is what an erasure changed.
type ErasureResult struct {
	// Canceled is how many pending messages to the number it canceled;
	// they are never sent.
	Canceled int `json:"canceled" example:"1"`
	// Erased is how many messages (the just-canceled ones included) now
	// have content "" and phone_number "erased".
	Erased int `json:"erased" example:"3"`
}

// erasureFields lists the names an erasure takes, for the unknown-field
// answer.
const erasureFields = "phone_number"

// maxStoredPhone is the phone_number column's width.
const maxStoredPhone = 20

// decodeErasure parses an erasure body strictly (decodeStrict) and checks
// the number: 422 on phone_number when it is empty, longer than the
// column, holds a control character, or is the erased marker itself.
func decodeErasure(body []byte) (string, error) {
	var r ErasureRequest
	if err := decodeStrict(body, &r, erasureFields); err != nil {
		return "", err
	}
	p := r.PhoneNumber
	switch {
	case strings.TrimSpace(p) == "":
		return "", invalid("phone_number", "phone_number is required")
	case utf8.RuneCountInString(p) > maxStoredPhone:
		return "", invalid("phone_number", "phone_number must be at most 20 characters")
	case strings.ContainsFunc(p, message.IsControl):
		return "", invalid("phone_number", "phone_number must not contain control characters")
	case p == store.ErasedNumber:
		return "", invalid("phone_number", `phone_number must be a number, not "erased"`)
	}
	return p, nil
}

// postErasure erases a recipient's data.
//
//	@Summary		Erase a recipient's data
//	@Description	For every message to phone_number (compared exactly): cancels the pending ones (scheduled, due or waiting for a retry), so none is sent; then, in every finished one (sent, failed, expired, canceled), replaces content with "" and phone_number with "erased", replaces each occurrence of the number (with and without its +) and of the content with "erased" in last_error, delivery_error and the attempts' error, and deletes the cached Redis record. A message in flight (sending) is left to its call; a later erasure erases it. An erased message still counts in the statistics and still answers GET /api/v1/messages/{id}, with the erased fields. A second call finds nothing and answers zeros.
//	@Tags			messages
//	@Accept			json
//	@Produce		json
//	@Security		BearerAuth
//	@Param			erasure	body		ErasureRequest	true	"The recipient"
//	@Success		200		{object}	ErasureResult
//	@Failure		400		{object}	ErrorResponse	"Malformed JSON, a repeated key, or an unknown field (names match exactly)"
//	@Failure		401		{object}	ErrorResponse	"API_KEY is set and the bearer key is missing or wrong"
//	@Failure		413		{object}	ErrorResponse	"Body larger than 64 KiB"
//	@Failure		415		{object}	ErrorResponse	"Content-Type is not application/json"
//	@Failure		422		{object}	ErrorResponse	"phone_number is missing, too long, holds a control character, is \"erased\" or is of the wrong JSON type"
//	@Failure		429		{object}	ErrorResponse	"Rate limit reached"
//	@Failure		500		{object}	ErrorResponse
//	@Failure		431		{object}	ErrorResponse	"Request headers larger than 4 KiB"
//	@Router			/api/v1/erasures [post]
func (s *Server) postErasure(c *fiber.Ctx) error {
	phone, err := decodeErasure(c.Body())
	if err != nil {
		return err
	}
	drop := func(ctx context.Context, ids []string) error { return s.cache.Delete(ctx, ids...) }
	e, err := s.deps.Store.Erase(c.UserContext(), phone, drop)
	if err != nil {
		return err
	}
	s.log.Info("erasure", "canceled", e.Canceled, "erased", e.Erased)
	return c.JSON(ErasureResult{Canceled: e.Canceled, Erased: e.Erased})
}
