package app

import (
	"net"
	"testing"
)

func TestSetsQueryExecMode(t *testing.T) {
	t.Parallel()
	cases := []struct {
		uri  string
		want bool
	}{
		{"postgres://u@h:5432/db?sslmode=disable", false},
		{"postgres://u@h:5432/db", false},
		{"postgres://u@h:5432/db?sslmode=disable&default_query_exec_mode=exec", true},
		{"postgresql://u@h/db?default_query_exec_mode=cache_statement", true},
		{"postgres://u@h/db?default_query_exec_mode=", true},
		{"postgres://u@h/db?application_name=default_query_exec_mode", false},
		{"postgres://u:p%ZZ@h/db", false},
	}
	for _, tc := range cases {
		if got := setsQueryExecMode(tc.uri); got != tc.want {
			t.Errorf("setsQueryExecMode(%q) = %v, want %v", tc.uri, got, tc.want)
		}
	}
}

func TestSameEndpoint(t *testing.T) {
	t.Parallel()
	str := func(s string) *string { return &s }
	port := func(p int32) *int32 { return &p }
	tcp := func(ip string, p int) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: p} }
	cases := []struct {
		name  string
		local net.Addr
		host  *string
		port  *int32
		want  bool
	}{
		{"direct IPv4", tcp("127.0.0.1", 41000), str("127.0.0.1"), port(41000), true},
		{"direct IPv6", tcp("::1", 41000), str("::1"), port(41000), true},
		{"direct, IPv4 in IPv6 form", tcp("::ffff:10.0.0.7", 5000), str("10.0.0.7"), port(5000), true},
		{"a pooler's port", tcp("127.0.0.1", 41000), str("127.0.0.1"), port(52000), false},
		{"a pooler's host", tcp("10.0.0.7", 41000), str("10.0.0.9"), port(41000), false},
		{"unix socket on the server", tcp("127.0.0.1", 41000), nil, port(-1), false},
		{"unix socket here", &net.UnixAddr{Name: "/run/postgresql/.s.PGSQL.5432", Net: "unix"}, str("127.0.0.1"), port(41000), false},
		{"unreadable host", tcp("127.0.0.1", 41000), str("not an address"), port(41000), false},
	}
	for _, tc := range cases {
		if got := sameEndpoint(tc.local, tc.host, tc.port); got != tc.want {
			t.Errorf("%s: sameEndpoint = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCacheCommand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want bool
	}{
		{"get", true}, {"SET", true}, {"del", true},
		{"evalsha", false}, {"brpoplpush", false}, {"publish", false}, {"zadd", false}, {"", false},
	}
	for _, tt := range tests {
		if got := CacheCommand(tt.name); got != tt.want {
			t.Errorf("CacheCommand(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}
