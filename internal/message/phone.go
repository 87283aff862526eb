package message

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// MaxPhoneInput is the longest phone number, in characters, that a create
// may send before it is normalised: room for any readable formatting of a
// 15-digit number, far below what the parser would look at.
const MaxPhoneInput = 64

// NormalizePhone reads phone as a full international number, in any form
// the phone library reads ("+1 (201) 555-0123", "+44 7400 123456",
// "+90 501 234 56 78"), and returns its E.164 form ("+12015550123"). The
// number must start with "+" (after white space), hold no letter (the
// library would read keypad letters as digits), carry no extension, and
// be possible for its country by length (the library's possible-number
// check, not its full validity check, so test ranges such as +1555... pass;
// a length possible only for local dialling is refused).
// Anything else is an *InvalidError for field.
func NormalizePhone(field, phone string) (string, error) {
	bad := func(msg string) error { return &InvalidError{Field: field, Message: msg} }
	s := strings.TrimSpace(phone)
	switch {
	case s == "":
		return "", bad(field + " is required")
	case !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxPhoneInput:
		return "", bad(field + " must be a phone number of at most 64 characters")
	case s[0] != '+':
		return "", bad(field + " must be a full international number starting with + and the country code, e.g. +1 201 555 0123")
	case strings.ContainsFunc(s, unicode.IsLetter):
		// The library would read letters as keypad digits (+1 800
		// FLOWERS), turning a typo into someone else's number.
		return "", bad(field + " must hold digits only, with spaces, dashes, dots or parentheses between them")
	}
	n, err := phonenumbers.Parse(s, "")
	if err != nil {
		return "", bad(field + " is not a phone number: write it as + then the country code and number, e.g. +1 201 555 0123")
	}
	if n.GetExtension() != "" {
		return "", bad(field + " must not carry an extension: an SMS cannot reach one")
	}
	// IS_POSSIBLE only: IsPossibleNumber also takes a local-only length
	// (a US number without its area code), which no one abroad can reach.
	if phonenumbers.IsPossibleNumberWithReason(n) != phonenumbers.IS_POSSIBLE {
		return "", bad(field + " is not a possible number for its country: too short or too long")
	}
	e164 := phonenumbers.Format(n, phonenumbers.E164)
	// A number given in its E.164 form is a fixed point already (it read
	// as itself); only a formatted one is read a second time. The worker
	// checks every claimed number, nearly always one the API stored in
	// E.164, so this halves what the check costs there.
	if !e164Form.MatchString(e164) || (e164 != s && !fixedPoint(e164)) {
		// What would be stored is not E.164, or would read as another
		// number (the parser strips a national prefix such as Japan's 0
		// after the country code): refuse rather than store a number
		// that changes each time it is read.
		return "", bad(field + " is not a possible number for its country: too short or too long")
	}
	return e164, nil
}

// Region is the ISO 3166 alpha-2 region of an E.164 number by the phone
// library's region lookup: the region whose numbering plan the number
// belongs to, or, when the plan shares its country code and the number is in
// no region's ranges (test ranges such as +1555...), the code's main region
// (US for +1). It is "" for a number the library cannot place (such as
// +800, which belongs to no country).
func Region(e164 string) string {
	n, err := phonenumbers.Parse(e164, "")
	if err != nil {
		return ""
	}
	r := phonenumbers.GetRegionCodeForNumber(n)
	if r == "" {
		r = phonenumbers.GetRegionCodeForCountryCode(int(n.GetCountryCode()))
	}
	if r == phonenumbers.UNKNOWN_REGION || r == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY {
		return ""
	}
	return r
}

// KnownRegion tells whether code is an ISO 3166 alpha-2 region the phone
// library has numbering data for, in upper case.
func KnownRegion(code string) bool {
	return phonenumbers.GetSupportedRegions()[code]
}

// CountryNotAllowed is the reason, in last_error and in the metric, of a
// message whose number's country is not in ALLOWED_COUNTRIES.
const CountryNotAllowed = "country_not_allowed"

// CountryError says that a number's country is not allowed.
type CountryError struct {
	// Region is the number's region, "" when it has none.
	Region string
}

func (e *CountryError) Error() string { return CountryNotAllowed }

// Countries is the set of regions messages may go to (ALLOWED_COUNTRIES);
// an empty set allows every number.
type Countries map[string]bool

// NewCountries builds the set from ISO 3166 alpha-2 codes, any case.
func NewCountries(codes []string) Countries {
	out := make(Countries, len(codes))
	for _, c := range codes {
		if c = strings.ToUpper(strings.TrimSpace(c)); c != "" {
			out[c] = true
		}
	}
	return out
}

// Allows tells whether a message may go to the E.164 number e164: always
// when the set is empty, else when the number's Region is in it.
func (cs Countries) Allows(e164 string) bool {
	return len(cs) == 0 || cs[Region(e164)]
}

// CheckCountry is Allows as the create answers it: nil or an *InvalidError
// for phone_number naming the region.
func (cs Countries) CheckCountry(e164 string) error {
	if cs.Allows(e164) {
		return nil
	}
	r := Region(e164)
	if r == "" {
		r = "no country"
	}
	return &InvalidError{Field: "phone_number", Message: "phone_number belongs to " + r + ", which is not in ALLOWED_COUNTRIES"}
}

// fixedPoint tells whether an E.164 number parses back to itself.
func fixedPoint(e164 string) bool {
	n, err := phonenumbers.Parse(e164, "")
	return err == nil && phonenumbers.Format(n, phonenumbers.E164) == e164
}
