package app

import "testing"

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
