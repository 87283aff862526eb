// Package webhook delivers one message to the receiving system over HTTP and
// classifies the answer, so that the delivery loop only decides what to do
// next (record, retry later, give up), never how HTTP failed.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/propagation"
)

// maxResponseBytes bounds what is read of an answer. The receiver's answer is
// a small JSON object; a hostile or broken one must not cost memory.
const maxResponseBytes = 64 << 10

// Request is one delivery: the message id travels as the Idempotency-Key so
// that the receiver can drop a repeat after a lost acknowledgement.
type Request struct {
	ID      string
	To      string
	Content string
}

// Response is a successful delivery's result.
type Response struct {
	Status int
	// MessageID is the receiver's id for the message, empty when its answer
	// carried none.
	MessageID string
}

// Error is a failed delivery. Retryable says whether the same request may
// succeed later (5xx, 408, 429, timeouts, connection faults); RetryAfter is
// the receiver's own hint, zero when it gave none.
type Error struct {
	Status     int
	Retryable  bool
	RetryAfter time.Duration
	Reason     string
	Err        error
}

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("webhook answered %d: %s", e.Status, e.Reason)
	}
	return "webhook call failed: " + e.Reason
}

func (e *Error) Unwrap() error { return e.Err }

// Gone reports a 410: the receiver says this endpoint is gone for good, and
// the Standard Webhooks advice is to stop sending to it.
func (e *Error) Gone() bool { return e.Status == http.StatusGone }

// Kind is a short, bounded label for the failure, for metrics: http_5xx,
// http_429, http_408, http_3xx, http_4xx, timeout, canceled or connection.
func (e *Error) Kind() string {
	switch s := e.Status; {
	case s >= 500:
		return "http_5xx"
	case s == http.StatusTooManyRequests:
		return "http_429"
	case s == http.StatusRequestTimeout:
		return "http_408"
	case s == http.StatusGone:
		return "http_410"
	case s >= 400:
		return "http_4xx"
	case s >= 300:
		return "http_3xx"
	case e.Reason == "timeout" || e.Reason == "canceled":
		return e.Reason
	default:
		return "connection"
	}
}

// Options configures a Client.
type Options struct {
	URL        string
	Timeout    time.Duration
	AuthHeader string
	AuthKey    string
	// MaxConns is the number of calls that may be in flight at once; the
	// transport keeps that many idle connections so calls reuse them.
	MaxConns int
	// Now is the clock used to read HTTP-date Retry-After values and to
	// stamp signatures.
	Now func() time.Time
	// SigningKey, when set, signs every call the Standard Webhooks way.
	SigningKey []byte
	// Propagator, when set, writes the trace context of Send's ctx into
	// the call's headers (W3C traceparent), so the receiver's own traces
	// join the message's.
	Propagator propagation.TextMapPropagator
}

// Client sends messages to one webhook URL over a keep-alive connection pool.
type Client struct {
	http *http.Client
	opts Options
}

// New builds a Client. Redirects are not followed: a delivery must reach the
// configured host or fail visibly.
func New(o Options) *Client {
	if o.MaxConns < 1 {
		o.MaxConns = 1
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          o.MaxConns,
		MaxIdleConnsPerHost:   o.MaxConns,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   o.Timeout,
		ResponseHeaderTimeout: o.Timeout,
		ForceAttemptHTTP2:     true,
	}
	return &Client{
		opts: o,
		http: &http.Client{
			Transport: tr,
			Timeout:   o.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

type body struct {
	To      string `json:"to"`
	Content string `json:"content"`
}

// Send makes one delivery attempt. A nil error means the receiver accepted
// the message (any 2xx); otherwise the error is an *Error.
func (c *Client) Send(ctx context.Context, r Request) (Response, error) {
	payload, err := json.Marshal(body{To: r.To, Content: r.Content})
	if err != nil {
		return Response{}, &Error{Reason: "encode body", Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.opts.URL, bytes.NewReader(payload))
	if err != nil {
		return Response{}, &Error{Reason: "build request", Err: err}
	}
	// Every call must be one recorded attempt. net/http treats a request
	// carrying an Idempotency-Key as replayable and silently sends it again
	// on a fresh connection when a reused one dies after the receiver read
	// it; a request whose body cannot be rewound (no GetBody) is never
	// replayed, not even when nothing was written.
	req.GetBody = nil
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Idempotency-Key", r.ID)
	if c.opts.Propagator != nil {
		c.opts.Propagator.Inject(ctx, propagation.HeaderCarrier(req.Header))
	}
	if c.opts.AuthKey != "" {
		req.Header.Set(c.opts.AuthHeader, c.opts.AuthKey)
	}
	if len(c.opts.SigningKey) > 0 {
		ts := c.opts.Now()
		req.Header.Set(HeaderID, r.ID)
		req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
		req.Header.Set(HeaderSignature, Sign(c.opts.SigningKey, r.ID, ts, payload))
	}

	resp, err := c.http.Do(req)
	if err != nil {
		return Response{}, failure(&Error{Retryable: true, Reason: transportReason(err), Err: err})
	}
	defer resp.Body.Close()
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))

	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		// The message was accepted even if the answer is unreadable: a
		// retry would deliver it twice.
		id, _ := ParseResponse(data)
		return Response{Status: code, MessageID: id}, nil
	case code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests:
		return Response{}, failure(&Error{
			Status:     code,
			Retryable:  true,
			RetryAfter: ParseRetryAfter(resp.Header.Get("Retry-After"), c.opts.Now()),
			Reason:     http.StatusText(code),
			Err:        readErr,
		})
	case code >= 300 && code < 400:
		return Response{}, failure(&Error{Status: code, Reason: "redirect to " + strconv.Quote(resp.Header.Get("Location")) + " not followed"})
	default:
		return Response{}, failure(&Error{Status: code, Reason: http.StatusText(code) + snippet(data)})
	}
}

// failure makes e's Reason storable whatever the receiver sent: it ends up
// in last_error and message_attempts.error, where one invalid byte would
// fail the whole batch of outcomes it is recorded with.
func failure(e *Error) *Error {
	e.Reason, _ = Storable(e.Reason, MaxReasonBytes)
	return e
}

func transportReason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	default:
		// Strip the URL net/http puts in front: it may carry credentials.
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) && ue.Unwrap() != nil {
			return ue.Unwrap().Error()
		}
		return err.Error()
	}
}

// snippet keeps a short, single-line piece of a rejection's body for
// last_error, so an operator can see why the receiver said no.
func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if s == "" {
		return ""
	}
	cut, intact := Storable(s, MaxSnippetBytes)
	if !intact && len(cut) < len(s) {
		cut += "..."
	}
	return ": " + cut
}

// ParseResponse reads the receiver's answer {"message":"Accepted",
// "messageId":"..."} and returns the messageId. It is lenient: any JSON
// object without an id, or a non-JSON body, yields "" and an error the
// caller may ignore.
func ParseResponse(b []byte) (string, error) {
	var v struct {
		MessageID json.RawMessage `json:"messageId"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return "", fmt.Errorf("parse webhook answer: %w", err)
	}
	if len(v.MessageID) == 0 || string(v.MessageID) == "null" {
		return "", errors.New("parse webhook answer: no messageId")
	}
	var s string
	if err := json.Unmarshal(v.MessageID, &s); err != nil {
		// Some receivers send numeric ids.
		var n json.Number
		if err := json.Unmarshal(v.MessageID, &n); err != nil {
			return "", errors.New("parse webhook answer: messageId is neither a string nor a number")
		}
		s = n.String()
	}
	// An id that cannot be stored as sent (a NUL, invalid UTF-8, a control
	// character, longer than the column takes) is no id at all: a cut or
	// patched one would name some other message at the provider. The JSON
	// decoder already turned invalid bytes and lone surrogates into U+FFFD.
	if _, intact := Storable(s, MaxMessageIDBytes); !intact || s == "" || strings.ContainsRune(s, utf8.RuneError) {
		return "", errors.New("parse webhook answer: messageId cannot be stored as sent")
	}
	return s, nil
}

// maxRetryAfter caps a receiver's hint so a bogus header cannot park a
// message for years.
const maxRetryAfter = 24 * time.Hour

// ParseRetryAfter reads a Retry-After header, delay-seconds or HTTP-date
// (RFC 9110 section 10.2.3), relative to now. It returns 0 when the header is
// absent or unreadable, and caps the delay at a day.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	secs, err := strconv.ParseUint(v, 10, 64)
	switch {
	case err == nil && secs <= uint64(maxRetryAfter/time.Second):
		d = time.Duration(secs) * time.Second
	case err == nil || errors.Is(err, strconv.ErrRange):
		return maxRetryAfter
	}
	if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	if d < 0 {
		return 0
	}
	return min(d, maxRetryAfter)
}
