package api

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/messaging-server/messaging-server/internal/messaging"
)

// StatusCounts is how many messages are in each status right now.
type StatusCounts struct {
	Pending  int64 `json:"pending" example:"12"`
	Sending  int64 `json:"sending" example:"2"`
	Sent     int64 `json:"sent" example:"4031"`
	Failed   int64 `json:"failed" example:"3"`
	Expired  int64 `json:"expired" example:"0"`
	Canceled int64 `json:"canceled" example:"1"`
	// Suppressed is messages to opted-out numbers, never sent.
	Suppressed int64 `json:"suppressed" example:"0"`
}

// MinuteStat is one minute of the chart.
type MinuteStat struct {
	// Minute is the start of the minute (UTC).
	Minute time.Time `json:"minute" format:"date-time" example:"2025-01-02T03:04:00Z"`
	// Sent is the webhook calls started in this minute that ended sent.
	Sent int64 `json:"sent" example:"42"`
	// Failed is the calls started in this minute that failed the message
	// for good (not the ones that will be retried).
	Failed int64 `json:"failed" example:"1"`
}

// MinuteStats is the last hour, minute by minute.
type MinuteStats struct {
	// Data holds 60 entries, oldest first; the last is the current minute,
	// counted so far. Minutes without calls are zeros.
	Data []MinuteStat `json:"data"`
}

// chartMinutes is how far back the chart looks.
const chartMinutes = 60

// statusCounts counts messages by status.
//
//	@Summary		Messages per status
//	@Description	How many messages are in each status now, every status present (0 when none). It counts the whole table, so poll it every few seconds at most.
//	@Tags			stats
//	@Produce		json
//	@Security		BearerAuth
//	@Success		200	{object}	StatusCounts
//	@Failure		401	{object}	ErrorResponse	"API_KEY is set and neither the bearer API_KEY or API_READ_KEY nor a console session came with the request"
//	@Failure		429	{object}	ErrorResponse	"Rate limit reached"
//	@Failure		500	{object}	ErrorResponse
//	@Router			/api/v1/stats/counts [get]
func (s *Server) statusCounts(c *fiber.Ctx) error {
	n, err := s.deps.Store.CountByStatus(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(StatusCounts{
		Pending: n[messaging.StatusPending], Sending: n[messaging.StatusSending], Sent: n[messaging.StatusSent],
		Failed: n[messaging.StatusFailed], Expired: n[messaging.StatusExpired], Canceled: n[messaging.StatusCanceled],
		Suppressed: n[messaging.StatusSuppressed],
	})
}

// minuteStats aggregates the webhook calls of the last hour.
//
//	@Summary		Sent and failed per minute
//	@Description	Webhook calls of the last hour by the minute they started (from the attempts log): how many ended sent and how many failed the message for good. 60 entries, oldest first, the current minute last.
//	@Tags			stats
//	@Produce		json
//	@Security		BearerAuth
//	@Success		200	{object}	MinuteStats
//	@Failure		401	{object}	ErrorResponse	"API_KEY is set and neither the bearer API_KEY or API_READ_KEY nor a console session came with the request"
//	@Failure		429	{object}	ErrorResponse	"Rate limit reached"
//	@Failure		500	{object}	ErrorResponse
//	@Router			/api/v1/stats/minutes [get]
func (s *Server) minuteStats(c *fiber.Ctx) error {
	rows, err := s.deps.Store.MinuteCounts(c.UserContext(), time.Now(), chartMinutes)
	if err != nil {
		return err
	}
	out := MinuteStats{Data: make([]MinuteStat, len(rows))}
	for i, r := range rows {
		out.Data[i] = MinuteStat{Minute: r.Minute, Sent: r.Sent, Failed: r.Failed}
	}
	return c.JSON(out)
}
