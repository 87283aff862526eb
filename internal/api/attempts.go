package api

import (
	"time"

	"github.com/gofiber/fiber/v2"
)

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
	// Provider is the provider called (PROVIDERS; default when it is
	// unset); null for calls recorded before providers were named.
	Provider *string `json:"provider" extensions:"x-nullable" example:"primary"`
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
			StatusCode: a.StatusCode, Outcome: a.Outcome, Error: nullable(a.Error), Provider: nullable(a.Provider)}
	}
	return c.JSON(out)
}
