// Package faults holds the tests that break things for real (kill -9,
// PostgreSQL connections cut, Redis restarted, a hostile webhook, SIGTERM
// under load, a soak) and check one ledger at the end of each: every row is
// sent or deliberately failed, every sent row reached the webhook, repeats
// carried the same Idempotency-Key, nothing is lost. The package has no
// non-test code besides this comment.
package faults
