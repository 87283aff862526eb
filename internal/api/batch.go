package api

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/gofiber/fiber/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/messaging-server/messaging-server/internal/store"
)

// BatchRequest is the body of POST /api/v1/messages/batch.
type BatchRequest struct {
	// Messages are 1 to 1000 creates, each shaped like POST /api/v1/messages.
	Messages []CreateMessageRequest `json:"messages" minItems:"1" maxItems:"1000"`
}

// BatchCreated is the answer to a batch create, in request order.
type BatchCreated struct {
	Data []MessageCreated `json:"data"`
}

// ItemError says what is wrong with one item of a batch.
type ItemError struct {
	Index   int    `json:"index" example:"1"`
	Field   string `json:"field,omitempty" example:"phone_number"`
	Message string `json:"message" example:"phone_number must be in E.164 form: + then 8 to 15 digits, the first not 0"`
}

// BatchError is a refused batch: one entry per bad item. Nothing was
// stored.
type BatchError struct {
	Items []ItemError
}

func (e *BatchError) Error() string { return fmt.Sprintf("%d invalid items", len(e.Items)) }

// batchFields lists the names of a batch body, for the unknown-field
// answer.
const batchFields = "messages"

// decodeBatch parses a batch body strictly (decodeStrict), so a malformed
// body, a duplicate name anywhere in it, or an unknown name outside the
// items refuses the whole batch with 400. Each item is then decoded like a
// single create, and a malformed item or a field of the wrong type is
// reported as that item's entry in bad (its slot in the requests stays
// empty).
func decodeBatch(body []byte) (reqs []CreateMessageRequest, bad []ItemError, err error) {
	var raw struct {
		Messages []jsontext.Value `json:"messages"`
	}
	if err := decodeStrict(body, &raw, batchFields); err != nil {
		return nil, nil, err
	}
	if len(raw.Messages) == 0 || len(raw.Messages) > MaxBatch {
		return nil, nil, invalid("messages", fmt.Sprintf("messages must hold 1 to %d items", MaxBatch))
	}
	reqs = make([]CreateMessageRequest, len(raw.Messages))
	for i, item := range raw.Messages {
		if item.Kind() != '{' {
			bad = append(bad, ItemError{Index: i, Message: "each item of messages must be a JSON object"})
			continue
		}
		r, err := decodeNewMessage(item)
		var (
			ae *Error
			ve *ValidationError
		)
		switch {
		case err == nil:
			reqs[i] = r
		case errors.As(err, &ae):
			bad = append(bad, ItemError{Index: i, Field: ae.Field, Message: ae.Message})
		case errors.As(err, &ve):
			bad = append(bad, ItemError{Index: i, Field: ve.Field, Message: ve.Message})
		default:
			return nil, nil, err
		}
	}
	return reqs, bad, nil
}

// createBatch stores up to 1000 messages, all or nothing.
//
//	@Summary		Create messages in one request
//	@Description	Takes 1 to 1000 messages, each shaped like POST /api/v1/messages, in a body of at most 2 MiB, and stores all of them or none. Items are decoded as strictly as a single create; a field of the wrong JSON type or an unknown field in an item is that item's entry in error.items. Answers 201 with the messages in request order (an item whose id exists with the same body is a replay and comes back as stored). When any item is invalid the answer is 422 with error.items holding one entry (index, field, message) per bad item, and nothing is stored. An item whose id exists with a different body makes the whole batch 409 duplicate_id.
//	@Tags			messages
//	@Accept			json
//	@Produce		json
//	@Security		BearerAuth
//	@Param			batch	body		BatchRequest	true	"The messages"
//	@Success		201		{object}	BatchCreated
//	@Failure		400		{object}	ErrorResponse	"Malformed JSON, a repeated key anywhere in the body (error.field names it, e.g. messages[1].content), or an unknown field outside the items"
//	@Failure		401		{object}	ErrorResponse	"API_KEY is set and the bearer key is missing or wrong"
//	@Failure		409		{object}	ErrorResponse	"duplicate_id: an item reuses an id with a different body"
//	@Failure		413		{object}	ErrorResponse	"Body larger than 2 MiB"
//	@Failure		415		{object}	ErrorResponse	"Content-Type is not application/json"
//	@Failure		422		{object}	ErrorResponse	"Invalid items; error.items lists them"
//	@Failure		429		{object}	ErrorResponse	"Rate limit reached"
//	@Failure		500		{object}	ErrorResponse
//	@Failure		431	{object}	ErrorResponse	"Request headers larger than 4 KiB"
//	@Router			/api/v1/messages/batch [post]
func (s *Server) createBatch(c *fiber.Ctx) error {
	reqs, bad, err := decodeBatch(c.Body())
	if err != nil {
		return err
	}
	now := time.Now()
	ns := make([]store.NewMessage, len(reqs))
	seen := make(map[string]int, len(reqs))
	malformed := make(map[int]bool, len(bad))
	for _, b := range bad {
		malformed[b.Index] = true
	}
	for i, r := range reqs {
		if malformed[i] {
			continue
		}
		n, past, err := s.newMessage(r, now)
		if err != nil && (!past || !s.replayOf(c, r, n)) {
			var ve *ValidationError
			if !errors.As(err, &ve) {
				return err
			}
			bad = append(bad, ItemError{Index: i, Field: ve.Field, Message: ve.Message})
			continue
		}
		if j, dup := seen[n.ID]; dup {
			bad = append(bad, ItemError{Index: i, Field: "id", Message: fmt.Sprintf("id repeats item %d of this batch", j)})
			continue
		}
		seen[n.ID] = i
		ns[i] = n
	}
	if bad != nil {
		slices.SortStableFunc(bad, func(a, b ItemError) int { return a.Index - b.Index })
		return &BatchError{Items: bad}
	}
	// Every item keeps the request's trace: each one's attempts are spans
	// in it.
	ctx := c.UserContext()
	tp := s.traces.Traceparent(ctx)
	for i := range ns {
		ns[i].Traceparent = tp
	}
	trace.SpanFromContext(ctx).SetAttributes(attribute.Int("messaging.batch.message_count", len(ns)))
	out, err := s.deps.Store.Create(ctx, ns)
	if err != nil {
		return err
	}
	resp := BatchCreated{Data: make([]MessageCreated, len(out))}
	for i, m := range out {
		resp.Data[i] = created(m.Message)
	}
	return c.Status(fiber.StatusCreated).JSON(resp)
}
