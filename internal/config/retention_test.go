package config

import (
	"testing"
	"time"
)

func TestParseDays(t *testing.T) {
	t.Parallel()
	const day = 24 * time.Hour
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true},
		{"30d", 30 * day, true},
		{" 1d ", day, true},
		{"2s", 2 * time.Second, true},
		{"720h", 30 * day, true},
		{"90", 90 * time.Second, true},
		{"d", 0, false},
		{"-1d", 0, false},
		{"1.5d", 0, false},
		{"1e3d", 0, false},
		{"99999999999d", 0, false},
		{"ten days", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseDays(tt.in)
		if (err == nil) != tt.ok || tt.ok && got != tt.want {
			t.Errorf("ParseDays(%q) = %s, %v; want %s, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestRetentionVariables(t *testing.T) {
	t.Parallel()
	base := []string{"WEBHOOK_URL=http://127.0.0.1:1/x"}
	cfg, err := Load(base)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Retention() != 0 || cfg.RetentionInterval != 10*time.Minute || cfg.RetentionBatch != 1000 {
		t.Fatalf("defaults: %s %s %d", cfg.Retention(), cfg.RetentionInterval, cfg.RetentionBatch)
	}
	cfg, err = Load(append(base, "RETENTION_PERIOD=30d", "RETENTION_INTERVAL=1s", "RETENTION_BATCH=5"))
	if err != nil || cfg.Retention() != 30*24*time.Hour || cfg.RetentionInterval != time.Second || cfg.RetentionBatch != 5 {
		t.Fatalf("set: %+v %v", cfg, err)
	}
	for _, bad := range []string{
		"RETENTION_PERIOD=-1s", "RETENTION_PERIOD=36501d", "RETENTION_PERIOD=x", "RETENTION_PERIOD=",
		"RETENTION_INTERVAL=500ms", "RETENTION_INTERVAL=25h", "RETENTION_BATCH=0", "RETENTION_BATCH=100001",
	} {
		if _, err := Load(append(base, bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func FuzzParseDays(f *testing.F) {
	for _, s := range []string{"0", "30d", "2s", "1h30m", "d", "-1d", "99999999999d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDays(s)
		if err == nil && d < 0 && s != "" && s[0] != '-' && s[0] != ' ' {
			// A negative result needs a minus sign in the input.
			t.Fatalf("ParseDays(%q) = %s", s, d)
		}
	})
}
