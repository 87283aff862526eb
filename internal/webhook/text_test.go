package webhook_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/messaging-server/messaging-server/internal/webhook"
)

func TestStorable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		in     string
		limit  int
		want   string
		intact bool
	}{
		{"plain", "abc", 10, "abc", true},
		{"empty", "", 10, "", true},
		{"exactly the limit", "abcde", 5, "abcde", true},
		{"ascii cut", "abcdef", 5, "abcde", false},
		{"NUL", "a\x00b", 10, "a\uFFFDb", false},
		{"control", "a\x1bb\x7f", 10, "a\uFFFDb\uFFFD", false},
		{"newline is a control", "a\nb", 10, "a\uFFFDb", false},
		{"latin-1", "caf\xe9", 10, "caf\uFFFD", false},
		{"invalid bytes each replaced", "\xff\xfe", 10, "\uFFFD\uFFFD", false},
		{"surrogate half encoded", "\xed\xa0\x80", 20, "\uFFFD\uFFFD\uFFFD", false},
		{"multibyte kept whole", "éé", 4, "éé", true},
		{"multibyte not split", "ééé", 5, "éé", false},
		{"multibyte not split, limit 1", "é", 1, "", false},
		{"200 é over 255 bytes", strings.Repeat("é", 200), 255, strings.Repeat("é", 127), false},
		{"replacement cut whole", "a\x00", 3, "a", false},
		{"literal U+FFFD kept", "a\uFFFD", 10, "a\uFFFD", true},
		{"zero limit", "abc", 0, "", false},
		{"negative limit", "abc", -1, "", false},
		{"turkish", "Geçersiz alıcı", 100, "Geçersiz alıcı", true},
	}
	for _, tc := range cases {
		got, intact := webhook.Storable(tc.in, tc.limit)
		if got != tc.want || intact != tc.intact {
			t.Errorf("%s: Storable(%q, %d) = %q, %v; want %q, %v", tc.name, tc.in, tc.limit, got, intact, tc.want, tc.intact)
		}
	}
}

// FuzzStorable: whatever the input, the output is valid UTF-8 without NUL
// or other control characters, within the limit, a prefix of the uncut
// cleaned text cut as late as a character boundary allows, and the input
// itself when nothing had to change.
func FuzzStorable(f *testing.F) {
	for _, s := range []string{"abc", "a\x00b", "caf\xe9", strings.Repeat("é", 200), "\xed\xa0\x80", "Geçersiz", ""} {
		f.Add(s, 255)
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, s string, limit int) {
		limit %= 1 << 16
		got, intact := webhook.Storable(s, limit)
		full, fullIntact := webhook.Storable(s, len(s)*3+3)
		if !utf8.ValidString(got) || strings.ContainsRune(got, 0) {
			t.Fatalf("Storable(%q, %d) = %q: not storable", s, limit, got)
		}
		for _, r := range got {
			if r < 0x20 || (r >= 0x7f && r < 0xa0) {
				t.Fatalf("Storable(%q, %d) = %q holds control %U", s, limit, got, r)
			}
		}
		if len(got) > max(limit, 0) || !strings.HasPrefix(full, got) {
			t.Fatalf("Storable(%q, %d) = %q: not a prefix of %q within the limit", s, limit, got, full)
		}
		if len(got) < len(full) && len(got)+utf8.UTFMax <= limit {
			t.Fatalf("Storable(%q, %d) = %q: cut earlier than needed", s, limit, got)
		}
		if intact != (got == s) || (fullIntact && !strings.HasPrefix(s, got)) {
			t.Fatalf("Storable(%q, %d) = %q, intact %v", s, limit, got, intact)
		}
	})
}

// turkishError is a 212-byte JSON error whose byte 200 is inside a
// character, so a byte cut at 200 leaves invalid UTF-8.
func turkishError(t *testing.T) string {
	t.Helper()
	s := `{"hata":"Geçersiz alıcı numarası; mesaj gönderilemedi. Lütfen numarayı kontrol edip yeniden deneyin. Şikâyetleriniz için müşteri hizmetlerimizi arayınız: çağrı merkezi ğüşiöç ĞÜŞİÖÇ!"}`
	if len(s) != 212 {
		t.Fatalf("fixture is %d bytes", len(s))
	}
	if utf8.RuneStart(s[200]) || !utf8.ValidString(s) {
		t.Fatalf("fixture byte 200 is %#x: not mid-character", s[200])
	}
	return s
}

// Whatever a receiver answers, what Send returns for storing (the
// messageId, the error text) is valid UTF-8 without NUL within its bound;
// an id that cannot be stored as sent is dropped, and the call still counts
// as accepted.
func TestHostileAnswersAreStorable(t *testing.T) {
	t.Parallel()
	tenMiB := strings.Repeat("\x00\xe9x", 10<<20/3)
	cases := []struct {
		name   string
		status int
		body   string
		ok     bool
		id     string
		reason string // what the error text must contain
	}{
		{"id with NUL", 202, `{"messageId":"ab\u0000cd"}`, true, "", ""},
		{"id of 200 é", 202, `{"messageId":"` + strings.Repeat("é", 200) + `"}`, true, "", ""},
		{"id of raw latin-1", 202, "{\"messageId\":\"caf\xe9\"}", true, "", ""},
		{"id with lone surrogate", 202, `{"messageId":"a\ud800"}`, true, "", ""},
		{"id with newline", 202, `{"messageId":"a\nb"}`, true, "", ""},
		{"id of 255 bytes kept", 202, `{"messageId":"` + strings.Repeat("a", 255) + `"}`, true, strings.Repeat("a", 255), ""},
		{"id of 127 é kept", 202, `{"messageId":"` + strings.Repeat("é", 127) + `"}`, true, strings.Repeat("é", 127), ""},
		{"id of 10 MiB", 200, `{"messageId":"` + strings.Repeat("x", 10<<20) + `"}`, true, "", ""},
		{"accepted with 10 MiB of junk", 200, tenMiB, true, "", ""},
		{"400 latin-1", 400, "Fehler: ung\xfcltige Nummer", false, "", "Bad Request: Fehler: ung\uFFFDltige Nummer"},
		{"400 with NUL", 400, "bad\x00number", false, "", "Bad Request: bad\uFFFDnumber"},
		{"400 turkish cut mid-character", 400, "", false, "", "Bad Request: {\"hata\":\"Geçersiz"},
		{"400 of 10 MiB", 400, tenMiB, false, "", "Bad Request: \uFFFD\uFFFDx"},
		{"500 of 10 MiB", 500, tenMiB, false, "", "Internal Server Error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := tc.body
			if body == "" {
				body = turkishError(t)
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(body)) // the client stops reading after its limit
			}))
			defer srv.Close()
			resp, err := newClient(t, srv.URL).Send(context.Background(), webhook.Request{ID: "x", To: "+905551111111", Content: "c"})
			if tc.ok {
				if err != nil || resp.MessageID != tc.id {
					t.Fatalf("got %q, %v; want id %q", resp.MessageID, err, tc.id)
				}
				return
			}
			var werr *webhook.Error
			if !errors.As(err, &werr) {
				t.Fatalf("got %v, want a *webhook.Error", err)
			}
			text := werr.Error()
			if !utf8.ValidString(text) || strings.ContainsRune(text, 0) || len(werr.Reason) > webhook.MaxReasonBytes {
				t.Fatalf("error text not storable: %q", text)
			}
			if !strings.HasPrefix(werr.Reason, tc.reason) {
				t.Fatalf("reason %q, want it to start %q", werr.Reason, tc.reason)
			}
			if tc.body == "" && !strings.HasSuffix(werr.Reason, "...") {
				t.Fatalf("reason %q: the cut is not marked", werr.Reason)
			}
		})
	}
}
