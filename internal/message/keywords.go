package message

import "strings"

// What an inbound text asks for.
const (
	ActionOptOut = "opted_out"
	ActionOptIn  = "opted_in"
	ActionNone   = "none"
)

// optOutWords and optInWords are the keywords carriers and the FCC's rules
// honour, in upper case.
var (
	optOutWords = []string{"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
	optInWords  = []string{"START", "UNSTOP", "YES"}
)

// Keyword says what an inbound text asks for: ActionOptOut when, trimmed of
// white space and compared without regard to ASCII case, it is one of STOP,
// STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE or OPTOUT; ActionOptIn for
// START, UNSTOP or YES; ActionNone for anything else (HELP included). Only
// ASCII letters fold, so "ſtop" (long s) is no keyword.
func Keyword(text string) string {
	t := strings.TrimSpace(text)
	for i := range len(t) {
		if t[i] >= 0x80 {
			return ActionNone
		}
	}
	t = strings.ToUpper(t)
	for _, w := range optOutWords {
		if t == w {
			return ActionOptOut
		}
	}
	for _, w := range optInWords {
		if t == w {
			return ActionOptIn
		}
	}
	return ActionNone
}
