package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseResourceAttributes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    []Attribute
		wantErr bool
	}{
		{"", nil, false},
		{"deployment.environment=prod", []Attribute{{"deployment.environment", "prod"}}, false},
		{" a = 1 , b=two%20words,,", []Attribute{{"a", "1"}, {"b", "two words"}}, false},
		{"k=", []Attribute{{"k", ""}}, false},
		{"k=a=b", []Attribute{{"k", "a=b"}}, false},
		{"novalue", nil, true},
		{"=v", nil, true},
		{"k=%zz", nil, true},
	}
	for _, tt := range tests {
		got, err := ParseResourceAttributes(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseResourceAttributes(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseResourceAttributes(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func FuzzParseResourceAttributes(f *testing.F) {
	for _, s := range []string{"", "a=b", "a=%20,b=c", "=", "a=%zz", ",,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseResourceAttributes(s)
		if err != nil {
			return
		}
		for _, a := range got {
			if a.Key == "" || strings.TrimSpace(a.Key) != a.Key || strings.Contains(a.Key, ",") {
				t.Fatalf("ParseResourceAttributes(%q) gave key %q", s, a.Key)
			}
		}
	})
}

func TestLoadTracing(t *testing.T) {
	t.Parallel()
	base := []string{"WEBHOOK_URL=http://127.0.0.1:1/hook", "POSTGRES_URI=postgres://u@127.0.0.1/db"}
	tests := []struct {
		env     []string
		wantVar string // the variable the error names; empty: accepted
	}{
		{nil, ""},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"}, ""},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL=grpc"}, ""},
		{[]string{"OTEL_EXPORTER_OTLP_PROTOCOL=http/json"}, "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=collector:4317"}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{[]string{"OTEL_TRACES_SAMPLER=sometimes"}, "OTEL_TRACES_SAMPLER"},
		{[]string{"OTEL_TRACES_SAMPLER=traceidratio", "OTEL_TRACES_SAMPLER_ARG=0.25"}, ""},
		{[]string{"OTEL_TRACES_SAMPLER_ARG=2"}, "OTEL_TRACES_SAMPLER_ARG"},
		{[]string{"OTEL_RESOURCE_ATTRIBUTES=a=1,b"}, "OTEL_RESOURCE_ATTRIBUTES"},
		{[]string{"OTEL_RESOURCE_ATTRIBUTES=a=1,b=2", "OTEL_SERVICE_NAME=sms"}, ""},
	}
	for _, tt := range tests {
		_, err := Load(append(append([]string{}, base...), tt.env...))
		if tt.wantVar == "" {
			if err != nil {
				t.Errorf("Load(%v) = %v, want no error", tt.env, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantVar) {
			t.Errorf("Load(%v) = %v, want an error naming %s", tt.env, err, tt.wantVar)
		}
	}
}
