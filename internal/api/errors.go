package api

import (
	"errors"
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/messaging-server/messaging-server/internal/callback"
	"github.com/messaging-server/messaging-server/internal/console"
	"github.com/messaging-server/messaging-server/internal/message"
	"github.com/messaging-server/messaging-server/internal/messaging"
)

// Error is an answer a handler chooses: the status, a stable code clients
// branch on, and a message safe to show. Handlers return it (or a sentinel
// below, or a store error) and handleError writes it, so statuses are decided
// in one place.
type Error struct {
	Status  int
	Code    string
	Message string
	// Field names the offending input, when there is one.
	Field string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%d %s: %s: %s", e.Status, e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

// ValidationError says which field of a request is wrong and why. It is the
// message package's error, so the validator stays free of HTTP and is shared
// with the workers; handleError turns it into a 422.
type ValidationError = message.InvalidError

func invalid(field, msg string) *ValidationError {
	return &ValidationError{Field: field, Message: msg}
}

// callbackURLError is the 422 of a status_callback that callback.CheckURL
// refused, as a field error, so that a batch lists it among its items.
func callbackURLError(err error) *ValidationError {
	if errors.Is(err, callback.ErrHostNotAllowed) {
		return invalid("status_callback", "status_callback names a host that STATUS_CALLBACK_ALLOWED_HOSTS does not allow")
	}
	return invalid("status_callback", "status_callback must be an absolute http or https URL of at most 2048 bytes, without user information or fragment")
}

// Sentinel answers shared by several handlers.
var (
	errUnauthorized = &Error{Status: fiber.StatusUnauthorized, Code: "unauthorized",
		Message: "missing or wrong API key: send Authorization: Bearer <API_KEY>"}
	errRateLimited = &Error{Status: fiber.StatusTooManyRequests, Code: "rate_limited",
		Message: "too many requests from this address; retry later"}
	errCrossSite = &Error{Status: fiber.StatusForbidden, Code: "cross_site",
		Message: "a change made with the console's session must come from the console's own pages"}
	errMetricsOff = &Error{Status: fiber.StatusNotFound, Code: "not_found",
		Message: "the dashboard's metrics view is off: no Prometheus server is configured"}
	errUnsupportedMedia = &Error{Status: fiber.StatusUnsupportedMediaType, Code: "unsupported_media_type",
		Message: "Content-Type must be application/json"}
	errUnsupportedCharset = &Error{Status: fiber.StatusUnsupportedMediaType, Code: "unsupported_media_type",
		Message: "Content-Type charset must be utf-8: JSON text is UTF-8"}
)

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody describes one error. Code is stable and meant for programs;
// Message is for people.
type ErrorBody struct {
	Code    string `json:"code" example:"validation_failed"`
	Message string `json:"message" example:"phone_number must be in E.164 form"`
	// Field is the offending input, for validation errors.
	Field string `json:"field,omitempty" example:"phone_number"`
	// Items lists the bad items of a refused batch create.
	Items []ItemError `json:"items,omitempty"`
}

// handleError is the one place errors become HTTP answers. Users see a code
// and a safe message; internal error text goes to the log only.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	e := s.classify(c, err)
	if e.Status == fiber.StatusUnauthorized {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="messaging-server"`)
	}
	return c.Status(e.Status).JSON(errorResponse(e, err))
}

// errorResponse is the body of the answer e to err: the batch create's
// error.items come from err.
func errorResponse(e *Error, err error) ErrorResponse {
	body := ErrorBody{Code: e.Code, Message: e.Message, Field: e.Field}
	var be *BatchError
	if errors.As(err, &be) {
		body.Items = be.Items
	}
	return ErrorResponse{Error: body}
}

func (s *Server) classify(c *fiber.Ctx, err error) *Error {
	if e := answerFor(err); e != nil {
		return e
	}
	s.log.Error("request failed", "method", c.Method(), "path", c.Path(), "err", err)
	return errInternal
}

// errTooLarge is the one 413: it names both limits, so it never needs the
// route.
var errTooLarge = &Error{Status: fiber.StatusRequestEntityTooLarge, Code: "too_large",
	Message: fmt.Sprintf("request body is too large: at most %d bytes, %d for a batch create", BodyLimit, BatchBodyLimit)}

var errInternal = &Error{Status: fiber.StatusInternalServerError, Code: "internal", Message: "internal server error"}

// The answers of the access guard (auth.go).
var (
	errReadOnly = &Error{Status: fiber.StatusUnauthorized, Code: "unauthorized",
		Message: "the read key (API_READ_KEY) may only read /api/v1: send Authorization: Bearer <API_KEY> to change anything or to open the dashboard"}
	errBadPath = &Error{Status: fiber.StatusBadRequest, Code: "bad_path",
		Message: "the path has an encoded slash, backslash, dot or percent sign, a dot segment or an empty segment; send it as plain segments"}
	errDispatchQueue = &Error{Status: fiber.StatusForbidden, Code: "dispatch_queue",
		Message: "the dispatch queue cannot be deleted or paused from the dashboard: stop sending with POST /api/v1/scheduler/stop instead"}
)

// answerFor is the error map: the answer for every error a client may be
// told about, or nil for an internal one.
func answerFor(err error) *Error {
	var (
		ae *Error
		ve *ValidationError
		fe *fiber.Error
	)
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, new(*BatchError)):
		return &Error{Status: fiber.StatusUnprocessableEntity, Code: "validation_failed",
			Message: "some messages are invalid (error.items lists them); nothing was stored"}
	case errors.As(err, &ve):
		return &Error{Status: fiber.StatusUnprocessableEntity, Code: "validation_failed", Message: ve.Message, Field: ve.Field}
	case errors.Is(err, console.ErrCrossSite):
		return errCrossSite
	case errors.Is(err, messaging.ErrNotFound):
		return &Error{Status: fiber.StatusNotFound, Code: "not_found", Message: "message not found"}
	case errors.Is(err, messaging.ErrProviderNotFound):
		return &Error{Status: fiber.StatusNotFound, Code: "not_found", Message: "provider not found"}
	case errors.Is(err, messaging.ErrEventNotFound):
		return &Error{Status: fiber.StatusNotFound, Code: "not_found", Message: "event not found"}
	case errors.Is(err, messaging.ErrNotFailed):
		return &Error{Status: fiber.StatusConflict, Code: "not_failed", Message: "only a failed message can be retried"}
	case errors.Is(err, messaging.ErrDuplicate):
		return &Error{Status: fiber.StatusConflict, Code: "duplicate_id", Field: "id",
			Message: "a message with this id already exists with a different body"}
	case errors.Is(err, messaging.ErrNotCancelable):
		return &Error{Status: fiber.StatusConflict, Code: "not_cancelable",
			Message: "only a pending message can be canceled; this one is sending, sent, failed, expired or suppressed"}
	case errors.Is(err, messaging.ErrOptOutNotFound):
		return &Error{Status: fiber.StatusNotFound, Code: "not_found", Field: "phone_number", Message: "this number is not opted out"}
	case errors.Is(err, messaging.ErrRemoteNotFound):
		return &Error{Status: fiber.StatusNotFound, Code: "not_found", Message: "no sent message has this message_id"}
	case errors.Is(err, messaging.ErrAmbiguousRemoteID):
		return &Error{Status: fiber.StatusConflict, Code: "ambiguous_remote_id", Field: "message_id",
			Message: "several sent messages have this message_id, so the receipt cannot name one; nothing was changed"}
	case errors.Is(err, messaging.ErrReceiptFuture):
		return &Error{Status: fiber.StatusUnprocessableEntity, Code: "validation_failed", Field: "timestamp",
			Message: fmt.Sprintf("timestamp must not be more than %v after the server's time", messaging.ReceiptClockSkew)}
	case errors.Is(err, messaging.ErrReceiptBeforeSent):
		return &Error{Status: fiber.StatusUnprocessableEntity, Code: "validation_failed", Field: "timestamp",
			Message: fmt.Sprintf("timestamp must not be more than %v before the message was sent", messaging.ReceiptClockSkew)}
	case errors.As(err, &fe):
		return fromFiber(fe)
	}
	return nil
}

// fromFiber maps the errors fiber itself raises (no route, wrong method,
// body too large, bad request line) to our codes, with fixed messages that
// never echo the request.
func fromFiber(fe *fiber.Error) *Error {
	switch fe.Code {
	case fiber.StatusNotFound:
		return &Error{Status: fe.Code, Code: "not_found", Message: "no such route"}
	case fiber.StatusMethodNotAllowed:
		return &Error{Status: fe.Code, Code: "method_not_allowed", Message: "method not allowed on this route"}
	case fiber.StatusRequestEntityTooLarge:
		return errTooLarge
	case fiber.StatusRequestHeaderFieldsTooLarge:
		return &Error{Status: fe.Code, Code: "headers_too_large", Message: "request headers are too large"}
	case fiber.StatusUnsupportedMediaType:
		return errUnsupportedMedia
	case fiber.StatusTooManyRequests:
		return errRateLimited
	case fiber.StatusUnauthorized:
		return errUnauthorized
	case fiber.StatusRequestTimeout:
		return &Error{Status: fe.Code, Code: "timeout", Message: "request timed out"}
	}
	if fe.Code >= 500 {
		return errInternal
	}
	if fe.Code >= 400 {
		return &Error{Status: fe.Code, Code: "bad_request", Message: "bad request"}
	}
	return errInternal
}
