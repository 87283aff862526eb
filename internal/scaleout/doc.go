// Package scaleout holds only tests: the programs run beyond one server of
// each kind. They start real redis-server, redis-sentinel, Redis Cluster
// and PgBouncer processes on loopback ports, run the built binaries against
// them, and check that every message is sent.
package scaleout
