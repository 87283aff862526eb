package config

import (
	"fmt"
	"net/url"
	"strings"
)

// Samplers are the values OTEL_TRACES_SAMPLER takes, as the OpenTelemetry
// specification names them.
var Samplers = []string{
	"always_on", "always_off", "traceidratio",
	"parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio",
}

// Attribute is one pair of OTEL_RESOURCE_ATTRIBUTES.
type Attribute struct {
	Key, Value string
}

// ParseResourceAttributes reads OTEL_RESOURCE_ATTRIBUTES as the
// specification writes it: comma-separated key=value pairs, spaces around
// keys and values ignored, values percent-encoded. Empty pairs are skipped;
// a pair without "=", with an empty key or a bad percent escape is an error.
func ParseResourceAttributes(s string) ([]Attribute, error) {
	var out []Attribute
	for pair := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("resource attribute %q: want key=value", pair)
		}
		val, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("resource attribute %q: %w", k, err)
		}
		out = append(out, Attribute{Key: k, Value: val})
	}
	return out, nil
}

// ServiceNameOr is OTEL_SERVICE_NAME, or fallback when it is unset.
func (c Config) ServiceNameOr(fallback string) string {
	if c.ServiceName != "" {
		return c.ServiceName
	}
	return fallback
}
