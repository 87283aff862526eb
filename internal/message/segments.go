package message

import (
	"fmt"
	"unicode/utf8"
)

// Encodings of an SMS, as the API names them.
const (
	GSM7 = "GSM-7"
	UCS2 = "UCS-2"
)

// Segment sizes: a message that fits one segment holds 160 GSM-7 septets or
// 70 UCS-2 units; a longer one is split into segments of 153 septets or 67
// units, the rest of each carrying the concatenation header.
const (
	GSM7Single = 160
	GSM7Multi  = 153
	UCS2Single = 70
	UCS2Multi  = 67
)

// gsmBasic is the GSM 03.38 default alphabet (1 septet each), without the
// escape code 0x1B, which is no character of its own.
const gsmBasic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
	"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"

// gsmExtension is the GSM 03.38 extension table: each character is sent as
// the escape code and a second septet, 2 septets in all.
const gsmExtension = "\f^{}\\[~]|€"

var gsmSeptets = func() map[rune]int {
	m := make(map[rune]int, 140)
	for _, r := range gsmBasic {
		m[r] = 1
	}
	for _, r := range gsmExtension {
		m[r] = 2
	}
	return m
}()

// Parts is how a text travels as SMS: its encoding, its length in septets
// (GSM-7) or 16-bit units (UCS-2), and its segments.
type Parts struct {
	Encoding string
	Units    int
	// Segments are the pieces of the text, in order; joined they give the
	// text back. None for an empty text.
	Segments []string
}

// Count is the number of segments.
func (p Parts) Count() int { return len(p.Segments) }

// Split encodes text as an SMS. It is GSM-7 when every character is in the
// GSM 03.38 basic set (1 septet) or its extension table (2 septets), UCS-2
// otherwise, where a character outside the Basic Multilingual Plane takes 2
// units (a surrogate pair) and any other 1 (a byte that is not UTF-8 counts
// as U+FFFD). A text within 160 septets or 70 units is one segment; a longer
// one is cut into segments of at most 153 septets or 67 units, each filled
// as far as it goes, and never inside a character, so neither a 2-septet
// character nor a surrogate pair is split.
func Split(text string) Parts {
	enc, single, multi := GSM7, GSM7Single, GSM7Multi
	for _, r := range text {
		if gsmSeptets[r] == 0 {
			enc, single, multi = UCS2, UCS2Single, UCS2Multi
			break
		}
	}
	total := 0
	for _, r := range text {
		total += unitsOf(enc, r)
	}
	p := Parts{Encoding: enc, Units: total}
	switch {
	case text == "":
		return p
	case total <= single:
		p.Segments = []string{text}
		return p
	}
	start, used := 0, 0
	for i, r := range text {
		u := unitsOf(enc, r)
		if used+u > multi {
			p.Segments = append(p.Segments, text[start:i])
			start, used = i, 0
		}
		used += u
	}
	p.Segments = append(p.Segments, text[start:])
	return p
}

// unitsOf is what r takes in encoding enc: septets for GSM-7, 16-bit units
// for UCS-2.
func unitsOf(enc string, r rune) int {
	if enc == GSM7 {
		return gsmSeptets[r]
	}
	if r > 0xFFFF && r <= utf8.MaxRune {
		return 2
	}
	return 1
}

// CheckSegments refuses content that would take more than maxSegments
// segments, with an *InvalidError for content that gives the count.
func CheckSegments(content string, maxSegments int) error {
	p := Split(content)
	if p.Count() <= maxSegments {
		return nil
	}
	return &InvalidError{Field: "content", Message: fmt.Sprintf(
		"content takes %d SMS segments (%s, %d %s), more than MAX_SEGMENTS (%d)",
		p.Count(), p.Encoding, p.Units, unitName(p.Encoding), maxSegments)}
}

func unitName(enc string) string {
	if enc == GSM7 {
		return "septets"
	}
	return "16-bit units"
}
