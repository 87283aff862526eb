package bench

import (
	"math"
	"strings"
	"testing"
)

func TestParseCPUStat(t *testing.T) {
	const stat = "cpu  135594 7 53206 20999 663 0 623 5 100 0\ncpu0 67828 0 25955 11539 95 0 183 0 0 0\nintr 1 2 3\n"
	got, err := ParseCPUStat(strings.NewReader(stat))
	if err != nil {
		t.Fatal(err)
	}
	// busy = user+nice+system+irq+softirq+steal (guest is inside user);
	// idle = idle+iowait.
	if want := (CPUTimes{Busy: 135594 + 7 + 53206 + 0 + 623 + 5, Idle: 20999 + 663}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// An old kernel's four-field line.
	old, err := ParseCPUStat(strings.NewReader("cpu 10 0 5 85\n"))
	if err != nil || old != (CPUTimes{Busy: 15, Idle: 85}) {
		t.Fatalf("four fields: %+v, %v", old, err)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4\n", "cpu 1 2 3\n", "cpu 1 2 x 4\n", "cpu 1 2 -3 4\n"} {
		if _, err := ParseCPUStat(strings.NewReader(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestBusyPercent(t *testing.T) {
	from := CPUTimes{Busy: 1000, Idle: 500}
	if got, ok := BusyPercent(from, CPUTimes{Busy: 1150, Idle: 550}); !ok || math.Abs(got-75) > 1e-9 {
		t.Fatalf("busy = %v, %v; want 75", got, ok)
	}
	if _, ok := BusyPercent(from, from); ok {
		t.Fatal("no tick passed, yet a figure was given")
	}
	if _, ok := BusyPercent(from, CPUTimes{Busy: 900, Idle: 600}); ok {
		t.Fatal("a counter went backwards, yet a figure was given")
	}
}

func TestReadCPUOnThisMachine(t *testing.T) {
	if _, err := readCPU(); err != nil {
		t.Skipf("no /proc/stat here: %v", err)
	}
	var w cpuWindow
	w.begin()
	if !w.started {
		t.Fatal("window did not start")
	}
}

// FuzzParseCPUStat feeds arbitrary text: the parser must never panic, and
// what it accepts must be a cpu line whose counters add up.
func FuzzParseCPUStat(f *testing.F) {
	f.Add("cpu  135594 0 53206 20999 663 0 623 0 0 0\n")
	f.Add("cpu 1 2 3 4\ncpu0 1 2 3 4\n")
	f.Add("cpu 18446744073709551615 18446744073709551615 0 0\n")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseCPUStat(strings.NewReader(s))
		if err != nil {
			return
		}
		if !strings.Contains(s, "cpu") {
			t.Fatalf("accepted %q with no cpu line: %+v", s, got)
		}
	})
}
