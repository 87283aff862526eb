// Package task names the asynq tasks the programs exchange. It imports
// nothing, so the scheduler and the API can name a task without linking the
// worker that runs it.
package task

// Dispatch is the asynq task type the scheduler enqueues once per tick and
// the workers run.
const Dispatch = "messages:dispatch"
