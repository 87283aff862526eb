package store

// ClaimSQL exposes the claim statement to tests that EXPLAIN it.
const ClaimSQL = claimSQL
