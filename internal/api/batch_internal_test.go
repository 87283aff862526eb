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
