package console_test

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/messaging-server/messaging-server/internal/e2e"
)

// binDir holds the built programs the browser test runs; empty under
// -short, which skips that test.
var binDir string

// leakOptions ignore the same process-wide goroutines internal/api's tests
// ignore: fiber's limiter sweeper and clocks, fasthttp's Date header and
// its idle-worker sweeper, which notices a shutdown only after its 10 s
// sleep.
var leakOptions = []goleak.Option{
	goleak.IgnoreTopFunction("github.com/gofiber/fiber/v2/internal/memory.(*Storage).gc"),
	goleak.IgnoreTopFunction("github.com/gofiber/fiber/v2/utils.StartTimeStampUpdater.func1.1"),
	goleak.IgnoreTopFunction("github.com/gofiber/fiber/v2/internal/memory.New.StartTimeStampUpdater.func1.1"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(leakChecked{m}.Run())
	}
	os.Exit(e2e.RunWithBinaries(leakChecked{m}, func(dir string) { binDir = dir }, nil))
}

// leakChecked runs the tests and then fails the run on a leaked goroutine,
// as goleak.VerifyTestMain does.
type leakChecked struct{ m *testing.M }

func (l leakChecked) Run() int {
	code := l.m.Run()
	if code != 0 {
		return code
	}
	if err := goleak.Find(leakOptions...); err != nil {
		_, _ = fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
		return 1
	}
	return 0
}
