package breaker

// TestSignals lets a test wait for what the breaker does instead of for
// time, in the manner of River's testsignals. Production leaves
// Deps.Signals nil. A signal is sent without blocking: a test gives the
// channel room for the signals it expects, and a full channel drops one.
type TestSignals struct {
	// Transition hears every change of the shared state this process
	// made: the write that tripped or closed the breaker, the claim of the
	// half-open probe, the probe's failed result.
	Transition chan Transition
}

func (b *Breaker) signal(tr Transition) {
	if b.d.Signals == nil || b.d.Signals.Transition == nil {
		return
	}
	select {
	case b.d.Signals.Transition <- tr:
	default:
	}
}
