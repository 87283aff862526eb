package callback

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/messaging-server/messaging-server/internal/metrics"
	"github.com/messaging-server/messaging-server/internal/retry"
	"github.com/messaging-server/messaging-server/internal/store"
	"github.com/messaging-server/messaging-server/internal/view"
	"github.com/messaging-server/messaging-server/internal/webhook"
)

// Store is what the sender needs of the database.
type Store interface {
	ClaimEvents(ctx context.Context, limit int, lease time.Duration, withDefault bool) ([]store.ClaimedEvent, error)
	RecordEvents(ctx context.Context, outs []store.EventOutcome) (map[string]bool, error)
	PendingEvents(ctx context.Context) (int64, error)
}

var _ Store = (*store.Store)(nil)

// Timing of the sender.
const (
	// pollMin and pollMax bound the wait between claims while nothing is
	// due: it doubles from pollMin after each empty claim, up to pollMax.
	pollMin = 25 * time.Millisecond
	pollMax = time.Second
	// recordTimeout bounds one statement recording an outcome; it runs
	// with a fresh context, so a stopping worker still records.
	recordTimeout = 5 * time.Second
	// recordBatch bounds the outcomes one record statement writes.
	recordBatch = 256
	// gaugeEvery is how often the pending gauge is counted.
	gaugeEvery = 5 * time.Second
)

// Config is what the sender does.
type Config struct {
	// URL receives the events of messages without their own
	// status_callback; empty: only those with their own are sent.
	URL string
	// Key signs every call (webhook-signature) when set.
	Key []byte
	// Schedule spaces the calls of an event that was not accepted.
	Schedule retry.Schedule
	// Concurrency is how many requests may be in flight.
	Concurrency int
	// Timeout bounds one request, connection to last byte.
	Timeout time.Duration
	// Lease is how long a claimed event stays reserved: one request with
	// room to record its outcome. A killed worker's events go out again
	// after it, with the same webhook-id.
	Lease time.Duration
}

// Signals tell a test what the sender does; nil channels (production)
// are no-ops, and a full channel drops the signal.
type Signals struct {
	// Recorded hears each outcome once its statement is settled.
	Recorded chan store.EventOutcome
	// RecordFailed hears each record statement that failed.
	RecordFailed chan error
}

// Deps are the sender's dependencies.
type Deps struct {
	Config  Config
	Store   Store
	Log     *slog.Logger
	Metrics *metrics.Callback
	Signals *Signals
	// Client makes the requests; nil: one of the sender's own, with
	// Config.Timeout and no redirects followed.
	Client *http.Client
}

// Sender claims due events and POSTs them, at most Concurrency at a time.
// It takes no delivery slot, no tick budget and no breaker: message
// delivery does not wait for it.
type Sender struct {
	cfg     Config
	store   Store
	log     *slog.Logger
	m       *metrics.Callback
	signals *Signals
	client  *http.Client
	kick    chan struct{}
	// outs carries the outcomes of finished calls to the one recorder,
	// which writes what has gathered in one statement: the sender holds
	// at most two connections (a claim and a record), however many calls
	// are in flight, and leaves the rest of the pool to delivery.
	outs chan recorded
	// failing is set while a record statement fails: the sender then
	// claims nothing and starts no call, since their outcomes could not
	// be written either.
	failing atomic.Bool
}

// recorded is an outcome to write, with the event it is of.
type recorded struct {
	ev store.ClaimedEvent
	o  store.EventOutcome
	// claimed is when the claim that leased ev returned.
	claimed time.Time
}

// New builds a Sender over d.
func New(d Deps) *Sender {
	client := d.Client
	if client == nil {
		client = &http.Client{
			Timeout: d.Config.Timeout,
			Transport: &http.Transport{
				Proxy:               http.ProxyFromEnvironment,
				MaxIdleConnsPerHost: max(d.Config.Concurrency, 2),
				IdleConnTimeout:     90 * time.Second,
			},
			// A redirect is not an acceptance: 3xx is retried like any
			// other answer, and the event is never sent to a host
			// nobody allowed.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	signals := d.Signals
	if signals == nil {
		signals = &Signals{}
	}
	return &Sender{
		cfg: d.Config, store: d.Store, log: d.Log, m: d.Metrics,
		signals: signals, client: client, kick: make(chan struct{}, 1),
		outs: make(chan recorded, max(d.Config.Concurrency, 1)),
	}
}

// Body is a status callback's JSON body, in Standard Webhooks form.
type Body struct {
	Type string `json:"type"`
	// Timestamp is when the change happened, RFC 3339 in UTC.
	Timestamp string             `json:"timestamp"`
	Data      view.MessageDetail `json:"data"`
}

// BodyOf renders ev's body: the message exactly as the API showed it right
// after the change.
func BodyOf(ev store.ClaimedEvent) ([]byte, error) {
	b, err := json.Marshal(Body{
		Type: ev.Type, Timestamp: ev.CreatedAt.UTC().Format(time.RFC3339Nano), Data: view.Detail(ev.Message),
	})
	if err != nil {
		return nil, fmt.Errorf("render event %s: %w", ev.ID, err)
	}
	return b, nil
}

// Run claims and sends until ctx ends, then lets the requests in flight
// finish (each within Config.Timeout) and records their outcomes before it
// returns.
func (s *Sender) Run(ctx context.Context) {
	recorderDone := make(chan struct{})
	go func() {
		defer close(recorderDone)
		s.recorder(ctx)
	}()
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		close(s.outs)
		<-recorderDone
	}()
	slots := make(chan struct{}, max(s.cfg.Concurrency, 1))
	wait := pollMin
	var counted time.Time
	for ctx.Err() == nil {
		if time.Since(counted) >= gaugeEvery {
			counted = time.Now()
			s.countPending(ctx)
		}
		if s.failing.Load() {
			// A call whose outcome cannot be recorded is never started:
			// wait until the recorder writes again.
			s.pause(ctx, pollMax)
			continue
		}
		free := cap(slots) - len(slots)
		if free < (cap(slots)+1)/2 {
			// Claim in batches: wait until half the slots are free, so
			// that a busy sender makes one claim per several events.
			s.pause(ctx, pollMax)
			continue
		}
		evs, err := s.store.ClaimEvents(ctx, free, s.cfg.Lease, s.cfg.URL != "")
		claimed := time.Now()
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("claim status callback events", "err", err)
			}
			wait = min(max(wait*2, 100*time.Millisecond), pollMax)
		}
		for _, ev := range evs {
			slots <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.send(ctx, ev, claimed)
				<-slots
			}()
		}
		switch {
		case len(evs) == free:
			wait = pollMin
			continue // more may be due: claim again at once
		case len(evs) > 0:
			wait = pollMin
		}
		s.pause(ctx, wait)
		wait = min(wait*2, pollMax)
	}
}

// pause waits d, or less when outcomes were recorded (slots are free, and
// their messages' next events may be due now) or ctx ends.
func (s *Sender) pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.kick:
	case <-ctx.Done():
	}
}

func (s *Sender) countPending(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	n, err := s.store.PendingEvents(cctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("count pending status callback events", "err", err)
		}
		return
	}
	s.m.Pending(n)
}

// send makes one call for ev and records its outcome. The call runs to
// its end even when ctx ends (it is bounded by Config.Timeout), so a stopping
// worker records what it started.
func (s *Sender) send(ctx context.Context, ev store.ClaimedEvent, claimed time.Time) {
	if ev.Attempts == 1 {
		s.m.Started(ev.Type)
	}
	url := ev.URL
	if url == "" {
		url = s.cfg.URL
	}
	code, callErr := s.call(context.WithoutCancel(ctx), url, ev)
	d := Decide(code, callErr, ev.Round, s.cfg.Schedule, rand.Float64()) //nolint:gosec // jitter, not a secret
	o := store.EventOutcome{ID: ev.ID, Attempt: ev.Attempts, Status: d.Status, Error: d.Reason}
	if d.Status == store.EventPending {
		o.NextAt = time.Now().Add(d.Delay)
	}
	s.outs <- recorded{ev: ev, o: o, claimed: claimed}
}

// call POSTs ev to url and answers the HTTP status.
func (s *Sender) call(ctx context.Context, url string, ev store.ClaimedEvent) (int, error) {
	body, err := BodyOf(ev)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("status callback request: %w", err)
	}
	now := time.Now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.HeaderID, ev.ID)
	req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	if len(s.cfg.Key) > 0 {
		req.Header.Set(webhook.HeaderSignature, webhook.Sign(s.cfg.Key, ev.ID, now, body))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // reuse the connection
	return resp.StatusCode, nil
}

// recorder writes the outcomes the calls hand it, in batches, until outs
// is closed.
func (s *Sender) recorder(ctx context.Context) {
	for first := range s.outs {
		batch := []recorded{first}
	gather:
		for len(batch) < recordBatch {
			select {
			case r, ok := <-s.outs:
				if !ok {
					break gather
				}
				batch = append(batch, r)
			default:
				break gather
			}
		}
		s.record(ctx, batch)
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// record writes a batch with a fresh bounded context (so a stopping worker
// still records what it started). A failed statement is tried again with
// retry.WriteWait's backoff until retry.LeaseDeadline of the batch's
// earliest claim; meanwhile the sender starts no call. When no try worked the events
// go out again after their lease, with the same webhook-id.
func (s *Sender) record(ctx context.Context, batch []recorded) {
	outs := make([]store.EventOutcome, len(batch))
	giveUp := batch[0].claimed
	for i, r := range batch {
		outs[i] = r.o
		if r.claimed.Before(giveUp) {
			giveUp = r.claimed
		}
	}
	giveUp = retry.LeaseDeadline(giveUp, s.cfg.Lease)
	defer func() {
		for _, r := range batch {
			select {
			case s.signals.Recorded <- r.o:
			default:
			}
		}
	}()
	var held map[string]bool
	backoff := retry.WriteFirst
	for {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		var err error
		held, err = s.store.RecordEvents(rctx, outs)
		cancel()
		if err == nil {
			if s.failing.Swap(false) {
				s.log.Info("status callback outcomes are recorded again: calls resume")
			}
			break
		}
		select {
		case s.signals.RecordFailed <- err:
		default:
		}
		if !s.failing.Swap(true) {
			s.log.Error("record status callback outcomes: no call starts until a record works", "count", len(batch), "err", err)
		}
		var wait time.Duration
		wait, backoff = retry.WriteWait(backoff, rand.Float64()) //nolint:gosec // jitter, not a secret
		if ctx.Err() != nil || time.Now().Add(wait).After(giveUp) {
			// Given up (or stopping): these events go out again after
			// their lease. The sender may claim again, so a fault that
			// outlasts a lease costs at most Concurrency repeated calls
			// per lease, each with the same webhook-id.
			s.failing.Store(false)
			s.log.Error("record status callback outcomes: the events go out again after their lease", "count", len(batch), "err", err)
			return
		}
		t := time.NewTimer(wait)
		<-t.C
	}
	for _, r := range batch {
		ev, o := r.ev, r.o
		if !held[o.ID] {
			s.m.Delivery("lost")
			s.log.Warn("status callback outcome not recorded: the lease ran out and another claim holds the event", "event", ev.ID)
			continue
		}
		outcome := map[string]string{store.EventDelivered: "accepted", store.EventPending: "retried", store.EventFailed: "failed"}[o.Status]
		s.m.Delivery(outcome)
		if o.Status != store.EventDelivered {
			s.log.Warn("status callback not accepted", "event", ev.ID, "message_id", ev.MessageID, "type", ev.Type,
				"reason", o.Error, "outcome", outcome, "attempts", ev.Attempts)
		}
	}
}
