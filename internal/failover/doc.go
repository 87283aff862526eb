// Package failover holds the proof of several providers through the built
// programs: failover while one provider is down, its recovery, routes by
// number prefix, a rate limit shared by every worker, and refused
// configuration. The package has no non-test code besides this comment.
package failover
