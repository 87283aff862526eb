package store

// Forwarding names for the packages that still say store.X for what
// internal/messaging now names; new code says messaging.X. This file goes
// once no caller uses them. (Not marked Deprecated: staticcheck would fail
// the lint of every caller until then.)

import "github.com/messaging-server/messaging-server/internal/messaging"

// Forwarded to internal/messaging.
const (
	StatusPending    = messaging.StatusPending
	StatusSending    = messaging.StatusSending
	StatusSent       = messaging.StatusSent
	StatusFailed     = messaging.StatusFailed
	StatusExpired    = messaging.StatusExpired
	StatusCanceled   = messaging.StatusCanceled
	ReceiptClockSkew = messaging.ReceiptClockSkew
)

// Forwarded to internal/messaging.
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
