package api_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
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
	srv := serveOnSocket(t, e)
	call := func(method, path, body string, headers ...string) (int, []byte) {
		t.Helper()
		status, _, b := srv.send(t, req{method: method, path: path, body: body, headers: headers})
		return status, b
	}

	if status, b := call(http.MethodGet, "/healthz", ""); status != 200 || !strings.Contains(string(b), "ok") {
		t.Fatalf("/healthz: %d %s", status, b)
	}
	status, b := call(http.MethodPost, "/api/v1/messages", `{"content": "over the wire", "phone_number": "+905551111111"}`,
		"Content-Type: application/json", bearer(testKey))
	if status != 201 {
		t.Fatalf("create: %d %s", status, b)
	}
	var created api.MessageCreated
	if err := json.Unmarshal(b, &created); err != nil {
		t.Fatal(err)
	}
	status, b = call(http.MethodGet, "/api/v1/messages/"+created.ID, "", bearer(testKey))
	if status != 200 || !strings.Contains(string(b), `"status":"pending"`) {
		t.Fatalf("get: %d %s", status, b)
	}

	// A body over 64 KiB is refused with our 413 and stores nothing. The
	// server answers from the declared length and closes; a client still
	// writing the body may see the reset before the answer, so these
	// requests announce the body and send the start of it only.
	big := `{"content": "` + strings.Repeat("a", api.BodyLimit) + `", "phone_number": "+905551111111"}`
	resp, b := rawPost(t, srv.addr, "/api/v1/messages", len(big), big[:64], bearer(testKey))
	wantError(t, resp.StatusCode, resp.Header, b, 413, "too_large")
	if n := e.count("TRUE"); n != 1 {
		t.Fatalf("%d messages stored, want 1", n)
	}
	// So is one just over, without auth: the limit comes first.
	resp, b = rawPost(t, srv.addr, "/api/v1/messages", api.BodyLimit+1, " ")
	wantError(t, resp.StatusCode, resp.Header, b, 413, "too_large")

	srv.stop()
	if conn, err := net.DialTimeout("tcp", srv.addr, 5*time.Second); err == nil {
		_ = conn.Close()
		t.Fatalf("the server still accepts connections after ServeListener returned")
	}
}

// rawPost sends a JSON POST that declares a body of length bytes but writes
// only start of it, and reads the answer.
func rawPost(t *testing.T, addr, path string, length int, start string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := "POST " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\n" +
		"Content-Length: " + strconv.Itoa(length) + "\r\n"
	for _, h := range headers {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"+start); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}
