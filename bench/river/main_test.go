package main

import (
	"io"
	"testing"
)

func TestParseArgs(t *testing.T) {
	o, err := parseArgs([]string{"work", "-postgres", "postgres://x/y", "-webhook", "http://127.0.0.1:1/", "-workers", "64", "-variant", "complete-tx"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.command != "work" || o.workers != 64 || o.variant != VariantCompleteTx {
		t.Fatalf("options = %+v", o)
	}
	if _, err := parseArgs([]string{"setup", "-postgres", "postgres://x/y"}, io.Discard); err != nil {
		t.Fatalf("setup needs no webhook: %v", err)
	}
	for _, bad := range [][]string{
		nil, {"drain"}, {"setup"}, {"work", "-postgres", "p"},
		{"work", "-postgres", "p", "-webhook", "w", "-variant", "x"},
		{"work", "-postgres", "p", "-webhook", "w", "-workers", "0"},
		{"setup", "-postgres", "p", "extra"},
	} {
		if _, err := parseArgs(bad, io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestStatementLabel(t *testing.T) {
	c := newStatementCounter()
	if got := c.label("\n  UPDATE messages SET status = 'sent', is_sent = TRUE"); got != "UPDATE messages SET status = 'sent', is_sent" {
		t.Fatalf("label = %q", got)
	}
}
