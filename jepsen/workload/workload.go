package workload

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/dominus-kernel/dominus/client"
	"github.com/dominus-kernel/dominus/jepsen/checker"
	"github.com/dominus-kernel/dominus/jepsen/history"
)

// Generator produces invocations. It is shared by every client process
// and safe for concurrent use.
type Generator interface {
	// Next returns the next invocation of process: F and the inputs
	// (Key, Value, ...). The runner fills in Process, Node and
	// RequestID.
	Next(process int, rng *rand.Rand) history.Op
	// Observe learns from a completion.
	Observe(completion history.Op)
	// Final returns invocations to perform once the faults are healed
	// (e.g. a read of every key).
	Final() []history.Op
}

// CheckOptions tune a workload's checkers.
type CheckOptions struct {
	Timeout time.Duration // linearizability search bound
}

// Workload is a kind of client activity.
type Workload interface {
	Name() string
	NewGenerator() Generator
	// Invoke performs inv through c and returns its completion: inv with
	// Type OK, Fail or Info and the answer filled in. It must return
	// when ctx is done.
	Invoke(ctx context.Context, c *client.Client, inv history.Op) history.Op
	// Checkers judge the workload's history (beyond the checkers every
	// run applies).
	Checkers(o CheckOptions) []checker.Checker
}
