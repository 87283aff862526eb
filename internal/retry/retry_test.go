package retry_test

import (
	"errors"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/retry"
)

func TestDefaultSpansADay(t *testing.T) {
	t.Parallel()
	s := retry.MustParse(retry.Default)
	if len(s) != 10 {
		t.Fatalf("default has %d steps, want 10", len(s))
	}
	if s.Total() < 24*time.Hour {
		t.Fatalf("default spans %s, want at least a day of retries", s.Total())
	}
	if s.Largest() != 9*time.Hour {
		t.Fatalf("largest step %s", s.Largest())
	}
}

func TestDelay(t *testing.T) {
	t.Parallel()
	s := retry.MustParse("5s,30s,2m,1h")
	cases := []struct {
		name       string
		attempt    int
		retryAfter time.Duration
		jitter     float64
		want       time.Duration
	}{
		{"first step, middle jitter", 1, 0, 0.5, 5 * time.Second},
		{"first step, lowest jitter", 1, 0, 0, 4 * time.Second},
		{"first step, highest jitter", 1, 0, 1, 6 * time.Second},
		{"second step", 2, 0, 0.5, 30 * time.Second},
		{"third step -20%", 3, 0, 0, 96 * time.Second},
		{"last step", 4, 0, 0.5, time.Hour},
		{"past the end repeats the last", 9, 0, 0.5, time.Hour},
		{"attempt 0 is the first step", 0, 0, 0.5, 5 * time.Second},
		{"negative attempt is the first step", -3, 0, 0.5, 5 * time.Second},
		{"jitter out of range is clamped", 1, 0, 7, 6 * time.Second},
		{"negative jitter is clamped", 1, 0, -1, 4 * time.Second},
		{"retry-after longer than the step wins", 1, 20 * time.Second, 0.5, 20 * time.Second},
		{"retry-after shorter than the step is not sooner", 2, 2 * time.Second, 0.5, 30 * time.Second},
		{"retry-after capped at the largest step", 1, 48 * time.Hour, 0.5, time.Hour},
		{"retry-after negative is ignored", 1, -time.Second, 0.5, 5 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := s.Delay(tc.attempt, tc.retryAfter, tc.jitter); got != tc.want {
				t.Fatalf("Delay(%d, %s, %v) = %s, want %s", tc.attempt, tc.retryAfter, tc.jitter, got, tc.want)
			}
		})
	}
	if got := retry.Schedule(nil).Delay(1, time.Minute, 0.5); got != 0 {
		t.Fatalf("empty schedule: %s", got)
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		"5s":              "5s",
		" 5s , 1m30s,2h ": "5s,1m30s,2h0m0s",
		"1ns":             "1ns",
		"168h":            "168h0m0s",
		retry.Default:     "5s,30s,2m0s,10m0s,30m0s,1h0m0s,2h0m0s,4h0m0s,8h0m0s,9h0m0s",
		"500ms,1.5s":      "500ms,1.5s",
		"5":               "5s",
		"5, 30,2m":        "5s,30s,2m0s",
		"604800":          "168h0m0s",
		"007":             "7s",
	}
	for in, want := range good {
		s, err := retry.Parse(in)
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if s.String() != want {
			t.Errorf("Parse(%q) = %s, want %s", in, s, want)
		}
	}
	many := "1s"
	for range retry.MaxSteps {
		many += ",1s"
	}
	for _, in := range []string{"", " ", "0", "604801", "99999999999999999999", "+5", "-5", "1.5", "abc", "5s,", ",5s", "5s,,1m", "0s", "-5s", "169h", "5s;30s", "1e3s", many} {
		if _, err := retry.Parse(in); !errors.Is(err, retry.ErrInvalid) {
			t.Errorf("Parse(%q) = %v, want ErrInvalid", in, err)
		}
	}
}

// FuzzParse: any text either parses into steps within the bounds, whose
// String parses back to the same schedule, or is rejected with ErrInvalid.
func FuzzParse(f *testing.F) {
	for _, s := range []string{retry.Default, "", "5s", "0s", "-1s", "1e9h", "5s,,", "1h1h1h", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := retry.Parse(in)
		if err != nil {
			if !errors.Is(err, retry.ErrInvalid) {
				t.Fatalf("Parse(%q): unexpected error %v", in, err)
			}
			return
		}
		if len(s) == 0 || len(s) > retry.MaxSteps {
			t.Fatalf("Parse(%q): %d steps", in, len(s))
		}
		for _, d := range s {
			if d <= 0 || d > retry.MaxStep {
				t.Fatalf("Parse(%q): step %s out of bounds", in, d)
			}
		}
		back, err := retry.Parse(s.String())
		if err != nil || back.String() != s.String() {
			t.Fatalf("round trip of %q: %v %v", in, back, err)
		}
		if d := s.Delay(len(s)+3, 0, 0.999); d > s.Largest()*6/5 {
			t.Fatalf("delay %s above the largest step +20%%", d)
		}
	})
}

func TestWriteWait(t *testing.T) {
	for _, tc := range []struct {
		d          time.Duration
		jitter     float64
		wait, next time.Duration
	}{
		{retry.WriteFirst, 0, 25 * time.Millisecond, 100 * time.Millisecond},
		{retry.WriteFirst, 0.5, 37500 * time.Microsecond, 100 * time.Millisecond},
		{time.Second, 0.999, 999500 * time.Microsecond, retry.WriteMax},
		{retry.WriteMax, 0, time.Second, retry.WriteMax},
	} {
		wait, next := retry.WriteWait(tc.d, tc.jitter)
		if wait != tc.wait || next != tc.next {
			t.Errorf("WriteWait(%s, %v) = %s, %s; want %s, %s", tc.d, tc.jitter, wait, next, tc.wait, tc.next)
		}
	}
}

func TestLeaseDeadline(t *testing.T) {
	at := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		lease, after time.Duration
	}{
		{40 * time.Second, 35 * time.Second}, // margin 5 s
		{8 * time.Second, 6 * time.Second},   // margin a quarter
	} {
		if got := retry.LeaseDeadline(at, tc.lease); !got.Equal(at.Add(tc.after)) {
			t.Errorf("LeaseDeadline(lease %s) = %s after the claim, want %s", tc.lease, got.Sub(at), tc.after)
		}
	}
}
