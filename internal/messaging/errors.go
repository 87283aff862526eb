package messaging

import (
	"errors"
	"fmt"
	"time"
)

// Errors callers branch on.
var (
	ErrNotFound = errors.New("message not found")
	// ErrProviderNotFound: PROVIDERS names no provider so.
	ErrProviderNotFound = errors.New("provider not found")
	// ErrEventNotFound: no status callback event has the id.
	ErrEventNotFound = errors.New("event not found")
	ErrDuplicate     = errors.New("message id already exists")
	// ErrNotFailed: a manual retry of a message that is not failed.
	ErrNotFailed = errors.New("message is not failed")
	// ErrNotCancelable: a cancel of a message that is no longer pending.
	ErrNotCancelable = errors.New("message can no longer be canceled")
	// ErrOptOutNotFound: the number has no opt-out.
	ErrOptOutNotFound = errors.New("no opt-out for this number")
)

// Errors of a delivery receipt that cannot be applied.
var (
	// ErrRemoteNotFound: no sent message carries the receipt's remote id.
	ErrRemoteNotFound = errors.New("no sent message has this remote id")
	// ErrAmbiguousRemoteID: several sent messages carry the receipt's
	// remote id, so it cannot say which one it is about.
	ErrAmbiguousRemoteID = errors.New("several sent messages have this remote id")
	// ErrReceiptFuture: the receipt is dated more than ReceiptClockSkew
	// after the database's now.
	ErrReceiptFuture = errors.New("receipt timestamp is in the future")
	// ErrReceiptBeforeSent: the receipt is dated more than
	// ReceiptClockSkew before the message's sent_at.
	ErrReceiptBeforeSent = errors.New("receipt timestamp is before the message was sent")
)

// ReceiptClockSkew is how far a receipt's timestamp may lie after the
// database's now, or before the message's sent_at: the provider's clock is
// not ours.
const ReceiptClockSkew = 5 * time.Minute

// DuplicateIDError says that item Index of a create reused an existing
// message's id with a different body. It matches ErrDuplicate.
type DuplicateIDError struct {
	Index int
	ID    string
}

func (e *DuplicateIDError) Error() string {
	return fmt.Sprintf("item %d: message id %q already exists with a different body", e.Index, e.ID)
}

// Is makes a DuplicateIDError match ErrDuplicate.
func (e *DuplicateIDError) Is(target error) bool { return target == ErrDuplicate }
