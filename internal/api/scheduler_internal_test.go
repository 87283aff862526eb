package api

import (
	"testing"
	"time"
)

func TestNextAfter(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const iv = 2 * time.Minute
	for _, tc := range []struct {
		name    string
		planned time.Time
		now     time.Time
		want    time.Time
	}{
		{"ahead stays", t0.Add(time.Minute), t0, t0.Add(time.Minute)},
		{"exactly now moves one interval", t0, t0, t0.Add(iv)},
		{"just passed moves one interval", t0, t0.Add(time.Second), t0.Add(iv)},
		{"several intervals behind", t0, t0.Add(5*iv + time.Second), t0.Add(6 * iv)},
		{"on an interval boundary", t0, t0.Add(3 * iv), t0.Add(4 * iv)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := nextAfter(tc.planned, iv, tc.now); !got.Equal(tc.want) {
				t.Fatalf("nextAfter(%v, %v, %v) = %v, want %v", tc.planned, iv, tc.now, got, tc.want)
			}
		})
	}
}

func TestExpectedRun(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const iv = time.Minute
	at := func(d time.Duration) *time.Time { v := t0.Add(d); return &v }
	for _, tc := range []struct {
		name     string
		lastTick *time.Time
		switched time.Time
		now      time.Time
		want     time.Time
	}{
		{"just started, never ticked", nil, t0, t0, t0.Add(iv)},
		{"just started, ticked before the stop", at(-time.Hour), t0, t0.Add(time.Second), t0.Add(iv)},
		{"ticking since long: after the last tick", at(30 * time.Second), t0.Add(-time.Hour), t0.Add(40 * time.Second), t0.Add(30*time.Second + iv)},
		{"estimate passed: carried forward", nil, t0, t0.Add(3*iv + time.Second), t0.Add(4 * iv)},
		{"tick at the switch's change", at(0), t0, t0, t0.Add(iv)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := expectedRun(tc.lastTick, tc.switched, iv, tc.now)
			if !got.Equal(tc.want) {
				t.Fatalf("expectedRun(%v, %v, %v) = %v, want %v", tc.lastTick, tc.switched, tc.now, got, tc.want)
			}
			if !got.After(tc.now) {
				t.Fatalf("expectedRun = %v, not after now %v", got, tc.now)
			}
		})
	}
}
