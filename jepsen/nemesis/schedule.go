package nemesis

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/dominus-kernel/dominus/jepsen/netfault"
)

// timing is what the schedule loop reads of a planned step.
type timing struct {
	at   time.Duration // offset from the nemesis's start
	kind Kind
	hold time.Duration
}

// planned is a step of a schedule (Step, FedStep).
type planned interface{ timing() timing }

func (s Step) timing() timing    { return timing{at: s.At, kind: s.Kind, hold: s.Hold} }
func (s FedStep) timing() timing { return timing{at: s.At, kind: s.Kind, hold: s.Hold} }

// injector applies one step of kind S. It returns the fault as applied
// (its description, nodes and cuts) and the undo, which runs even when
// the run is being cancelled; a nil undo marks a permanent fault.
type injector[S planned] func(ctx context.Context, st S) (Fault, func() error, error)

// core is what every nemesis shares: the run clock, the log, the record
// of faults as they were applied, and the loop that walks a schedule.
type core struct {
	now  func() int64
	logf func(format string, args ...any)

	mu     sync.Mutex // guards faults and the state of the nemesis embedding core
	faults []Fault
}

func newCore(now func() int64, logf func(string, ...any)) core {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return core{now: now, logf: logf}
}

// Faults returns the faults applied so far.
func (c *core) Faults() []Fault {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Fault(nil), c.faults...)
}

// walk executes steps in order, each at its offset from start (or as
// soon as the previous one is undone), and undoes each after its hold.
// It returns at the end of the schedule, at the first error, or when
// ctx is done; the step in progress is undone first.
func walk[S planned](ctx context.Context, c *core, steps []S, start time.Time, inject injector[S]) error {
	for _, st := range steps {
		t := st.timing()
		if err := sleepUntil(ctx, start.Add(t.at)); err != nil {
			return nil
		}
		f, undo, err := inject(ctx, st)
		if err == nil {
			f.Kind = t.kind
			err = c.hold(ctx, t, f, undo)
		}
		if err != nil {
			return fmt.Errorf("nemesis: %s: %w", t.kind, err)
		}
	}
	return nil
}

// hold records f as in effect from now, keeps it for the step's hold
// and undoes it. A permanent fault (nil undo) is recorded as in effect
// for an instant.
func (c *core) hold(ctx context.Context, t timing, f Fault, undo func() error) error {
	f.Start = c.now()
	if undo == nil {
		f.End = f.Start
		c.record(f)
		c.logf("nemesis: %s: %s", t.kind, f.Desc)
		return nil
	}
	c.logf("nemesis: %s: %s", t.kind, f.Desc)
	_ = sleepFor(ctx, t.hold) // a cancelled run still undoes the fault
	err := undo()
	f.End = c.now()
	c.record(f)
	if err != nil {
		return fmt.Errorf("undo %s: %w", f.Desc, err)
	}
	c.logf("nemesis: %s undone after %.1fs", t.kind, float64(f.End-f.Start)/1e9)
	return nil
}

func (c *core) record(f Fault) {
	c.mu.Lock()
	c.faults = append(c.faults, f)
	c.mu.Unlock()
}

// pollLeader asks find for the leader every 100ms, up to limit; "" when
// none was found.
func pollLeader(ctx context.Context, limit time.Duration, find func(context.Context) string) string {
	deadline := time.Now().Add(limit)
	for {
		if l := find(ctx); l != "" || time.Now().After(deadline) {
			return l
		}
		if sleepFor(ctx, 100*time.Millisecond) != nil {
			return ""
		}
	}
}

// healer removes every rule of a network.
type healer interface{ Heal() error }

// opener proves paths open.
type opener interface {
	ExpectOpen(ctx context.Context, pairs []netfault.Pair, attempts int) error
}

// healNetwork removes every rule of net and, when there is a probe,
// proves the pairs open; what names the network in the error. A nil net
// has nothing to heal.
func healNetwork(ctx context.Context, net healer, probe opener, pairs func() []netfault.Pair, what string) error {
	if net == nil {
		return nil
	}
	if err := net.Heal(); err != nil {
		return err
	}
	if probe == nil {
		return nil
	}
	if err := probe.ExpectOpen(ctx, pairs(), 5); err != nil {
		return fmt.Errorf("%s still cut after removing every rule: %w", what, err)
	}
	return nil
}

// summarize counts faults by kind, in the order of kinds ("kill=2
// loss=1"), or "none".
func summarize(fs []Fault, kinds []Kind) string {
	count := map[Kind]int{}
	for _, f := range fs {
		count[f.Kind]++
	}
	var parts []string
	for _, k := range kinds {
		if count[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, count[k]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

func sleepUntil(ctx context.Context, t time.Time) error {
	return sleepFor(ctx, time.Until(t))
}

func sleepFor(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}
