package delivery

import "time"

// SetRecordLinger sets how long an outcome waits for others to share its
// record statement, so that a test can put every outcome of a burst in one
// batch. Call it before Run.
func SetRecordLinger(s *Service, d time.Duration) { s.linger = d }
