package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// referenceRow matches a row of docs/configuration.md's reference table:
// its first cell is one variable name in backticks.
var referenceRow = regexp.MustCompile("^\\|\\s*`([A-Z][A-Z0-9_]*)`\\s*\\|")

// TestConfigurationReferenceListsEveryVariable fails unless the variables
// docs/configuration.md documents are exactly the ones Config reads (its
// env tags, without the fields tagged env:"-"), each once.
func TestConfigurationReferenceListsEveryVariable(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join(moduleRoot(t), "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	seen := map[string]bool{}
	for line := range strings.SplitSeq(string(doc), "\n") {
		m := referenceRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if seen[m[1]] {
			t.Errorf("docs/configuration.md documents %s twice", m[1])
		}
		seen[m[1]] = true
		documented = append(documented, m[1])
	}

	var read []string
	ty := reflect.TypeFor[Config]()
	for i := range ty.NumField() {
		name, _, _ := strings.Cut(ty.Field(i).Tag.Get("env"), ",")
		if name == "" || name == "-" {
			continue
		}
		read = append(read, name)
		if !seen[name] {
			t.Errorf("docs/configuration.md does not document %s, which config.Config reads", name)
		}
	}
	for _, name := range documented {
		if !slices.Contains(read, name) {
			t.Errorf("docs/configuration.md documents %s, which config.Config does not read", name)
		}
	}
	if len(read) == 0 {
		t.Fatal("config.Config has no env tags: the test reads the wrong type")
	}
}

// TestReferenceRowPattern checks the pattern the reference test relies on,
// so that a table written another way cannot pass by matching nothing.
func TestReferenceRowPattern(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line string
		want string
	}{
		{"| `CRON_INTERVAL` | `120` | a duration | seconds between ticks |", "CRON_INTERVAL"},
		{"|`API_KEY`|(none)|any text|the key|", "API_KEY"},
		{"| variable | default | accepts | what it does |", ""},
		{"|---|---|---|---|", ""},
		{"| `POSTGRES_URI`, `REDIS_HOST` | two names |", ""},
		{"Set `CRON_INTERVAL` to 5.", ""},
		{"| `lower_case` | not a variable |", ""},
	}
	for _, tt := range tests {
		got := ""
		if m := referenceRow.FindStringSubmatch(tt.line); m != nil {
			got = m[1]
		}
		if got != tt.want {
			t.Errorf("row %q gives %q, want %q", tt.line, got, tt.want)
		}
	}
}

// moduleRoot is the folder of the go.mod above the test's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// providerRow matches a row of the per-provider table:
// | `PROVIDER_<NAME>_SUFFIX` |.
var providerRow = regexp.MustCompile("^\\|\\s*`PROVIDER_<NAME>_([A-Z][A-Z0-9_]*)`\\s*\\|")

// TestProviderVariablesAreDocumented fails unless docs/configuration.md
// documents exactly the PROVIDER_<NAME>_* suffixes ProviderVars lists,
// each once.
func TestProviderVariablesAreDocumented(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join(moduleRoot(t), "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for line := range strings.SplitSeq(string(doc), "\n") {
		if m := providerRow.FindStringSubmatch(line); m != nil {
			if slices.Contains(documented, m[1]) {
				t.Errorf("docs/configuration.md documents PROVIDER_<NAME>_%s twice", m[1])
			}
			documented = append(documented, m[1])
		}
	}
	var read []string
	for _, v := range ProviderVars {
		read = append(read, v.Suffix)
		if !slices.Contains(documented, v.Suffix) {
			t.Errorf("docs/configuration.md does not document PROVIDER_<NAME>_%s", v.Suffix)
		}
	}
	for _, s := range documented {
		if !slices.Contains(read, s) {
			t.Errorf("docs/configuration.md documents PROVIDER_<NAME>_%s, which config does not read", s)
		}
	}
}
