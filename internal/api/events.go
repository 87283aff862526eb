package api

import (
	"net/url"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/messaging-server/messaging-server/internal/messaging"
	"github.com/messaging-server/messaging-server/internal/store"
)

// EventView is one status callback event of a message.
type EventView struct {
	// ID is the event's id, sent as webhook-id on every call of it.
	ID        string    `json:"id" example:"5b0f0f0e-3b8e-4d5a-9a57-0c3c1f7c2b1e"`
	Type      string    `json:"type" enums:"message.sent,message.failed,message.expired,message.canceled,message.delivered,message.undelivered" example:"message.sent"`
	CreatedAt time.Time `json:"created_at" format:"date-time" example:"2025-01-02T03:04:05.123456Z"`
	// Status is pending until a call is answered 2xx (delivered) or the
	// retry schedule runs out (failed).
	Status   string `json:"status" enums:"pending,delivered,failed" example:"delivered"`
	Attempts int    `json:"attempts" example:"1"`
	// DeliveredAt is when a call was last accepted; null before.
	DeliveredAt *time.Time `json:"delivered_at" extensions:"x-nullable" format:"date-time" example:"2025-01-02T03:04:05.223456Z"`
	// LastError is why the latest call was not accepted; null when it was
	// or before any call.
	LastError *string `json:"last_error" extensions:"x-nullable" example:"callback answered 500"`
}

// EventList is the answer of GET /api/v1/messages/{id}/events.
type EventList struct {
	Data []EventView `json:"data"`
}

func eventView(e store.Event) EventView {
	return EventView{ID: e.ID, Type: e.Type, CreatedAt: e.CreatedAt.UTC(), Status: e.Status, Attempts: e.Attempts,
		DeliveredAt: utc(e.DeliveredAt), LastError: nullable(e.LastError)}
}

// listEvents lists a message's status callback events.
//
//	@Summary		List a message's status callback events
//	@Description	One event per change of the message's status into sent, failed, expired or canceled, and per change of its delivery status by a receipt (delivered, undelivered), oldest first; none for its creation. Each is written in the same transaction as the change it reports, and the workers POST it to the message's status_callback or STATUS_CALLBACK_URL (unset: the event is recorded and listed, not sent).
//	@Tags			events
//	@Produce		json
//	@Security		BearerAuth
//	@Param			id	path		string	true	"Message id (1 to 36 characters)"	minlength(1)	maxlength(36)
//	@Success		200	{object}	EventList
//	@Failure		404	{object}	ErrorResponse	"No such message"
//	@Failure		401	{object}	ErrorResponse	"API_KEY is set and neither the bearer API_KEY or API_READ_KEY nor a console session came with the request"
//	@Failure		429	{object}	ErrorResponse	"Rate limit reached"
//	@Failure		500	{object}	ErrorResponse
//	@Failure		431	{object}	ErrorResponse	"Request headers larger than 4 KiB"
//	@Router			/api/v1/messages/{id}/events [get]
func (s *Server) listEvents(c *fiber.Ctx) error {
	id, err := messageID(c)
	if err != nil {
		return err
	}
	evs, err := s.deps.Store.ListEvents(c.UserContext(), id)
	if err != nil {
		return err
	}
	out := EventList{Data: make([]EventView, len(evs))}
	for i, e := range evs {
		out.Data[i] = eventView(e)
	}
	return c.JSON(out)
}

// redeliverEvent sends a status callback event again.
//
//	@Summary		Redeliver a status callback event
//	@Description	Puts the event back in line, due now, with a fresh round of STATUS_CALLBACK_RETRY_SCHEDULE, whatever its status: a failed event is sent again, and so is a delivered one. It keeps its id, so the receiver sees the same webhook-id. Answers 202 with the event, now pending; a worker sends it once no earlier event of its message is pending.
//	@Tags			events
//	@Produce		json
//	@Security		BearerAuth
//	@Param			id	path		string	true	"Event id"
//	@Success		202	{object}	EventView
//	@Failure		404	{object}	ErrorResponse	"No such event"
//	@Failure		401	{object}	ErrorResponse	"API_KEY is set and the bearer key is missing or wrong"
//	@Failure		429	{object}	ErrorResponse	"Rate limit reached"
//	@Failure		500	{object}	ErrorResponse
//	@Failure		431	{object}	ErrorResponse	"Request headers larger than 4 KiB"
//	@Router			/api/v1/events/{id}/redeliver [post]
func (s *Server) redeliverEvent(c *fiber.Ctx) error {
	id, err := url.PathUnescape(c.Params("id"))
	if err != nil {
		return messaging.ErrEventNotFound
	}
	e, err := s.deps.Store.RedeliverEvent(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(eventView(e))
}
