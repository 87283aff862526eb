package message_test

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/messaging-server/messaging-server/internal/message"
)

func TestNormalizePhone(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string // want "" means refused
	}{
		{"+1 (201) 555-0123", "+12015550123"},
		{"+12015550123", "+12015550123"},
		{"+44 7400 123456", "+447400123456"},
		{"+90 501 234 56 78", "+905012345678"},
		{"+90-501-234-5678", "+905012345678"},
		{"  +905551111111\n", "+905551111111"},
		{"+1 555 010 0001", "+15550100001"}, // a test range: possible, not valid
		{"+905551111111", "+905551111111"},
		{"+49 30 123456", "+4930123456"},
		{"", ""},
		{"   ", ""},
		{"12015550123", ""},            // no country code
		{"0201 555 0123", ""},          // national form
		{"+1 201 555 012", ""},         // too short for +1
		{"+1 201 555 01234", ""},       // too long for +1
		{"+1 555 0123", ""},            // local-only length
		{"+90 501 234 56 78 9", ""},    // too long for +90
		{"+999 1234567", ""},           // no such country code
		{"+1 201 555 0123 ext. 5", ""}, // an extension
		{"hello", ""},
		{"+1 800 FLOWERS", ""}, // keypad letters
		{"+90555abc1111", ""},
		{"+", ""},
		{"+\xff12015550123", ""},
		{"+" + strings.Repeat("1", 80), ""},
	} {
		got, err := message.NormalizePhone("phone_number", tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("%q: accepted as %q, want refused", tc.in, got)
		case tc.want == "" && field(err) != "phone_number":
			t.Errorf("%q: %v, want a phone_number error", tc.in, err)
		case tc.want != "" && (err != nil || got != tc.want):
			t.Errorf("%q: %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestRegion(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"+12015550123":  "US",
		"+15550100001":  "US", // a test range: the main region of +1
		"+14165550123":  "CA",
		"+447400123456": "GB",
		"+905012345678": "TR",
		"+4930123456":   "DE",
		"+80012345678":  "", // international freephone: no country
		"garbage":       "",
	} {
		if got := message.Region(in); got != want {
			t.Errorf("Region(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCountries(t *testing.T) {
	t.Parallel()
	all := message.NewCountries(nil)
	usgb := message.NewCountries([]string{"us", " GB "})
	for _, tc := range []struct {
		cs    message.Countries
		phone string
		want  bool
	}{
		{all, "+905012345678", true},
		{usgb, "+12015550123", true},
		{usgb, "+15550100001", true},
		{usgb, "+447400123456", true},
		{usgb, "+905012345678", false},
		{usgb, "+14165550123", false}, // Canada shares +1
		{usgb, "+80012345678", false},
	} {
		if got := tc.cs.Allows(tc.phone); got != tc.want {
			t.Errorf("%v.Allows(%q) = %v", tc.cs, tc.phone, got)
		}
		err := tc.cs.CheckCountry(tc.phone)
		if (err == nil) != tc.want || err != nil && field(err) != "phone_number" {
			t.Errorf("%v.CheckCountry(%q) = %v", tc.cs, tc.phone, err)
		}
	}
	if !message.KnownRegion("GB") || message.KnownRegion("UK") || message.KnownRegion("gb") {
		t.Fatal("KnownRegion: want GB known, UK and gb not")
	}
}

func TestSplit(t *testing.T) {
	t.Parallel()
	emoji := "🙂"
	for _, tc := range []struct {
		name     string
		text     string
		enc      string
		units    int
		segments int
	}{
		{"160 a", strings.Repeat("a", 160), message.GSM7, 160, 1},
		{"161 a", strings.Repeat("a", 161), message.GSM7, 161, 2},
		{"153×2 a", strings.Repeat("a", 306), message.GSM7, 306, 2},
		{"153×2+1 a", strings.Repeat("a", 307), message.GSM7, 307, 3},
		{"€ is 2 septets", "€", message.GSM7, 2, 1},
		{"80 € fill one segment", strings.Repeat("€", 80), message.GSM7, 160, 1},
		{"80 € and a: two", strings.Repeat("€", 80) + "a", message.GSM7, 161, 2},
		{"extension table", "^{}\\[~]|€\f", message.GSM7, 20, 1},
		{"basic set", "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà\r\n", message.GSM7, 44, 1},
		{"one emoji makes UCS-2", "hello " + emoji, message.UCS2, 8, 1},
		{"70 UCS-2", strings.Repeat("ç", 70), message.UCS2, 70, 1},
		{"71 UCS-2", strings.Repeat("ç", 71), message.UCS2, 71, 2},
		{"70 UCS-2 with Turkish ı", strings.Repeat("ı", 70), message.UCS2, 70, 1},
		{"35 emoji: 70 units", strings.Repeat(emoji, 35), message.UCS2, 70, 1},
		{"36 emoji: 72 units", strings.Repeat(emoji, 36), message.UCS2, 72, 2},
		{"67×2 units", strings.Repeat("ç", 134), message.UCS2, 134, 2},
		{"67×2+1 units", strings.Repeat("ç", 135), message.UCS2, 135, 3},
		{"tab is not GSM", "a\tb", message.UCS2, 3, 1},
		{"Chinese", strings.Repeat("中", 71), message.UCS2, 71, 2},
		{"empty", "", message.GSM7, 0, 0},
	} {
		p := message.Split(tc.text)
		if p.Encoding != tc.enc || p.Units != tc.units || p.Count() != tc.segments {
			t.Errorf("%s: %s %d units %d segments, want %s %d %d", tc.name, p.Encoding, p.Units, p.Count(), tc.enc, tc.units, tc.segments)
		}
		if strings.Join(p.Segments, "") != tc.text {
			t.Errorf("%s: segments do not join to the text", tc.name)
		}
	}
}

// No boundary falls inside a 2-septet character or a surrogate pair: the
// segment that would end half-way ends one unit short instead.
func TestSplitKeepsCharactersWhole(t *testing.T) {
	t.Parallel()
	// 152 septets of a, then €: 154 septets would not fit the first
	// segment's 153, so € starts the second.
	p := message.Split(strings.Repeat("a", 152) + "€" + strings.Repeat("a", 10))
	if p.Count() != 2 || p.Segments[0] != strings.Repeat("a", 152) || !strings.HasPrefix(p.Segments[1], "€") {
		t.Fatalf("€ split: %q", p.Segments)
	}
	// 66 units of ç, then an emoji (2 units): it starts the second segment.
	p = message.Split(strings.Repeat("ç", 66) + "🙂" + strings.Repeat("ç", 10))
	if p.Count() != 2 || p.Segments[0] != strings.Repeat("ç", 66) || !strings.HasPrefix(p.Segments[1], "🙂") {
		t.Fatalf("emoji split: %q", p.Segments)
	}
}

func TestCheckSegments(t *testing.T) {
	t.Parallel()
	if err := message.CheckSegments(strings.Repeat("a", 306), 2); err != nil {
		t.Fatal(err)
	}
	err := message.CheckSegments(strings.Repeat("a", 307), 2)
	if field(err) != "content" || !strings.Contains(err.Error(), "3 SMS segments") || !strings.Contains(err.Error(), "MAX_SEGMENTS (2)") {
		t.Fatalf("got %v", err)
	}
}

// The segments of any string, joined, give it back; each is within its
// size, holds whole characters, and the count is the least the greedy
// rule allows (a single segment whenever the whole fits one).
func FuzzSplit(f *testing.F) {
	for _, s := range []string{"", "a", strings.Repeat("a", 161), strings.Repeat("€", 81), "🙂", strings.Repeat("ç", 66) + "🙂", "\xff\xfe", "a\x00b", strings.Repeat("é€", 90)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := message.Split(s)
		if strings.Join(p.Segments, "") != s {
			t.Fatalf("segments %q do not join to %q", p.Segments, s)
		}
		single, multi := message.GSM7Single, message.GSM7Multi
		if p.Encoding == message.UCS2 {
			single, multi = message.UCS2Single, message.UCS2Multi
		}
		units := 0
		for _, seg := range p.Segments {
			if seg == "" {
				t.Fatalf("empty segment in %q", p.Segments)
			}
			u := 0
			for _, r := range seg {
				u += units16or7(p.Encoding, r)
			}
			limit := multi
			if len(p.Segments) == 1 {
				limit = single
			}
			if u > limit {
				t.Fatalf("segment of %d units over %d: %q", u, limit, seg)
			}
			if utf8.ValidString(s) && !utf8.ValidString(seg) {
				t.Fatalf("segment %q splits a character", seg)
			}
			units += u
		}
		if units != p.Units || (s == "") != (p.Count() == 0) || p.Units <= single && p.Count() > 1 {
			t.Fatalf("%d units, %d counted, %d segments", units, p.Units, p.Count())
		}
	})
}

// units16or7 recounts a rune independently of the package: GSM-7 texts
// are checked through their UTF-8 length (1-byte basic characters are 1
// septet; the extension table is the 10 characters listed).
func units16or7(enc string, r rune) int {
	if enc == message.GSM7 {
		if strings.ContainsRune("\f^{}\\[~]|€", r) {
			return 2
		}
		return 1
	}
	if r > 0xFFFF {
		return 2
	}
	return 1
}

// Whatever NormalizePhone accepts comes out in E.164, fits the column, and
// normalises to itself; whatever it refuses is a phone_number error.
func FuzzNormalizePhone(f *testing.F) {
	for _, s := range []string{"+1 (201) 555-0123", "+44 7400 123456", "+90 501 234 56 78", "", "+", "+1 201 555 0123 ext. 5", "+1-800-FLOWERS", "\uff0b1 201 555 0123", "+\xff1"} {
		f.Add(s)
	}
	pattern := regexp.MustCompile(message.PhonePattern)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := message.NormalizePhone("phone_number", s)
		if err != nil {
			if field(err) != "phone_number" {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		if !pattern.MatchString(got) || len(got) > 20 {
			t.Fatalf("%q normalised to %q, not E.164", s, got)
		}
		if again, err := message.NormalizePhone("phone_number", got); err != nil || again != got {
			t.Fatalf("%q: %q normalises to %q, %v", s, got, again, err)
		}
	})
}

func TestKeyword(t *testing.T) {
	t.Parallel()
	for text, want := range map[string]string{
		"STOP": message.ActionOptOut, " Stop ": message.ActionOptOut, "stop\n": message.ActionOptOut,
		"STOPALL": message.ActionOptOut, "unsubscribe": message.ActionOptOut, "Cancel": message.ActionOptOut,
		"END": message.ActionOptOut, "quit": message.ActionOptOut, "REVOKE": message.ActionOptOut, "OptOut": message.ActionOptOut,
		"START": message.ActionOptIn, " start ": message.ActionOptIn, "UNSTOP": message.ActionOptIn, "yes": message.ActionOptIn,
		"HELP": message.ActionNone, "INFO": message.ActionNone, "": message.ActionNone, "STOP please": message.ActionNone,
		"S TOP": message.ActionNone, "ſtop": message.ActionNone, "STOP.": message.ActionNone, "opt out": message.ActionNone,
		"\u00a0STOP\u00a0": message.ActionOptOut, // Unicode white space is trimmed too
	} {
		if got := message.Keyword(text); got != want {
			t.Errorf("Keyword(%q) = %q, want %q", text, got, want)
		}
	}
}
