package api

import (
	"strings"
	"testing"
)

func FuzzDecodeReceipt(f *testing.F) {
	for _, s := range []string{`{"message_id": "r", "status": "delivered"}`, `{"message_id": "r", "status": "undelivered", "error_code": "1", "timestamp": "2026-01-01T00:00:00Z"}`, `{}`, `[]`, `{"message_id": "\ud800", "status": "delivered"}`,
		`{"message_id": "r", "status": "delivered", "error_code": "1"}`, `{"message_id": "r", "status": "delivered", "status": "undelivered"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeReceipt(b)
		if err != nil {
			return
		}
		if r.RemoteID == "" || (r.Status != "delivered" && r.Status != "undelivered") || r.Status == "delivered" && r.Error != "" ||
			strings.ContainsRune(r.RemoteID, 0xfffd) || strings.ContainsRune(r.Error, 0xfffd) {
			t.Fatalf("%q accepted as %+v", b, r)
		}
	})
}
