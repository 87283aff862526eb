package api

// EncodeCursor lets the HTTP tests (package api_test) build a cursor the way
// the API issues one, to page from a chosen row.
var EncodeCursor = encodeCursor

// PageCursor is the position EncodeCursor encodes.
type PageCursor = pageCursor
