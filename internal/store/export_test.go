package store

// ClaimSQL exposes the claim statement to tests that EXPLAIN it.
const ClaimSQL = claimSQL

// RecordSQL and ReleaseSQL expose the batch statements to the plan test.
const (
	RecordSQL  = recordSQL
	ReleaseSQL = releaseSQL
)

// CreateSQL exposes the create statement to the plan test.
const CreateSQL = createSQL
