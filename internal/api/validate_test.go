package api_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/messaging-server/messaging-server/internal/api"
	"github.com/messaging-server/messaging-server/internal/message"
	"github.com/messaging-server/messaging-server/internal/store"
)

func TestValidateNewMessage(t *testing.T) {
	t.Parallel()
	const phone = "+905551111111"
	cases := []struct {
		name, content, phone string
		max                  int
		field                string // "" when valid
	}{
		{"plain", "hello", phone, 160, ""},
		{"exactly max runes, multibyte", strings.Repeat("ğ", 160), phone, 160, ""},
		{"emoji count as one each", strings.Repeat("🙂", 10), phone, 10, ""},
		{"tabs and line breaks", "a\tb\r\nc", phone, 160, ""},
		{"max 255", strings.Repeat("x", 255), phone, 255, ""},
		{"8 digits", "hi", "+12345678", 160, ""},
		{"15 digits", "hi", "+123456789012345", 160, ""},
		{"empty content", "", phone, 160, "content"},
		{"blank content", " \t\n", phone, 160, "content"},
		{"one rune over", strings.Repeat("ğ", 161), phone, 160, "content"},
		{"one over a small max", "abcd", phone, 3, "content"},
		{"invalid UTF-8", "a\xffb", phone, 160, "content"},
		{"NUL", "a\x00b", phone, 160, "content"},
		{"escape", "a\x1bb", phone, 160, "content"},
		{"DEL", "a\x7fb", phone, 160, "content"},
		{"C1", "a\u0085b", phone, 160, "content"},
		{"zero-width only", "\u200b\ufeff", phone, 160, "content"},
		{"missing phone", "hi", "", 160, "phone_number"},
		{"no plus", "hi", "905551111111", 160, "phone_number"},
		{"leading zero", "hi", "+0905551111", 160, "phone_number"},
		{"7 digits", "hi", "+1234567", 160, "phone_number"},
		{"16 digits", "hi", "+1234567890123456", 160, "phone_number"},
		{"spaces", "hi", "+90 5551111111", 160, "phone_number"},
		{"dashes", "hi", "+90-555-111-1111", 160, "phone_number"},
		{"two plus", "hi", "++905551111111", 160, "phone_number"},
		{"trailing newline", "hi", phone + "\n", 160, "phone_number"},
		{"arabic-indic digits", "hi", "+٩٠٥٥٥١١١١١١١", 160, "phone_number"},
		{"both bad: content reported first", "", "x", 160, "content"},
	}
	for _, c := range cases {
		err := api.ValidateNewMessage(api.CreateMessageRequest{Content: c.content, PhoneNumber: c.phone}, c.max)
		if c.field == "" {
			if err != nil {
				t.Errorf("%s: unexpected error %v", c.name, err)
			}
			continue
		}
		var ve *api.ValidationError
		if !errors.As(err, &ve) || ve.Field != c.field || ve.Message == "" {
			t.Errorf("%s: error %v, want a ValidationError on %s", c.name, err, c.field)
		}
	}
}

func TestDecodeNewMessage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body string
		code       string // "" when it decodes
		want       api.CreateMessageRequest
	}{
		{"ok", `{"content":"a","phone_number":"+905551111111"}`, "", api.CreateMessageRequest{Content: "a", PhoneNumber: "+905551111111"}},
		{"whitespace around", " \n{\"content\":\"a\"}\n ", "", api.CreateMessageRequest{Content: "a"}},
		{"escapes", `{"content":"\u00e7\n"}`, "", api.CreateMessageRequest{Content: "ç\n"}},
		{"null", `null`, "", api.CreateMessageRequest{}},
		{"empty", ``, "invalid_json", api.CreateMessageRequest{}},
		{"spaces only", `   `, "invalid_json", api.CreateMessageRequest{}},
		{"truncated", `{"content":"a"`, "invalid_json", api.CreateMessageRequest{}},
		{"syntax", `{"content":}`, "invalid_json", api.CreateMessageRequest{}},
		{"trailing object", `{} {}`, "invalid_json", api.CreateMessageRequest{}},
		{"trailing garbage", `{}x`, "invalid_json", api.CreateMessageRequest{}},
		{"string", `"hi"`, "invalid_json", api.CreateMessageRequest{}},
		{"unknown", `{"Content":"a","extra":true}`, "unknown_field", api.CreateMessageRequest{}},
		{"wrong case", `{"content":"lower","Content":"UPPER"}`, "unknown_field", api.CreateMessageRequest{}},
		{"duplicate", `{"content":"a","content":"b"}`, "invalid_json", api.CreateMessageRequest{}},
	}
	for _, c := range cases {
		got, err := api.DecodeNewMessage([]byte(c.body))
		if c.code == "" {
			if err != nil || got != c.want {
				t.Errorf("%s: %+v, %v; want %+v", c.name, got, err, c.want)
			}
			continue
		}
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != c.code || ae.Status != 400 {
			t.Errorf("%s: error %v, want 400 %s", c.name, err, c.code)
		}
	}
}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)

// FuzzValidateNewMessage checks the validator's contract on any input: it
// never panics, it accepts exactly what the rules allow, and anything it
// accepts can be stored (valid UTF-8 without NUL, at most max runes, which
// is at most 255, and a phone number that fits VARCHAR(20)).
func FuzzValidateNewMessage(f *testing.F) {
	seeds := []struct {
		content, phone string
		max            uint8
	}{
		{"hello", "+905551111111", 160},
		{"", "+905551111111", 160},
		{" ", "+12345678", 1},
		{strings.Repeat("ç", 161), "+905551111111", 160},
		{"a\x00b", "+905551111111", 160},
		{"a\xffb", "+905551111111", 160},
		{"tab\tok", "+123456789012345", 255},
		{"x", "+1234567890123456", 255},
		{"x", "+0123456789", 255},
		{"x", "905551111111", 255},
		{"🙂🙂", "+905551111111", 1},
		{"\u200b", "+905551111111", 160},
		{"a\u009f", "+905551111111", 160},
	}
	for _, s := range seeds {
		f.Add(s.content, s.phone, s.max)
	}
	f.Fuzz(func(t *testing.T, content, phone string, max uint8) {
		limit := int(max)%255 + 1 // the range config allows: 1..255
		err := api.ValidateNewMessage(api.CreateMessageRequest{Content: content, PhoneNumber: phone}, limit)
		if err != nil {
			var ve *api.ValidationError
			if !errors.As(err, &ve) || (ve.Field != "content" && ve.Field != "phone_number") || ve.Message == "" {
				t.Fatalf("error %#v is not a ValidationError on a known field", err)
			}
		}
		contentOK := content != "" && utf8.ValidString(content) && strings.ContainsFunc(content, message.VisibleBase) &&
			utf8.RuneCountInString(content) <= limit && !strings.ContainsFunc(content, func(r rune) bool {
			return r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r >= 0x7f && r <= 0x9f
		})
		phoneOK := e164.MatchString(phone)
		if (err == nil) != (contentOK && phoneOK) {
			t.Fatalf("ValidateNewMessage(%q, %q, %d) = %v; content ok %v, phone ok %v", content, phone, limit, err, contentOK, phoneOK)
		}
		if err == nil && (strings.ContainsRune(content, 0) || utf8.RuneCountInString(content) > 255 || len(phone) > 20) {
			t.Fatalf("accepted a message the database cannot store: %q %q", content, phone)
		}
	})
}

// FuzzDecodeCursor checks that no client-supplied cursor can reach
// PostgreSQL in a form it rejects, and that every cursor the API issues
// reads back as the same position.
func FuzzDecodeCursor(f *testing.F) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 123456000, time.UTC)
	for _, c := range []store.SentCursor{{SentAt: &at, ID: "abc"}, {ID: "x|y"}, {SentAt: &at, ID: strings.Repeat("z", 36)}} {
		f.Add(api.EncodeCursor(c))
	}
	f.Add("!!!")
	f.Add("")
	f.Add("fA")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := api.DecodeCursor(s)
		if err != nil {
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != "invalid_cursor" {
				t.Fatalf("DecodeCursor(%q) error %v is not a 400 invalid_cursor", s, err)
			}
			return
		}
		if c.ID == "" || !utf8.ValidString(c.ID) || strings.ContainsRune(c.ID, 0) || utf8.RuneCountInString(c.ID) > 36 {
			t.Fatalf("DecodeCursor(%q) accepted id %q", s, c.ID)
		}
		again, err := api.DecodeCursor(api.EncodeCursor(c))
		if err != nil || again.ID != c.ID || (again.SentAt == nil) != (c.SentAt == nil) ||
			(c.SentAt != nil && !again.SentAt.Equal(*c.SentAt)) {
			t.Fatalf("cursor %q does not round-trip: %+v then %+v, %v", s, c, again, err)
		}
	})
}
