package config

// Several providers: PROVIDERS names them in order of preference, each
// reads its own PROVIDER_<NAME>_* variables (falling back to WEBHOOK_*),
// and ROUTES maps number prefixes to chains of them.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/messaging-server/messaging-server/internal/messaging"
)

// ProviderVars are the per-provider variables, PROVIDER_<NAME>_ followed
// by each suffix, with the sentence an operator sees when one is rejected.
var ProviderVars = []struct{ Suffix, Accepts string }{
	{"URL", "an absolute http or https URL (required for every name in PROVIDERS)"},
	{"SECRET", "whsec_ followed by base64 (Standard Webhooks); unset: WEBHOOK_SECRET"},
	{"AUTH_HEADER", "an HTTP header name; unset: WEBHOOK_AUTH_HEADER"},
	{"AUTH_KEY", "any text; unset: WEBHOOK_AUTH_KEY"},
	{"TIMEOUT", "whole seconds or a Go duration, from 1s to 5m, in whole seconds; unset: WEBHOOK_TIMEOUT"},
	{"RATE", "a whole number from 0 to 100000: calls per second over every worker (0: no limit)"},
	{"BURST", "a whole number from 1 to 100000: calls that may go out at once above the rate"},
}

// Provider is one receiving system messages are sent to.
type Provider struct {
	Name       string
	URL        string
	Secret     string
	AuthHeader string
	AuthKey    string
	Timeout    time.Duration
	// Rate is the most calls per second, summed over every worker; 0 is
	// no limit. Burst is how many may go out at once above it.
	Rate, Burst int
}

// Route sends numbers starting with Prefix ("+44", or "*" for every
// other number) to Chain, tried in order.
type Route struct {
	Prefix string
	Chain  []string
}

// maxProviders bounds PROVIDERS: a chain is tried in turn within a round.
const maxProviders = 16

// ParseProviderNames reads PROVIDERS: comma-separated names, each
// [a-z][a-z0-9_]{0,31}, no repeats, 1 to 16 of them.
func ParseProviderNames(s string) ([]string, error) {
	var names []string
	seen := map[string]bool{}
	for n := range strings.SplitSeq(s, ",") {
		n = strings.TrimSpace(n)
		if !providerName(n) {
			return nil, fmt.Errorf("%q is not a provider name", n)
		}
		if seen[n] {
			return nil, fmt.Errorf("%q is named twice", n)
		}
		seen[n] = true
		names = append(names, n)
	}
	if len(names) > maxProviders {
		return nil, fmt.Errorf("%d providers: at most %d", len(names), maxProviders)
	}
	return names, nil
}

// providerName accepts [a-z][a-z0-9_]{0,31}.
func providerName(s string) bool {
	if s == "" || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}

// ParseRoutes reads ROUTES: semicolon-separated <prefix>=<name>[,<name>...]
// rules, a prefix being + and 1 to 6 digits, or *. Every name must be in
// known, no prefix may repeat, and no chain may name a provider twice. A
// table without * gets *= every known provider, in order, so that every
// number has a chain; an empty s is that default alone.
func ParseRoutes(s string, known []string) ([]Route, error) {
	var routes []Route
	seen := map[string]bool{}
	if strings.TrimSpace(s) != "" {
		for rule := range strings.SplitSeq(s, ";") {
			rule = strings.TrimSpace(rule)
			if rule == "" {
				continue // a trailing semicolon
			}
			prefix, list, ok := strings.Cut(rule, "=")
			prefix = strings.TrimSpace(prefix)
			if !ok || !routePrefix(prefix) {
				return nil, fmt.Errorf("rule %q: want <prefix>=<name>[,<name>...] with a prefix of + and 1 to 6 digits, or *", rule)
			}
			if seen[prefix] {
				return nil, fmt.Errorf("prefix %s appears twice", prefix)
			}
			seen[prefix] = true
			r := Route{Prefix: prefix}
			inChain := map[string]bool{}
			for n := range strings.SplitSeq(list, ",") {
				n = strings.TrimSpace(n)
				if !slices.Contains(known, n) {
					return nil, fmt.Errorf("rule %q names %q, which is not in PROVIDERS", rule, n)
				}
				if inChain[n] {
					return nil, fmt.Errorf("rule %q names %q twice", rule, n)
				}
				inChain[n] = true
				r.Chain = append(r.Chain, n)
			}
			routes = append(routes, r)
		}
	}
	if !seen["*"] {
		routes = append(routes, Route{Prefix: "*", Chain: append([]string(nil), known...)})
	}
	return routes, nil
}

func routePrefix(p string) bool {
	if p == "*" {
		return true
	}
	digits, ok := strings.CutPrefix(p, "+")
	return ok && len(digits) >= 1 && len(digits) <= 6 && strings.Trim(digits, "0123456789") == ""
}

// ChainFor is the chain of the longest prefix of ROUTES that the E.164
// number to starts with, else the * rule's.
func ChainFor(routes []Route, to string) []string {
	var best []string
	bestLen := -1
	for _, r := range routes {
		switch {
		case r.Prefix == "*":
			if bestLen < 0 {
				best, bestLen = r.Chain, 0
			}
		case strings.HasPrefix(to, r.Prefix) && len(r.Prefix) > bestLen:
			best, bestLen = r.Chain, len(r.Prefix)
		}
	}
	return best
}

// loadProviders builds the provider list and the route table: one provider
// named default from WEBHOOK_* when PROVIDERS is unset, else one per name
// from its PROVIDER_<NAME>_* variables.
func (c *Config) loadProviders(vars map[string]string) error {
	// Empty is unset, as a deployment passes an unused variable (the
	// compose file's ${PROVIDERS:-}).
	raw := vars["PROVIDERS"]
	if strings.TrimSpace(raw) == "" {
		c.ProviderList = []Provider{{
			Name: messaging.DefaultProvider, URL: c.WebhookURL, Secret: c.WebhookSecret, AuthHeader: c.WebhookAuthHeader,
			AuthKey: c.WebhookAuthKey, Timeout: c.WebhookTimeout, Burst: 1,
		}}
		if strings.TrimSpace(c.Routes) != "" {
			routes, err := ParseRoutes(c.Routes, []string{messaging.DefaultProvider})
			if err != nil {
				return &Error{Var: "ROUTES", Value: c.Routes, Accepts: routesAccepts + ": " + err.Error()}
			}
			c.RouteTable = routes
		} else {
			c.RouteTable = []Route{{Prefix: "*", Chain: []string{messaging.DefaultProvider}}}
		}
		return nil
	}
	names, err := ParseProviderNames(raw)
	if err != nil {
		return &Error{Var: "PROVIDERS", Value: raw, Accepts: providersAccepts}
	}
	c.ProviderList = nil
	for _, n := range names {
		p, err := loadProvider(c, vars, n)
		if err != nil {
			return err
		}
		c.ProviderList = append(c.ProviderList, p)
	}
	routes, err := ParseRoutes(c.Routes, names)
	if err != nil {
		return &Error{Var: "ROUTES", Value: c.Routes, Accepts: routesAccepts + ": " + err.Error()}
	}
	c.RouteTable = routes
	return nil
}

const (
	providersAccepts = "comma-separated provider names, each [a-z][a-z0-9_]{0,31}, no repeats, at most 16"
	routesAccepts    = "semicolon-separated <prefix>=<name>[,<name>...] rules, a prefix being + and 1 to 6 digits or *, each prefix once, every name in PROVIDERS"
)

// ProviderVar is the variable of provider name with suffix (URL, RATE...).
func ProviderVar(name, suffix string) string {
	return "PROVIDER_" + strings.ToUpper(name) + "_" + suffix
}

func providerAccepts(suffix string) string {
	for _, v := range ProviderVars {
		if v.Suffix == suffix {
			return v.Accepts
		}
	}
	return ""
}

// loadProvider reads one provider's variables; each unset one but URL,
// RATE and BURST falls back to its WEBHOOK_* counterpart.
func loadProvider(c *Config, vars map[string]string, name string) (Provider, error) {
	p := Provider{
		Name: name, Secret: c.WebhookSecret, AuthHeader: c.WebhookAuthHeader, AuthKey: c.WebhookAuthKey,
		Timeout: c.WebhookTimeout, Burst: 1,
	}
	bad := func(suffix, value string, secret bool) error {
		if secret && value != "" {
			value = "(hidden)"
		}
		return &Error{Var: ProviderVar(name, suffix), Value: value, Accepts: providerAccepts(suffix)}
	}
	get := func(suffix string) (string, bool, error) {
		v, set := vars[ProviderVar(name, suffix)]
		if set && strings.TrimSpace(v) == "" {
			return "", false, bad(suffix, v, false)
		}
		return v, set, nil
	}
	u, set, err := get("URL")
	if err != nil {
		return p, err
	}
	if !set || !httpURL(u) {
		return p, bad("URL", u, true)
	}
	p.URL = u
	if v, set, err := get("SECRET"); err != nil {
		return p, err
	} else if set {
		if !webhookSecret(v) {
			return p, bad("SECRET", v, true)
		}
		p.Secret = v
	}
	if v, set, err := get("AUTH_HEADER"); err != nil {
		return p, err
	} else if set {
		if !headerName(v) {
			return p, bad("AUTH_HEADER", v, false)
		}
		p.AuthHeader = v
	}
	if v, set, err := get("AUTH_KEY"); err != nil {
		return p, err
	} else if set {
		p.AuthKey = v
	}
	if v, set, err := get("TIMEOUT"); err != nil {
		return p, err
	} else if set {
		d, err := ParseDuration(v)
		if err != nil || !seconds(d, time.Second, 5*time.Minute) {
			return p, bad("TIMEOUT", v, false)
		}
		p.Timeout = d
	}
	for _, f := range []struct {
		suffix string
		dst    *int
		lo     int
	}{{"RATE", &p.Rate, 0}, {"BURST", &p.Burst, 1}} {
		v, set, err := get(f.suffix)
		if err != nil {
			return p, err
		}
		if !set {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || !between(n, f.lo, 100000) {
			return p, bad(f.suffix, v, false)
		}
		*f.dst = n
	}
	return p, nil
}

// ProviderNames lists the providers' names in PROVIDERS order.
func (c Config) ProviderNames() []string {
	out := make([]string, len(c.ProviderList))
	for i, p := range c.ProviderList {
		out[i] = p.Name
	}
	return out
}

// MaxProviderTimeout is the longest call any provider may take.
func (c Config) MaxProviderTimeout() time.Duration {
	d := c.WebhookTimeout
	for _, p := range c.ProviderList {
		d = max(d, p.Timeout)
	}
	return d
}
