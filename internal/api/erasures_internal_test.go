package api

import "testing"

// FuzzDecodeErasure: any body gives a number that passes the checks or an
// error, never a panic.
func FuzzDecodeErasure(f *testing.F) {
	for _, s := range []string{`{"phone_number": "+905551111111"}`, `{}`, `{"phone_number": "erased"}`, `[`, `{"phone_number": 1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodeErasure(body)
		if err == nil && (p == "" || p == "erased" || len([]rune(p)) > maxStoredPhone) {
			t.Fatalf("decodeErasure(%q) accepted %q", body, p)
		}
	})
}
