package api

import (
	"testing"
)

func FuzzDecodeBatch(f *testing.F) {
	for _, s := range []string{`{"messages": [{"content": "a", "phone_number": "+905551111111"}]}`, `{"messages": []}`, `{"messages": [1]}`, `{}`, `{"messages": null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, bad, err := decodeBatch(b)
		if err == nil && (len(rs) < 1 || len(rs) > MaxBatch || len(bad) > len(rs)) {
			t.Fatalf("%q accepted with %d items", b, len(rs))
		}
	})
}

func TestTracedPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path string
		want bool
	}{
		{"/api/v1/messages", true},
		{"/api/v1/messages/batch", true},
		{"/api/v1/messages/abc/attempts", true},
		{"/api/v1/erasures", true},
		{"/api/v1/opt-outs", false},
		{"/api/v1/opt-outs/+905551234567", false},
		{"/healthz", false},
		{"/metrics", false},
		{"/monitoring/api/queues", false},
		{"/swagger/index.html", false},
		{"/", false},
	}
	for _, tt := range tests {
		if got := tracedPath(tt.path); got != tt.want {
			t.Errorf("tracedPath(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}
