package retention_test

import (
	"testing"
	"time"

	"github.com/messaging-server/messaging-server/internal/retention"
)

func TestPause(t *testing.T) {
	t.Parallel()
	tests := []struct{ took, want time.Duration }{
		{0, 10 * time.Millisecond},
		{time.Millisecond, 10 * time.Millisecond},
		{50 * time.Millisecond, 50 * time.Millisecond},
		{time.Second, time.Second},
		{time.Minute, time.Second},
	}
	for _, tt := range tests {
		if got := retention.Pause(tt.took); got != tt.want {
			t.Errorf("Pause(%s) = %s, want %s", tt.took, got, tt.want)
		}
	}
}
