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

// Env is what a workload's setup may use.
type Env struct {
	// Nodes are the node names, in order (history.Op.Node takes them).
	Nodes []string
	// Client returns a client of node that sends token, makes exactly one
	// attempt per call and bounds it by the op timeout. Clients of one
	// node share their connections.
	Client func(node, token string) (*client.Client, error)
	// Perform records inv in the history as an op of a setup process,
	// performs it through the workload with the root token and returns
	// its completion (which the generator has observed).
	Perform func(ctx context.Context, inv history.Op) history.Op
}

// Setup is implemented by a workload that needs state in the kernel
// before its clients start (capabilities to use). The runner calls it
// once, after NewGenerator and before any fault; an error makes the run
// invalid.
type Setup interface {
	Setup(ctx context.Context, env Env) error
}

// Functions is implemented by a workload that can take part in a Mix:
// the op names (history.Op.F) it generates, disjoint from every other
// workload's.
type Functions interface {
	Functions() []string
}
