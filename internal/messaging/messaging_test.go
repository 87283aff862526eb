package messaging_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/messaging-server/messaging-server/internal/messaging"
)

func TestKindOf(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		messaging.StatusSent:     messaging.KindSent,
		messaging.StatusPending:  messaging.KindRetry,
		messaging.StatusFailed:   messaging.KindFailed,
		messaging.StatusExpired:  messaging.KindFailed,
		messaging.StatusCanceled: messaging.KindFailed,
		messaging.StatusSending:  messaging.KindFailed,
		"":                       messaging.KindFailed,
	}
	for status, want := range cases {
		if got := messaging.KindOf(status); got != want {
			t.Errorf("KindOf(%q) = %q, want %q", status, got, want)
		}
		if !slices.Contains(messaging.Kinds, messaging.KindOf(status)) {
			t.Errorf("KindOf(%q) is not one of Kinds", status)
		}
	}
}

// The lists hold each name once. The schema's CHECK constraints are
// checked against them in internal/store (TestSchemaChecksMatchTheDomain).
func TestListsAreDistinct(t *testing.T) {
	t.Parallel()
	for name, list := range map[string][]string{"Statuses": messaging.Statuses, "Kinds": messaging.Kinds} {
		seen := map[string]bool{}
		for _, s := range list {
			if s == "" || seen[s] {
				t.Errorf("%s: %q empty or repeated in %v", name, s, list)
			}
			seen[s] = true
		}
	}
	if len(messaging.Statuses) != 7 || len(messaging.Kinds) != 4 {
		t.Fatalf("%d statuses and %d kinds, want 7 and 4", len(messaging.Statuses), len(messaging.Kinds))
	}
}

func TestDuplicateIDErrorIsErrDuplicate(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("create: %w", &messaging.DuplicateIDError{Index: 2, ID: "a"})
	if !errors.Is(err, messaging.ErrDuplicate) || errors.Is(err, messaging.ErrNotFound) {
		t.Fatalf("errors.Is misreads %v", err)
	}
	var d *messaging.DuplicateIDError
	if !errors.As(err, &d) || d.Index != 2 || d.ID != "a" {
		t.Fatalf("errors.As: %+v", d)
	}
	if want := `item 2: message id "a" already exists with a different body`; d.Error() != want {
		t.Fatalf("%q, want %q", d.Error(), want)
	}
}
