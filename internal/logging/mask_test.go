package logging_test

import (
	"strings"
	"testing"

	"github.com/messaging-server/messaging-server/internal/logging"
)

func TestMaskPhone(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"+905551234511", "+90********11"},
		{"+14155552671", "+1********71"},
		{"+79161234567", "+7********67"},
		{"+353851234567", "+353*******67"},
		{"+4915112345678", "+49*********78"},
		{"05551234511", "*********11"},
		{"+90555", "+*****"},
		{"1234", "****"},
		{"", ""},
		{"erased", ""},
		{"+90 555 123 45 11", "+90********11"},
	}
	for _, tt := range tests {
		if got := logging.MaskPhone(tt.in); got != tt.want {
			t.Errorf("MaskPhone(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzMaskPhone: the masked form never holds more than the country code
// and 2 digits of the number, whatever the input.
func FuzzMaskPhone(f *testing.F) {
	for _, s := range []string{"+905551234511", "0555", "+1", "abc+12345678"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m := logging.MaskPhone(s)
		shown := len(m) - strings.Count(m, "*") - strings.Count(m, "+")
		if shown > 5 {
			t.Fatalf("MaskPhone(%q) = %q shows %d digits", s, m, shown)
		}
	})
}
