package webhook_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/webhook"
)

// The Standard Webhooks specification's published test vector.
const (
	vecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vecID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecTS     = 1614265330
	vecBody   = `{"test": 2432232314}`
	vecSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignMatchesTheSpecVector(t *testing.T) {
	t.Parallel()
	key, err := webhook.ParseSecret(vecSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := webhook.Sign(key, vecID, time.Unix(vecTS, 0), []byte(vecBody)); got != vecSig {
		t.Fatalf("got %s, want %s", got, vecSig)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(vecTS, 0)
	header := func(mod func(http.Header)) http.Header {
		h := http.Header{}
		h.Set("webhook-id", vecID)
		h.Set("webhook-timestamp", "1614265330")
		h.Set("webhook-signature", vecSig)
		if mod != nil {
			mod(h)
		}
		return h
	}
	cases := []struct {
		name string
		h    http.Header
		body string
		now  time.Time
		ok   bool
	}{
		{"valid", header(nil), vecBody, now, true},
		{"several signatures", header(func(h http.Header) {
			h.Set("webhook-signature", "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= "+vecSig)
		}), vecBody, now, true},
		{"tampered body", header(nil), `{"test": 1}`, now, false},
		{"wrong signature", header(func(h http.Header) {
			h.Set("webhook-signature", "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=")
		}), vecBody, now, false},
		{"missing id", header(func(h http.Header) { h.Del("webhook-id") }), vecBody, now, false},
		{"too old", header(nil), vecBody, now.Add(6 * time.Minute), false},
		{"from the future", header(nil), vecBody, now.Add(-6 * time.Minute), false},
		{"bad timestamp", header(func(h http.Header) { h.Set("webhook-timestamp", "soon") }), vecBody, now, false},
	}
	for _, tc := range cases {
		err := webhook.Verify(vecSecret, tc.h, []byte(tc.body), tc.now, 5*time.Minute)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
}

func TestParseSecretRejects(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "whsec_", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!"} {
		if _, err := webhook.ParseSecret(s); err == nil {
			t.Errorf("ParseSecret(%q) accepted", s)
		}
	}
}

// Every call carries verifiable Standard Webhooks headers, with the message
// id as webhook-id on every attempt.
func TestSignedCallsVerify(t *testing.T) {
	t.Parallel()
	errs := make(chan error, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		err := webhook.Verify(vecSecret, r.Header, body, time.Now(), time.Minute)
		if err == nil && r.Header.Get("webhook-id") != "msg-42" {
			err = io.ErrUnexpectedEOF
		}
		errs <- err
	}))
	defer srv.Close()
	key, _ := webhook.ParseSecret(vecSecret)
	c := newClient(t, srv.URL, func(o *webhook.Options) { o.SigningKey = key })
	for range 2 {
		if _, err := c.Send(context.Background(), webhook.Request{ID: "msg-42", To: "+905551111111", Content: "hi"}); err != nil {
			t.Fatal(err)
		}
		if err := <-errs; err != nil {
			t.Fatalf("receiver could not verify: %v", err)
		}
	}
}
