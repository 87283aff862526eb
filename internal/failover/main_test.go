package failover_test

import (
	"flag"
	"os"
	"testing"

	"github.com/messaging-server/messaging-server/internal/e2e"
)

var binDir string

// TestMain builds the programs once; -short skips every test here without
// building.
func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	os.Exit(e2e.RunWithBinaries(m, func(dir string) { binDir = dir }, nil))
}
