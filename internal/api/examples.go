package api

import (
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/messaging-server/messaging-server/internal/message"
	"github.com/messaging-server/messaging-server/internal/messaging"
)

// ResponseExample is the body the OpenAPI document shows for a non-2xx
// answer of an operation (method and path as the document spells them, e.g.
// "GET", "/api/v1/messages/{id}"). Each is made by the same code that makes
// the real answer (the error map, the sentinels, the parsers), so the
// document cannot show a validation error for a 429 or a 500. The
// generator step of `make docs` (internal/api/apidoc) writes them into
// docs/; ok is false when there is none, which fails that step.
func ResponseExample(method, path string, status int) (example any, ok bool) {
	body := func(e *Error) (any, bool) {
		return errorResponse(e, e), true
	}
	// of answers err as handleError does, error.items included.
	of := func(err error) (any, bool) {
		return errorResponse(answerFor(err), err), true
	}
	op := method + " " + path
	switch status {
	case fiber.StatusBadRequest:
		switch op {
		case "POST /api/v1/messages":
			_, err := decodeNewMessage([]byte(`{"content": "hi",}`))
			return body(answerFor(err))
		case "GET /api/v1/messages/sent":
			_, err := parseLimit("ten")
			return body(answerFor(err))
		case "GET /api/v1/messages":
			return of(parseStatusFilter("done"))
		case "POST /api/v1/messages/batch":
			_, _, err := decodeBatch([]byte(`{"messages": [{"content": "hi"}],}`))
			return of(err)
		case "POST /api/v1/receipts":
			_, err := decodeReceipt([]byte(`{"message_id": "67f2f8a8",}`))
			return of(err)
		case "POST /api/v1/erasures":
			_, err := decodeErasure([]byte(`{"phone_number": "+905551111111",}`))
			return of(err)
		case "POST /api/v1/inbound":
			_, _, _, err := decodeInbound([]byte(`{"from": "+12015550123",}`), time.Now())
			return of(err)
		case "GET /api/v1/opt-outs":
			_, err := parseLimit("ten")
			return of(err)
		}
	case fiber.StatusUnauthorized:
		return body(errUnauthorized)
	case fiber.StatusNotFound:
		if op == "DELETE /api/v1/opt-outs/{phone_number}" {
			return of(messaging.ErrOptOutNotFound)
		}
		return body(answerFor(messaging.ErrNotFound))
	case fiber.StatusConflict:
		switch op {
		case "POST /api/v1/messages/{id}/retry":
			return of(messaging.ErrNotFailed)
		case "POST /api/v1/messages", "POST /api/v1/messages/batch":
			return of(messaging.ErrDuplicate)
		case "POST /api/v1/messages/{id}/cancel":
			return of(messaging.ErrNotCancelable)
		case "POST /api/v1/receipts":
			return of(messaging.ErrAmbiguousRemoteID)
		}
	case fiber.StatusRequestEntityTooLarge:
		return body(fromFiber(fiber.ErrRequestEntityTooLarge))
	case fiber.StatusUnsupportedMediaType:
		return body(errUnsupportedMedia)
	case fiber.StatusUnprocessableEntity:
		switch op {
		case "POST /api/v1/messages":
			return body(answerFor(invalidExample()))
		case "POST /api/v1/messages/batch":
			// Item 1 of a batch whose item 0 is valid, as createBatch
			// reports it.
			var ve *ValidationError
			if !errors.As(invalidExample(), &ve) {
				return nil, false
			}
			return of(&BatchError{Items: []ItemError{{Index: 1, Field: ve.Field, Message: ve.Message}}})
		case "POST /api/v1/receipts":
			_, err := decodeReceipt([]byte(`{"message_id": "67f2f8a8", "status": "read"}`))
			return of(err)
		case "POST /api/v1/erasures":
			_, err := decodeErasure([]byte(`{"phone_number": "erased"}`))
			return of(err)
		case "POST /api/v1/inbound":
			_, _, _, err := decodeInbound([]byte(`{"from": "05551111111", "text": "STOP"}`), time.Now())
			return of(err)
		case "PUT /api/v1/opt-outs/{phone_number}", "DELETE /api/v1/opt-outs/{phone_number}":
			_, err := message.NormalizePhone("phone_number", "05551111111")
			return of(err)
		}
	case fiber.StatusTooManyRequests:
		return body(errRateLimited)
	case fiber.StatusRequestHeaderFieldsTooLarge:
		return body(fromFiber(fiber.ErrRequestHeaderFieldsTooLarge))
	case fiber.StatusInternalServerError:
		return body(errInternal)
	case fiber.StatusServiceUnavailable:
		if op == "GET /readyz" {
			return Readiness{Status: "unavailable", Checks: map[string]string{"postgres": "unavailable", "redis": "ok"}}, true
		}
	}
	return nil, false
}

// invalidExample is the validation error of a create whose phone number
// has no country code.
func invalidExample() error {
	_, err := validateNewMessage(CreateMessageRequest{Content: "hi", PhoneNumber: "05551111111"},
		createLimits{MaxContent: 160, MaxSegments: 10})
	return err
}
