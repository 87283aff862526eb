// Package view is the JSON form of a message that every answer of the API
// shows and every status callback carries as its data: one rendering, so
// that an event's data is exactly what GET /api/v1/messages/{id} showed
// right after the change it reports.
package view

import (
	"time"

	"github.com/messaging-server/messaging-server/internal/message"
	"github.com/messaging-server/messaging-server/internal/store"
)

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
	// StatusCallback is the URL that receives this message's status
	// callbacks instead of STATUS_CALLBACK_URL; null: that one.
	StatusCallback *string `json:"status_callback" extensions:"x-nullable" example:"https://hooks.example.com/sms-status"`
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

// SMSPartsOf computes how content travels as SMS.
func SMSPartsOf(content string) SMSParts {
	p := message.Split(content)
	return SMSParts{Encoding: p.Encoding, Segments: p.Count()}
}

// LifecycleOf is m's lifecycle state.
func LifecycleOf(m store.Message) Lifecycle {
	return Lifecycle{
		SendAt: UTC(m.SendAt), ExpiresAt: UTC(m.ExpiresAt), Priority: m.Priority,
		DeliveryStatus: Nullable(m.DeliveryStatus), DeliveredAt: UTC(m.DeliveredAt), DeliveryError: Nullable(m.DeliveryError),
		StatusCallback: Nullable(m.StatusCallback), Provider: Nullable(m.Provider),
	}
}

// Detail is m as GET /api/v1/messages/{id} shows it (before the cache's
// overlay of a sent record).
func Detail(m store.Message) MessageDetail {
	return MessageDetail{
		ID: m.ID, Content: m.Content, PhoneNumber: m.PhoneNumber, Status: m.Status, Attempts: m.Attempts,
		RemoteMessageID: Nullable(m.RemoteMessageID), SentAt: UTC(m.SentAt),
		LastError: Nullable(m.LastError), CreatedAt: m.CreatedAt.UTC(), Lifecycle: LifecycleOf(m),
		SMSParts: SMSPartsOf(m.Content),
	}
}

// Nullable is s, or nil when it is empty.
func Nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// UTC is *t in UTC, or nil.
func UTC(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
