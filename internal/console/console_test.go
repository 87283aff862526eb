package console_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/messaging-server/messaging-server/internal/console"
)

// Every automation hook the console promises is on the page or made by its
// script; the browser test presses most of them, this one checks they all
// exist (btn-cancel needs a pending row of the lifecycle list).
func TestPageHasTheHooks(t *testing.T) {
	t.Parallel()
	app := fiber.New()
	console.New(console.Deps{AppName: "Test"}).Mount(app)
	get := func(path string) string {
		resp, err := app.Test(httptest.NewRequest("GET", path, nil))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		return string(b)
	}
	page := get("/console/")
	for _, hook := range []string{"switch-state", "btn-start", "btn-stop", "messages-table", "create-form",
		"count-pending", "count-sending", "count-sent", "count-failed", "count-expired", "count-canceled", "count-suppressed"} {
		if !strings.Contains(page, `data-testid="`+hook+`"`) {
			t.Errorf("the page has no data-testid=%q", hook)
		}
	}
	script := get("/console/assets/console.js")
	for _, hook := range []string{"message-row", "btn-retry", "btn-cancel"} {
		if !strings.Contains(script, `"data-testid": "`+hook+`"`) {
			t.Errorf("the script makes no data-testid=%q", hook)
		}
	}
	if !strings.Contains(script, `"data-id": m.id`) {
		t.Errorf("rows carry no data-id")
	}
	// The SVG namespace is a name, not an address anything loads.
	all := strings.ReplaceAll(page+script+get("/console/assets/console.css"), "http://www.w3.org/2000/svg", "")
	for _, outside := range []string{"http://", "https://", "//fonts.", "//cdn"} {
		if strings.Contains(all, outside) {
			t.Errorf("the console refers to something outside (%q)", outside)
		}
	}
}
