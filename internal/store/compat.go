package store

// Deprecated forwarding names for the packages that still say store.X for
// what internal/messaging now names. They go once those callers say
// messaging.X.

import "github.com/messaging-server/messaging-server/internal/messaging"

// Deprecated: use the messaging names.
const (
	StatusPending    = messaging.StatusPending
	StatusSending    = messaging.StatusSending
	StatusSent       = messaging.StatusSent
	StatusFailed     = messaging.StatusFailed
	StatusExpired    = messaging.StatusExpired
	StatusCanceled   = messaging.StatusCanceled
	ReceiptClockSkew = messaging.ReceiptClockSkew
)

// Deprecated: use the messaging names.
var (
	Statuses             = messaging.Statuses
	ErrNotFound          = messaging.ErrNotFound
	ErrNotFailed         = messaging.ErrNotFailed
	ErrDuplicate         = messaging.ErrDuplicate
	ErrNotCancelable     = messaging.ErrNotCancelable
	ErrRemoteNotFound    = messaging.ErrRemoteNotFound
	ErrAmbiguousRemoteID = messaging.ErrAmbiguousRemoteID
	ErrReceiptFuture     = messaging.ErrReceiptFuture
	ErrReceiptBeforeSent = messaging.ErrReceiptBeforeSent
)
