package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/messaging-server/messaging-server/internal/config"
)

// API_READ_KEY is accepted only with a different API_KEY, and its value is
// never echoed.
func TestAPIReadKey(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		vars []string
		ok   bool
	}{
		{nil, true},
		{[]string{"API_KEY=full-key-0123456789"}, true},
		{[]string{"API_KEY=full-key-0123456789", "API_READ_KEY=read-key-0123456789"}, true},
		{[]string{"API_READ_KEY=read-key-0123456789"}, false},
		{[]string{"API_KEY=full-key-0123456789", "API_READ_KEY=full-key-0123456789"}, false},
		{[]string{"API_KEY=full-key-0123456789", "API_READ_KEY= full-key-0123456789 "}, false},
	} {
		cfg, err := config.Load(append(append([]string(nil), base...), c.vars...))
		if c.ok {
			if err != nil {
				t.Errorf("%v: %v", c.vars, err)
			}
			continue
		}
		var ce *config.Error
		if !errors.As(err, &ce) || ce.Var != "API_READ_KEY" || strings.Contains(err.Error(), "key-0123456789") {
			t.Errorf("%v: err = %v, want a config.Error naming API_READ_KEY without its value (cfg %v)", c.vars, err, cfg.APIReadKey != "")
		}
	}
}
