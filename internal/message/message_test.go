package message_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/messaging-server/messaging-server/internal/message"
)

var contentPattern = regexp.MustCompile(message.ContentPattern)

func field(err error) string {
	var ie *message.InvalidError
	if errors.As(err, &ie) {
		return ie.Field
	}
	return ""
}

func TestCheckContent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, content string
		want          string // substring of the message; "" means valid
	}{
		{"plain", "Your code is 123456", ""},
		{"tab and line breaks", "a\tb\r\nc", ""},
		{"emoji and accents", "Güle güle 👋", ""},
		{"zero-width joiner inside text", "👩\u200d💻 ok", ""},
		{"nbsp between words", "a\u00a0b", ""},
		{"replacement character typed on purpose", "\ufffd", ""},
		{"exactly the limit", strings.Repeat("é", 160), ""},
		{"empty", "", "required"},
		{"invalid UTF-8", "a\xffb", "UTF-8"},
		{"overlong slash", "a\xc0\xafb", "UTF-8"},
		{"encoded surrogate", "a\xed\xa0\x80b", "UTF-8"},
		{"NUL", "a\x00b", "control"},
		{"escape", "a\x1bb", "control"},
		{"DEL", "a\x7fb", "control"},
		{"C1 first", "a\u0080b", "control"},
		{"C1 NEL", "a\u0085b", "control"},
		{"C1 last", "a\u009fb", "control"},
		{"spaces", "   ", "blank"},
		{"line breaks", "\r\n\t", "blank"},
		{"zero-width space", "\u200b", "blank"},
		{"BOM", "\ufeff", "blank"},
		{"bidi controls", "\u202e\u2066\u2069\u200f", "blank"},
		{"soft hyphen and word joiner", "\u00ad\u2060 ", "blank"},
		{"variation selector", "\ufe0f", "blank"},
		{"hangul filler", "\u3164", "blank"},
		{"ideographic space", "\u3000", "blank"},
		{"braille blank", "\u2800", "blank"},
		{"braille blanks and spaces", "\u2800 \u2800\n\u2800", "blank"},
		{"combining marks only", "\u0301\u0308\u0327", "blank"},
		{"combining marks on spaces", " \u0301 \u20dd", "blank"},
		{"hangul fillers", "\u115f\u1160\u3164\uffa0", "blank"},
		{"null notehead", "\U0001d159", "blank"},
		{"tag characters", "\U000e0041\U000e0042", "blank"},
		{"private use only", "\ue000", "blank"},
		{"mongolian vowel separator", "\u180e", "blank"},
		{"line and paragraph separators", "\u2028\u2029", "blank"},
		{"one braille dot", "\u2801", ""},
		{"letter with a combining mark", "e\u0301", ""},
		{"a digit among blanks", "\u2800 1 \u3164", ""},
		{"punctuation only", "?", ""},
		{"symbol only", "\u20ac", ""},
		{"emoji only", "🙂", ""},
		{"CJK", "\u4f60\u597d", ""},
		{"one over", strings.Repeat("x", 161), "at most 160"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := message.CheckContent(tc.content, 160)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("%q: %v", tc.content, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || field(err) != "content"):
				t.Fatalf("%q: %v, want content error with %q", tc.content, err, tc.want)
			}
		})
	}
}

func TestVisibleBase(t *testing.T) {
	t.Parallel()
	for r, want := range map[rune]bool{
		'a': true, 'Z': true, 'ş': true, 'ß': true, '\u4f60': true, '\u05e9': true, '0': true, '\u0669': true, 'Ⅻ': true,
		'.': true, '?': true, '«': true, '-': true, '+': true, '$': true, '€': true, '©': true, '🙂': true, '\u2801': true, '\ufffd': true,
		' ': false, '\t': false, '\n': false, '\u00a0': false, '\u3000': false, '\u2028': false, '\u2029': false,
		'\u200b': false, '\u200d': false, '\ufeff': false, '\u202e': false, '\u00ad': false, '\u180e': false, '\U000e0041': false,
		'\u0301': false, '\u20dd': false, '\ufe0f': false, '\u034f': false,
		'\u2800': false, '\u115f': false, '\u1160': false, '\u3164': false, '\uffa0': false, '\U0001d159': false,
		'\x00': false, '\u0085': false, '\ue000': false, '\U0010fffd': false, '\U000e01ef': false,
	} {
		if got := message.VisibleBase(r); got != want {
			t.Errorf("VisibleBase(%U) = %v, want %v", r, got, want)
		}
	}
}

func TestValidatePhone(t *testing.T) {
	t.Parallel()
	for phone, ok := range map[string]bool{
		"+905551111111": true, "+12015550123": true, "+90 555 111 11 11": true, "+90555111111\n": false,
		"": false, "905551111111": false, "+05551111111": false, "+1234567": false,
		"+1234567890123456": false, "+9055511111111": false,
	} {
		_, err := message.Validate("hi", phone, 160)
		if ok != (err == nil) || !ok && field(err) != "phone_number" {
			t.Errorf("%q: %v", phone, err)
		}
	}
}

func TestCheckID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		id   string
		want string
	}{
		{"3f1c2a7e-1b2d-4c5e-9f60-0a1b2c3d4e01", ""},
		{"a", ""},
		{"msg 1", ""},
		{"sipariş-42", ""},
		{strings.Repeat("é", 36), ""},
		{"", "empty"},
		{strings.Repeat("x", 37), "longer than 36"},
		{"a\nb", "control"},
		{"a\rb", "control"},
		{"a\x00b", "control"},
		{"a\tb", "control"},
		{"a\x7f", "control"},
		{"a\u0085", "control"},
		{" a", "space"},
		{"a ", "space"},
		{"a\xff", "UTF-8"},
	} {
		err := message.CheckID(tc.id)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.id, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || field(err) != "id"):
			t.Errorf("%q: %v, want id error with %q", tc.id, err, tc.want)
		}
	}
}

func TestValidateClaimedChecksTheIDFirst(t *testing.T) {
	t.Parallel()
	if _, err := message.ValidateClaimed("a\nb", "", "", 160, false); field(err) != "id" {
		t.Fatalf("got %v, want an id error", err)
	}
	if got, err := message.ValidateClaimed("ok", "hi", "+90 555 111 11 11", 160, false); err != nil || got != "+905551111111" {
		t.Fatal(got, err)
	}
	if _, err := message.ValidateClaimed("ok", "\u200b", "+905551111111", 160, false); field(err) != "content" {
		t.Fatalf("got %v, want a content error", err)
	}
}

// A number the API checked is taken as stored; the content is still
// checked.
func TestValidateClaimedTrustsACheckedNumber(t *testing.T) {
	t.Parallel()
	if got, err := message.ValidateClaimed("ok", "hi", "+905551111111", 160, true); err != nil || got != "+905551111111" {
		t.Fatalf("checked number: %q, %v", got, err)
	}
	if _, err := message.ValidateClaimed("ok", "\u200b", "+905551111111", 160, true); field(err) != "content" {
		t.Fatalf("blank content of a checked row: %v", err)
	}
	if _, err := message.ValidateClaimed("a\nb", "hi", "+905551111111", 160, true); field(err) != "id" {
		t.Fatalf("bad id of a checked row: %v", err)
	}
}

// The content rules hold for any input: accepted content is valid UTF-8,
// within the limit, free of controls other than tab and line breaks, and has
// a visible character.
func FuzzCheckContent(f *testing.F) {
	for _, s := range []string{"hi", "", " ", "\u200b", "\ufeffa", "\u2800", "a\u0301", "\u0301", "\u3164x", "a\u0085", "\xc0\xaf", "\xed\xa0\x80", "a\tb\n", strings.Repeat("é", 161)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := message.CheckContent(s, 160)
		if err != nil {
			if field(err) != "content" {
				t.Fatalf("%q: error %v is not a content error", s, err)
			}
			return
		}
		if !utf8.ValidString(s) || utf8.RuneCountInString(s) > 160 {
			t.Fatalf("%q accepted", s)
		}
		visible := false
		for _, r := range s {
			if message.IsControl(r) && r != '\t' && r != '\n' && r != '\r' {
				t.Fatalf("%q accepted with control %U", s, r)
			}
			// A letter, number, punctuation mark or symbol that is not one
			// of the blank ones.
			visible = visible || unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S) &&
				!strings.ContainsRune("\u2800\u115f\u1160\u3164\uffa0\U0001d159", r)
		}
		if !visible {
			t.Fatalf("%q accepted with nothing visible", s)
		}
		if !contentPattern.MatchString(s) {
			t.Fatalf("%q accepted but does not match the documented pattern", s)
		}
	})
}

// An accepted id can be a header value as it is: non-empty, at most 36
// characters, no control character, no space at either end.
func FuzzCheckID(f *testing.F) {
	for _, s := range []string{"a", "", "a\nb", " a", strings.Repeat("x", 37), "\xff", "3f1c2a7e-1b2d-4c5e-9f60-0a1b2c3d4e01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		err := message.CheckID(id)
		if err != nil {
			if field(err) != "id" {
				t.Fatalf("%q: error %v is not an id error", id, err)
			}
			return
		}
		if id == "" || !utf8.ValidString(id) || utf8.RuneCountInString(id) > message.MaxIDLength ||
			strings.TrimSpace(id) != id && (id[0] == ' ' || id[len(id)-1] == ' ') {
			t.Fatalf("%q accepted", id)
		}
		for _, r := range id {
			if r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f {
				t.Fatalf("%q accepted with control %U", id, r)
			}
		}
	})
}
