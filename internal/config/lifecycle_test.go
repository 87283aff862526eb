package config_test

import (
	"errors"
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/config"
)

func TestDefaultValidityPeriod(t *testing.T) {
	t.Parallel()
	c, err := config.Load(base)
	if err != nil {
		t.Fatal(err)
	}
	if c.DefaultValidityPeriod != 0 || c.DefaultValidity() != 0 {
		t.Fatalf("default %s, want 0 (no expiry)", c.DefaultValidityPeriod)
	}
	for val, want := range map[string]time.Duration{"1": time.Second, "7200": 2 * time.Hour, "2592000": 30 * 24 * time.Hour} {
		c, err := config.Load(append(append([]string{}, base...), "DEFAULT_VALIDITY_PERIOD="+val))
		if err != nil || c.DefaultValidity() != want {
			t.Errorf("%s: %v %v, want %v", val, c.DefaultValidity(), err, want)
		}
	}
	for _, bad := range []string{"", " ", "-1", "2592001", "99999999999999999999999", "abc", "1.5", "721h", "1500ms"} {
		_, err := config.Load(append(append([]string{}, base...), "DEFAULT_VALIDITY_PERIOD="+bad))
		var ce *config.Error
		if !errors.As(err, &ce) || ce.Var != "DEFAULT_VALIDITY_PERIOD" {
			t.Errorf("DEFAULT_VALIDITY_PERIOD=%q: got %v, want an error naming it", bad, err)
		}
	}
}
