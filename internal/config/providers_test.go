package config_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/config"
)

func TestUnsetProvidersIsOneDefaultFromWebhook(t *testing.T) {
	t.Parallel()
	c, err := config.Load([]string{"WEBHOOK_URL=https://example.test/hook", "WEBHOOK_TIMEOUT=7", "WEBHOOK_AUTH_KEY=k"})
	if err != nil {
		t.Fatal(err)
	}
	want := []config.Provider{{Name: "default", URL: "https://example.test/hook", AuthHeader: "x-ins-auth-key", AuthKey: "k", Timeout: 7 * time.Second, Burst: 1}}
	if !slices.Equal(c.ProviderList, want) {
		t.Fatalf("providers %+v, want %+v", c.ProviderList, want)
	}
	if got := config.ChainFor(c.RouteTable, "+447700900000"); !slices.Equal(got, []string{"default"}) {
		t.Fatalf("chain %v", got)
	}
}

func TestProvidersFromTheirVariables(t *testing.T) {
	t.Parallel()
	c, err := config.Load([]string{
		"PROVIDERS=primary, backup",
		"PROVIDER_PRIMARY_URL=https://a.example.test/sms",
		"PROVIDER_BACKUP_URL=http://b.example.test:8080/x",
		"PROVIDER_BACKUP_RATE=20", "PROVIDER_BACKUP_BURST=3", "PROVIDER_BACKUP_TIMEOUT=2s",
		"PROVIDER_BACKUP_AUTH_HEADER=x-key", "PROVIDER_BACKUP_AUTH_KEY=b",
		"WEBHOOK_AUTH_KEY=fallback", "WEBHOOK_TIMEOUT=9",
		"ROUTES=+44=backup;*=primary,backup",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []config.Provider{
		{Name: "primary", URL: "https://a.example.test/sms", AuthHeader: "x-ins-auth-key", AuthKey: "fallback", Timeout: 9 * time.Second, Burst: 1},
		{Name: "backup", URL: "http://b.example.test:8080/x", AuthHeader: "x-key", AuthKey: "b", Timeout: 2 * time.Second, Rate: 20, Burst: 3},
	}
	if !slices.Equal(c.ProviderList, want) {
		t.Fatalf("providers %+v, want %+v", c.ProviderList, want)
	}
	if got := config.ChainFor(c.RouteTable, "+447700900000"); !slices.Equal(got, []string{"backup"}) {
		t.Fatalf("+44 chain %v", got)
	}
	if got := config.ChainFor(c.RouteTable, "+12025550100"); !slices.Equal(got, []string{"primary", "backup"}) {
		t.Fatalf("+1 chain %v", got)
	}
	if c.LeaseDuration() != 28*time.Second {
		t.Fatalf("lease %s: want 2 x the longest timeout + 10 s", c.LeaseDuration())
	}
}

func TestBadProviderConfigurationNamesTheVariable(t *testing.T) {
	t.Parallel()
	two := []string{"PROVIDERS=primary,backup", "PROVIDER_PRIMARY_URL=https://a.test/", "PROVIDER_BACKUP_URL=https://b.test/"}
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"unknown provider in ROUTES", append(slices.Clone(two), "ROUTES=+44=nobody"), "ROUTES"},
		{"duplicate prefix", append(slices.Clone(two), "ROUTES=+44=primary;+44=backup"), "ROUTES"},
		{"bad prefix", append(slices.Clone(two), "ROUTES=44=primary"), "ROUTES"},
		{"prefix too long", append(slices.Clone(two), "ROUTES=+1234567=primary"), "ROUTES"},
		{"missing url", []string{"PROVIDERS=primary"}, "PROVIDER_PRIMARY_URL"},
		{"bad url", []string{"PROVIDERS=primary", "PROVIDER_PRIMARY_URL=ftp://x"}, "PROVIDER_PRIMARY_URL"},
		{"bad rate", append(slices.Clone(two), "PROVIDER_BACKUP_RATE=fast"), "PROVIDER_BACKUP_RATE"},
		{"negative rate", append(slices.Clone(two), "PROVIDER_BACKUP_RATE=-1"), "PROVIDER_BACKUP_RATE"},
		{"zero burst", append(slices.Clone(two), "PROVIDER_BACKUP_BURST=0"), "PROVIDER_BACKUP_BURST"},
		{"bad timeout", append(slices.Clone(two), "PROVIDER_BACKUP_TIMEOUT=1500ms"), "PROVIDER_BACKUP_TIMEOUT"},
		{"bad secret", append(slices.Clone(two), "PROVIDER_BACKUP_SECRET=nope"), "PROVIDER_BACKUP_SECRET"},
		{"bad header", append(slices.Clone(two), "PROVIDER_BACKUP_AUTH_HEADER=a b"), "PROVIDER_BACKUP_AUTH_HEADER"},
		{"bad name", []string{"PROVIDERS=Primary"}, "PROVIDERS"},
		{"repeated name", []string{"PROVIDERS=a,a"}, "PROVIDERS"},
		{"empty providers is unset", []string{"PROVIDERS="}, "WEBHOOK_URL"},
		{"unknown provider with PROVIDERS unset", []string{"WEBHOOK_URL=https://a.test/", "ROUTES=+44=backup"}, "ROUTES"},
		{"no webhook url without providers", nil, "WEBHOOK_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(tt.env)
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Var != tt.want {
				t.Fatalf("err %v, want one naming %s", err, tt.want)
			}
			if strings.Contains(err.Error(), "https://") {
				t.Fatalf("error shows a URL: %v", err)
			}
		})
	}
}

func TestParseRoutes(t *testing.T) {
	t.Parallel()
	known := []string{"primary", "backup"}
	tests := []struct {
		in    string
		want  map[string][]string // number -> chain
		fails bool
	}{
		{"", map[string][]string{"+1": {"primary", "backup"}}, false},
		{"+44=backup", map[string][]string{"+4477": {"backup"}, "+1": {"primary", "backup"}}, false},
		{"+4=backup;+44=primary;*=backup", map[string][]string{"+4477": {"primary"}, "+49": {"backup"}, "+1": {"backup"}}, false},
		{" +1 = backup , primary ; ", map[string][]string{"+1202": {"backup", "primary"}, "+33": {"primary", "backup"}}, false},
		{"*=primary;*=backup", nil, true},
		{"+44=primary,primary", nil, true},
		{"+44=", nil, true},
		{"+=primary", nil, true},
		{"+4a=primary", nil, true},
		{"+44", nil, true},
		{"+44=other", nil, true},
	}
	for _, tt := range tests {
		routes, err := config.ParseRoutes(tt.in, known)
		if (err != nil) != tt.fails {
			t.Fatalf("ParseRoutes(%q) err %v, want failure %v", tt.in, err, tt.fails)
		}
		for num, chain := range tt.want {
			if got := config.ChainFor(routes, num); !slices.Equal(got, chain) {
				t.Errorf("ParseRoutes(%q): %s -> %v, want %v", tt.in, num, got, chain)
			}
		}
	}
}

func TestParseProviderNames(t *testing.T) {
	t.Parallel()
	ok := []string{"a", "primary,backup", "a_1, b2", strings.Repeat("x", 32)}
	bad := []string{"", "1a", "A", "a-b", "a,,b", "a,a", strings.Repeat("x", 33), "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q"}
	for _, s := range ok {
		if _, err := config.ParseProviderNames(s); err != nil {
			t.Errorf("ParseProviderNames(%q): %v", s, err)
		}
	}
	for _, s := range bad {
		if _, err := config.ParseProviderNames(s); err == nil {
			t.Errorf("ParseProviderNames(%q) accepted", s)
		}
	}
}

// FuzzParseRoutes: any text either parses into a table in which every
// number has a non-empty chain of known providers, or is refused.
func FuzzParseRoutes(f *testing.F) {
	for _, s := range []string{"", "+44=backup;*=primary,backup", "*=a", "+1=a;+1=b", "+123456=a,b;", ";;", "+=", "\x00"} {
		f.Add(s)
	}
	known := []string{"a", "b", "primary", "backup"}
	f.Fuzz(func(t *testing.T, s string) {
		routes, err := config.ParseRoutes(s, known)
		if err != nil {
			return
		}
		for _, num := range []string{"+1", "+44", "+447700900000", "+123456789"} {
			chain := config.ChainFor(routes, num)
			if len(chain) == 0 {
				t.Fatalf("%q: %s has no chain", s, num)
			}
			for _, n := range chain {
				if !slices.Contains(known, n) {
					t.Fatalf("%q: chain names %q", s, n)
				}
			}
		}
	})
}

// FuzzParseProviderNames: accepted names are valid, distinct and few.
func FuzzParseProviderNames(f *testing.F) {
	for _, s := range []string{"primary,backup", "a", "", "A", "a,a", "a, b ,c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		names, err := config.ParseProviderNames(s)
		if err != nil {
			return
		}
		if len(names) == 0 || len(names) > 16 {
			t.Fatalf("%q: %d names", s, len(names))
		}
		seen := map[string]bool{}
		for _, n := range names {
			if seen[n] || n == "" || strings.ToLower(n) != n {
				t.Fatalf("%q: bad name %q", s, n)
			}
			seen[n] = true
		}
	})
}
