package delivery

// TestSignals lets a test wait for what the engine does instead of for
// time, in the manner of River's testsignals. Production leaves
// Params.Signals nil, and every signal is then a no-op. A signal is sent
// without blocking: a test gives each channel it reads room for the
// signals it expects, and a full channel drops the signal.
//
// Every row a claim returns ends in exactly one record batch or one
// hand-back, so the sizes the three count signals carry balance: the sum
// of Claimed is the sum of Recorded plus the sum of HandedBack once the
// engine is idle.
type TestSignals struct {
	// Claimed hears the number of rows of each claim statement that
	// worked, 0 included (the budget is spent, nothing is due, or sending
	// is stopped).
	Claimed chan int
	// Recorded hears the number of outcomes of each record batch once it
	// is settled: written, refused by the lease fence, or given up.
	Recorded chan int
	// HandedBack hears the number of claimed rows each hand-back gave up
	// without a call (the statement may fail: they return after their
	// lease then).
	HandedBack chan int
	// Idle hears when the producer has nothing claimed in flight or
	// queued, no claim running, and claims nothing more until a tick, a
	// wake or the end of a breaker cooldown. Outcomes of the last calls
	// may still be being recorded.
	Idle chan struct{}
	// RecordFailed hears when recording outcomes starts failing.
	RecordFailed chan struct{}
	// RecordRecovered hears when a record worked again after failing.
	RecordRecovered chan struct{}
}

// emit sends v on ch without blocking; a nil ch is a no-op.
func emit[T any](ch chan T, v T) {
	if ch == nil {
		return
	}
	select {
	case ch <- v:
	default:
	}
}
