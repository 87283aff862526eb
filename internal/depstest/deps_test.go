package depstest

import (
	"encoding/json"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// module is the programs' module path.
const module = "github.com/messaging-server/messaging-server"

// mustPrograms are the programs a deployment runs; the check fails if
// cmd/... no longer lists one of them, so that it cannot pass on nothing.
var mustPrograms = []string{module + "/cmd/api", module + "/cmd/worker", module + "/cmd/scheduler"}

// forbiddenModules are libraries the programs' go.mod must not require:
// River is the benchmark's peer (bench/river), compose-go and BuildKit
// parse the deployment files in deploy/deploytest.
var forbiddenModules = []string{
	"github.com/riverqueue/",
	"github.com/compose-spec/compose-go",
	"github.com/moby/buildkit",
}

// listed is one line of `go list -deps -f '{{.ImportPath}} {{join .Imports " "}}'`.
type listed struct {
	path    string
	imports []string
}

// parseList reads go list's lines into packages.
func parseList(out string) []listed {
	var pkgs []listed
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		pkgs = append(pkgs, listed{path: f[0], imports: f[1:]})
	}
	return pkgs
}

// ours tells whether path is a package of this module.
func ours(path string) bool {
	return path == module || strings.HasPrefix(path, module+"/")
}

// forbiddenImport tells why one of our linked packages may not import
// path, or "" when it may.
func forbiddenImport(path string) string {
	switch {
	case path == "testing" || strings.HasPrefix(path, "testing/"):
		return "the testing package"
	case path == module+"/internal/testenv" || path == module+"/internal/e2e":
		return "a test harness"
	case path == module+"/bench" || strings.HasPrefix(path, module+"/bench/"):
		return "the benchmark"
	}
	return ""
}

// linkViolations lists every package of this module among pkgs that is
// itself part of the benchmark or imports what a program must not link.
// Other modules' packages are not judged: a library may link testing
// (fiber's utils does), and this module cannot change that.
func linkViolations(pkgs []listed) []string {
	var v []string
	for _, p := range pkgs {
		if !ours(p.path) {
			continue
		}
		if why := forbiddenImport(p.path); why != "" {
			v = append(v, p.path+" is linked and is "+why)
		}
		for _, imp := range p.imports {
			if why := forbiddenImport(imp); why != "" {
				v = append(v, p.path+" imports "+imp+" ("+why+")")
			}
		}
	}
	return v
}

// requireViolations lists the required modules that the programs' go.mod
// must not hold.
func requireViolations(required []string) []string {
	var v []string
	for _, r := range required {
		for _, f := range forbiddenModules {
			if strings.HasPrefix(r, f) {
				v = append(v, r)
			}
		}
	}
	return v
}

func TestLinkViolations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		pkgs []listed
		want []string
	}{
		{"clean program", []listed{
			{module + "/cmd/worker", []string{"context", module + "/internal/app"}},
			{module + "/internal/app", []string{"fmt", "github.com/hibiken/asynq"}},
		}, nil},
		{"a library may import testing", []listed{
			{"github.com/gofiber/fiber/v2/utils", []string{"testing"}},
		}, nil},
		{"ours imports testing", []listed{
			{module + "/internal/store", []string{"testing"}},
		}, []string{module + "/internal/store imports testing (the testing package)"}},
		{"ours imports a testing subpackage", []listed{
			{module + "/internal/api", []string{"testing/fstest"}},
		}, []string{module + "/internal/api imports testing/fstest (the testing package)"}},
		{"ours imports testenv", []listed{
			{module + "/cmd/sink", []string{module + "/internal/testenv"}},
		}, []string{module + "/cmd/sink imports " + module + "/internal/testenv (a test harness)"}},
		{"ours imports the benchmark", []listed{
			{module + "/cmd/api", []string{module + "/bench/internal/bench"}},
		}, []string{module + "/cmd/api imports " + module + "/bench/internal/bench (the benchmark)"}},
		{"a benchmark package is linked", []listed{
			{module + "/bench", []string{"os"}},
		}, []string{module + "/bench is linked and is the benchmark"}},
		{"a name that only starts like ours", []listed{
			{module + "-fork/x", []string{"testing"}},
		}, nil},
		{"benchmarks is not bench", []listed{
			{module + "/internal/benchmarks", []string{"os"}},
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := linkViolations(tt.pkgs); !slices.Equal(got, tt.want) {
				t.Errorf("linkViolations = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRequireViolations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		required, want []string
	}{
		{[]string{"github.com/hibiken/asynq", "github.com/jackc/pgx/v5"}, nil},
		{[]string{"github.com/riverqueue/river", "github.com/riverqueue/river/riverdriver/riverpgxv5"},
			[]string{"github.com/riverqueue/river", "github.com/riverqueue/river/riverdriver/riverpgxv5"}},
		{[]string{"github.com/compose-spec/compose-go/v2"}, []string{"github.com/compose-spec/compose-go/v2"}},
		{[]string{"github.com/moby/buildkit"}, []string{"github.com/moby/buildkit"}},
		{[]string{"github.com/moby/patternmatcher"}, nil},
	}
	for _, tt := range tests {
		if got := requireViolations(tt.required); !slices.Equal(got, tt.want) {
			t.Errorf("requireViolations(%q) = %q, want %q", tt.required, got, tt.want)
		}
	}
}

// goCmd runs the go command in this package's directory, inside the
// programs' module, and returns its standard output.
func goCmd(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", args...)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

// TestProgramsLinkNoTestCode lists every program under cmd/ with all it
// links and fails when a package of this module among them imports
// testing, internal/testenv or the benchmark. Third-party packages that
// link testing are logged.
func TestProgramsLinkNoTestCode(t *testing.T) {
	t.Parallel()
	programs := strings.Fields(goCmd(t, "list", "-f", `{{if eq .Name "main"}}{{.ImportPath}}{{end}}`, module+"/cmd/..."))
	for _, p := range mustPrograms {
		if !slices.Contains(programs, p) {
			t.Fatalf("go list %s/cmd/... = %q, missing %s", module, programs, p)
		}
	}
	pkgs := parseList(goCmd(t, append([]string{"list", "-deps", "-f", `{{.ImportPath}} {{join .Imports " "}}`}, programs...)...))
	var linked []string
	var third []string
	for _, p := range pkgs {
		linked = append(linked, p.path)
		if !ours(p.path) && slices.Contains(p.imports, "testing") {
			third = append(third, p.path)
		}
	}
	// The list must hold the programs and what they are built on, or the
	// check below would pass on nothing.
	for _, p := range append(slices.Clone(mustPrograms), module+"/internal/config") {
		if !slices.Contains(linked, p) {
			t.Fatalf("go list -deps does not list %s; got %d packages", p, len(linked))
		}
	}
	for _, v := range linkViolations(pkgs) {
		t.Error(v)
	}
	t.Logf("%d packages linked by %s; other modules' packages importing testing: %q", len(pkgs), programs, third)
}

// TestGoModRequiresNoBenchOrDeployLibraries reads the programs' go.mod
// (go mod edit -json) and fails when it requires River, compose-go or
// BuildKit.
func TestGoModRequiresNoBenchOrDeployLibraries(t *testing.T) {
	t.Parallel()
	var mod struct {
		Module  struct{ Path string }
		Require []struct{ Path string }
	}
	if err := json.Unmarshal([]byte(goCmd(t, "mod", "edit", "-json")), &mod); err != nil {
		t.Fatalf("go mod edit -json: %v", err)
	}
	if mod.Module.Path != module || len(mod.Require) == 0 {
		t.Fatalf("go.mod of %q with %d requirements: not the programs' go.mod", mod.Module.Path, len(mod.Require))
	}
	var required []string
	for _, r := range mod.Require {
		required = append(required, r.Path)
	}
	for _, v := range requireViolations(required) {
		t.Errorf("go.mod requires %s, which only the bench or deploy module may", v)
	}
}
