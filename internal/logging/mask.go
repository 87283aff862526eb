package logging

import "strings"

// MaskPhone is how a phone number may appear in a log: its country code
// and its last 2 digits, every other digit a '*' ("+905551234511" becomes
// "+90********11"). A value without a leading '+' has no country code to
// keep; one with 4 digits or fewer shows none. Anything other than a digit
// after the '+' is dropped.
func MaskPhone(p string) string {
	var digits []byte
	for i := 0; i < len(p); i++ {
		if p[i] >= '0' && p[i] <= '9' {
			digits = append(digits, p[i])
		}
	}
	keep := 0
	prefix := ""
	if strings.HasPrefix(p, "+") {
		prefix = "+"
		keep = countryCodeLen(string(digits))
	}
	if len(digits) <= keep+4 {
		return prefix + strings.Repeat("*", len(digits))
	}
	n := len(digits)
	return prefix + string(digits[:keep]) + strings.Repeat("*", n-keep-2) + string(digits[n-2:])
}

// countryCodeLen is the length of the ITU-T E.164 country code that starts
// digits: 1 (the North American plan) and 7 (Russia, Kazakhstan) have one
// digit, the zones listed here two, every other code three.
func countryCodeLen(digits string) int {
	if digits == "" {
		return 0
	}
	switch digits[0] {
	case '1', '7':
		return 1
	}
	if len(digits) < 2 {
		return len(digits)
	}
	if strings.Contains(twoDigitCodes, " "+digits[:2]+" ") {
		return 2
	}
	return min(3, len(digits))
}

// twoDigitCodes are the two-digit country codes.
const twoDigitCodes = " 20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98 "
