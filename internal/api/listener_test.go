package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/api"
)

// The server on a real socket, spoken to by net/http: the path production
// takes, including fasthttp's own body limit, which app.Test cannot show.
func TestServeListener(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "API_KEY="+testKey, "SERVER_GRACE_PERIOD=5")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.ServeListener(ctx, ln) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("ServeListener: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("ServeListener did not return after cancel")
		}
	}
	t.Cleanup(stop)

	base := "http://" + ln.Addr().String()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	call := func(method, path, body string, headers ...string) (*http.Response, []byte) {
		t.Helper()
		r, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range headers {
			k, v, _ := strings.Cut(h, ":")
			r.Header.Set(k, strings.TrimSpace(v))
		}
		resp, err := client.Do(r)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}

	if resp, b := call(http.MethodGet, "/healthz", ""); resp.StatusCode != 200 || !strings.Contains(string(b), "ok") {
		t.Fatalf("/healthz: %d %s", resp.StatusCode, b)
	}
	resp, b := call(http.MethodPost, "/api/v1/messages", `{"content": "over the wire", "phone_number": "+905551111111"}`,
		"Content-Type: application/json", bearer(testKey))
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	var created api.MessageCreated
	if err := json.Unmarshal(b, &created); err != nil {
		t.Fatal(err)
	}
	resp, b = call(http.MethodGet, "/api/v1/messages/"+created.ID, "")
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"status":"pending"`) {
		t.Fatalf("get: %d %s", resp.StatusCode, b)
	}

	// A body over 64 KiB is refused with our 413 and stores nothing.
	big := `{"content": "` + strings.Repeat("a", api.BodyLimit) + `", "phone_number": "+905551111111"}`
	resp, b = call(http.MethodPost, "/api/v1/messages", big, "Content-Type: application/json", bearer(testKey))
	wantError(t, resp.StatusCode, resp.Header, b, 413, "too_large")
	if n := e.count("TRUE"); n != 1 {
		t.Fatalf("%d messages stored, want 1", n)
	}
	// So is one just over, without auth: the limit comes first.
	resp, b = call(http.MethodPost, "/api/v1/messages", strings.Repeat(" ", api.BodyLimit+1), "Content-Type: application/json")
	wantError(t, resp.StatusCode, resp.Header, b, 413, "too_large")

	stop()
	if _, err := client.Get(base + "/healthz"); err == nil {
		t.Fatalf("the server still answers after ServeListener returned")
	}
}
