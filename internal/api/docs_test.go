package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/swaggo/swag"
	"github.com/swaggo/swag/gen"

	"github.com/messaging-server/messaging-server/internal/api/apidoc"
)

// docsConfig is what `make docs` runs (swag init --quiet --requiredByDefault
// -d internal/api,internal/view -g api.go -o docs), with the CLI's
// defaults for the rest, as seen from this package's directory.
func docsConfig(out string) *gen.Config {
	return &gen.Config{
		SearchDir:          ".,../view",
		MainAPIFile:        "api.go",
		OutputDir:          out,
		OutputTypes:        []string{"go", "json", "yaml"},
		PackageName:        "docs",
		PropNamingStrategy: swag.CamelCase,
		RequiredByDefault:  true,
		ParseDepth:         100,
		ParseGoList:        true,
		OverridesFile:      gen.DefaultOverridesFile,
		CollectionFormat:   "csv",
		LeftTemplateDelim:  "{{",
		RightTemplateDelim: "}}",
		Debugger:           log.New(io.Discard, "", 0),
	}
}

// docs/ must be what make docs (swag, then apidoc.Finish) makes of the
// annotations as they are.
func TestDocsAreUpToDate(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	if err := gen.New().Build(docsConfig(out)); err != nil {
		t.Fatalf("generate docs: %v", err)
	}
	// The second step of make docs.
	if err := apidoc.Finish(out); err != nil {
		t.Fatalf("finish docs: %v", err)
	}
	for _, f := range []string{"docs.go", "swagger.json", "swagger.yaml"} {
		want, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("..", "..", "docs", f))
		if err != nil {
			t.Fatalf("docs/%s: %v (run make docs)", f, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("docs/%s is stale against the annotations in internal/api: run make docs and commit the result", f)
		}
	}
}

type swaggerDoc struct {
	Paths map[string]map[string]struct {
		Parameters []struct {
			In     string          `json:"in"`
			Schema json.RawMessage `json:"schema"`
		} `json:"parameters"`
		Responses map[string]struct {
			Schema json.RawMessage `json:"schema"`
		} `json:"responses"`
		Security []map[string][]string `json:"security"`
	} `json:"paths"`
	Definitions map[string]json.RawMessage `json:"definitions"`
}

func servedDoc(t *testing.T, e *env) swaggerDoc {
	t.Helper()
	status, h, b := e.get("/swagger/doc.json")
	if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		t.Fatalf("/swagger/doc.json: %d %q", status, h.Get("Content-Type"))
	}
	var d swaggerDoc
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("/swagger/doc.json: %v", err)
	}
	return d
}

var fiberParam = regexp.MustCompile(`:(\w+)`)

// Every route the router has is in the served document and every documented
// operation is a route, with request and response schemas where they
// belong.
func TestRoutesAreDocumented(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "API_KEY="+testKey)
	doc := servedDoc(t, e)

	var routes, documented []string
	for _, r := range e.srv.App().GetRoutes(true) {
		if r.Method == http.MethodHead || strings.HasPrefix(r.Path, "/swagger") || strings.HasPrefix(r.Path, "/monitoring") || strings.HasPrefix(r.Path, "/console") {
			continue
		}
		routes = append(routes, r.Method+" "+fiberParam.ReplaceAllString(r.Path, "{$1}"))
	}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
			if len(op.Responses) == 0 {
				t.Errorf("%s %s: no responses documented", method, path)
			}
			for code, r := range op.Responses {
				// /metrics is text, and a 204 has no body.
				if (code != "200" || path != "/metrics") && code != "204" {
					if len(r.Schema) == 0 {
						t.Errorf("%s %s: response %s has no schema", method, path, code)
					}
				}
			}
			if method == "post" && len(op.Security) == 0 {
				t.Errorf("%s %s mutates but documents no security", method, path)
			}
		}
	}
	sort.Strings(routes)
	routes = slices.Compact(routes)
	sort.Strings(documented)
	if !slices.Equal(routes, documented) {
		t.Fatalf("routes and document differ:\nrouter:   %v\ndocument: %v", routes, documented)
	}
	want := []string{
		"DELETE /api/v1/opt-outs/{phone_number}",
		"GET /api/v1/messages", "GET /api/v1/messages/sent", "GET /api/v1/messages/{id}",
		"GET /api/v1/messages/{id}/attempts", "GET /api/v1/messages/{id}/events", "GET /api/v1/opt-outs", "GET /api/v1/providers", "GET /api/v1/scheduler",
		"GET /api/v1/stats/counts", "GET /api/v1/stats/minutes", "GET /healthz",
		"GET /metrics", "GET /readyz", "POST /api/v1/erasures", "POST /api/v1/events/{id}/redeliver", "POST /api/v1/inbound", "POST /api/v1/messages", "POST /api/v1/messages/batch",
		"POST /api/v1/messages/{id}/cancel", "POST /api/v1/messages/{id}/retry", "POST /api/v1/providers/{name}/enable", "POST /api/v1/receipts",
		"POST /api/v1/scheduler/start", "POST /api/v1/scheduler/stop", "POST /api/v1/sessions/revoke-all",
		"PUT /api/v1/opt-outs/{phone_number}",
	}
	if !slices.Equal(routes, want) {
		t.Fatalf("routes %v, want %v", routes, want)
	}
	create := doc.Paths["/api/v1/messages"]["post"]
	if len(create.Parameters) != 1 || create.Parameters[0].In != "body" || !strings.Contains(string(create.Parameters[0].Schema), "CreateMessageRequest") {
		t.Fatalf("POST /api/v1/messages request body: %+v", create.Parameters)
	}
	for _, def := range []string{"api.CreateMessageRequest", "api.MessageCreated", "api.MessageDetail", "api.SentPage", "api.SchedulerStatus", "api.ErrorResponse", "api.StatusCounts", "api.MinuteStats"} {
		if _, ok := doc.Definitions[def]; !ok {
			t.Errorf("definition %s missing", def)
		}
	}
}

func TestSwaggerUI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	status, h, b := e.get("/swagger/index.html")
	if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(string(b), "swagger-ui") {
		t.Fatalf("/swagger/index.html: %d %q", status, h.Get("Content-Type"))
	}
	for _, asset := range []struct{ path, ct string }{
		{"/swagger/swagger-ui.css", "text/css"},
		{"/swagger/swagger-ui-bundle.js", "javascript"},
	} {
		status, h, _ := e.get(asset.path)
		if status != 200 || !strings.Contains(h.Get("Content-Type"), asset.ct) {
			t.Fatalf("%s: %d %q", asset.path, status, h.Get("Content-Type"))
		}
	}
}
