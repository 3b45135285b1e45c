package nemesis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dominus-kernel/dominus/jepsen/netfault"
)

// Processes is what the nemesis needs of the agents, by node name.
type Processes interface {
	Names() []string // in node-index order
	IP(name string) string
	Leader(ctx context.Context) string // "" when no node reports itself leader
	Kill(name string) error            // SIGKILL and wait for the exit
	Start(name string, clockOffset time.Duration) error
	Stop(name string) error // graceful stop (resumes a paused process first)
	Pause(name string) error
	Resume(name string) error
	Running(name string) bool
	Paused(name string) bool
	ClockOffset(name string) time.Duration
}

// Network changes the packet filter between node IPs.
type Network interface {
	Drop(src, dst string) error
	Loss(src, dst string, p float64) error
	Delay(src, dst string, d time.Duration) error
	Heal() error // remove every rule
}

// Probe checks what the network really does.
type Probe interface {
	ExpectBlocked(ctx context.Context, pairs []netfault.Pair) error
	ExpectOpen(ctx context.Context, pairs []netfault.Pair, attempts int) error
	ExpectDelayed(ctx context.Context, pairs []netfault.Pair, min time.Duration, bothWays bool) error
}

// Fault is a fault as it was applied.
type Fault struct {
	Kind  Kind     `json:"kind"`
	Desc  string   `json:"desc"`
	Nodes []string `json:"nodes"`          // the nodes it acted on
	Cuts  []string `json:"cuts,omitempty"` // "src->dst" address pairs dropped
	Start int64    `json:"start"`          // run clock (ns): in effect (probed) from
	End   int64    `json:"end"`            // run clock (ns): undone (probed) at
}

// Nemesis executes schedules.
type Nemesis struct {
	core
	procs Processes
	net   Network // nil: network kinds fail
	probe Probe

	// removed holds nodes a membership step took out of the
	// configuration that have not rejoined; members counts those steps
	// (both guarded by mu).
	removed map[string]bool
	members int
	// snapshotWait bounds each wait of a snapshot-lag step.
	snapshotWait time.Duration
}

// New returns a nemesis. net and probe may be nil when the schedule has
// no network kinds; now reads the run clock in ns.
func New(procs Processes, net Network, probe Probe, now func() int64, logf func(string, ...any)) *Nemesis {
	return &Nemesis{core: newCore(now, logf), procs: procs, net: net, probe: probe, snapshotWait: snapshotWait}
}

// Run executes the schedule's steps in order, each at its offset from
// start (or as soon as the previous one is undone), and undoes each
// after its hold. It returns at the end of the schedule, at the first
// error, or when ctx is done; the step in progress is undone first.
func (n *Nemesis) Run(ctx context.Context, s Schedule, start time.Time) error {
	return walk(ctx, &n.core, s.Steps, start, n.inject)
}

// inject applies st (see injector).
func (n *Nemesis) inject(ctx context.Context, st Step) (Fault, func() error, error) {
	names := n.procs.Names()
	if st.Node < 0 || st.Node >= len(names) {
		return Fault{}, nil, fmt.Errorf("step targets node %d of %d", st.Node, len(names))
	}
	target := names[st.Node]
	note := ""
	if st.Leader {
		if l := n.leader(ctx, 3*time.Second); l != "" {
			target, note = l, " (leader)"
		} else {
			note = " (no leader; planned fallback)"
		}
	}
	var f Fault
	var undo func() error
	// Undo runs even when the run is being cancelled.
	uctx := context.WithoutCancel(ctx)
	switch st.Kind {
	case PartitionLeader, PartitionOne, PartitionHalves, PartitionBridge, PartitionRing, PartitionOneWay, Loss, Latency:
		if n.net == nil || n.probe == nil {
			return f, nil, errors.New("no network control: iptables is required for this fault")
		}
		cuts, desc, nodes := n.cuts(st, target)
		if len(cuts) == 0 {
			return f, nil, fmt.Errorf("%s cuts nothing", desc)
		}
		f.Desc, f.Nodes = desc+note, nodes
		for _, c := range cuts {
			f.Cuts = append(f.Cuts, c.String())
			var err error
			switch st.Kind {
			case Loss:
				err = n.net.Loss(c.Src, c.Dst, st.Probability)
			case Latency:
				err = n.net.Delay(c.Src, c.Dst, st.Delay)
			default:
				err = n.net.Drop(c.Src, c.Dst)
			}
			if err != nil {
				return f, nil, errors.Join(err, n.healNetwork(ctx))
			}
		}
		switch st.Kind {
		case Loss:
		case Latency:
			// Every delayed pair is delayed both ways.
			if err := n.probe.ExpectDelayed(ctx, cuts, st.Delay, true); err != nil {
				return f, nil, errors.Join(fmt.Errorf("latency not in effect after adding its rules: %w", err), n.healNetwork(ctx))
			}
		default:
			if err := n.probe.ExpectBlocked(ctx, cuts); err != nil {
				return f, nil, errors.Join(fmt.Errorf("partition not in effect after adding its rules: %w", err), n.healNetwork(ctx))
			}
		}
		undo = func() error { return n.healNetwork(uctx) }
	case Kill:
		f.Desc, f.Nodes = fmt.Sprintf("kill -9 %s%s, restart after %s", target, note, st.Hold.Round(time.Millisecond)), []string{target}
		if err := n.procs.Kill(target); err != nil {
			return f, nil, err
		}
		undo = func() error { return n.procs.Start(target, 0) }
	case PauseShort, PauseLong:
		f.Desc, f.Nodes = fmt.Sprintf("SIGSTOP %s%s for %s", target, note, st.Hold.Round(time.Millisecond)), []string{target}
		if err := n.procs.Pause(target); err != nil {
			return f, nil, err
		}
		undo = func() error { return n.procs.Resume(target) }
	case Membership:
		target, note = n.follower(ctx, st.Node)
		f.Desc, f.Nodes = fmt.Sprintf("remove %s%s from the configuration, stop it, wipe its data; after %s it joins again without state",
			target, note, st.Hold.Round(time.Millisecond)), []string{target}
		u, err := n.removeMember(ctx, target)
		if err != nil {
			return f, nil, err
		}
		undo = func() error { return u(uctx) }
	case SnapshotLag:
		target, note = n.follower(ctx, st.Node)
		desc, u, err := n.snapshotLag(ctx, target)
		if err != nil {
			return f, nil, err
		}
		f.Desc, f.Nodes = desc+note, []string{target}
		undo = func() error { return u(uctx) }
	case Clock:
		f.Desc, f.Nodes = fmt.Sprintf("restart %s%s with clock offset %s", target, note, st.ClockOffset), []string{target}
		if err := n.restart(target, st.ClockOffset); err != nil {
			return f, nil, err
		}
		undo = func() error { return n.restart(target, 0) }
	default:
		return f, nil, fmt.Errorf("unknown fault kind %q", st.Kind)
	}
	return f, undo, nil
}

// leader polls for a node that reports itself leader, up to limit.
func (n *Nemesis) leader(ctx context.Context, limit time.Duration) string {
	return pollLeader(ctx, limit, n.procs.Leader)
}

func (n *Nemesis) restart(name string, offset time.Duration) error {
	if n.procs.Running(name) {
		if err := n.procs.Stop(name); err != nil {
			return err
		}
	}
	return n.procs.Start(name, offset)
}

// cuts returns the address pairs to drop for a network step whose
// target node is target, a description and the nodes involved.
func (n *Nemesis) cuts(st Step, target string) ([]netfault.Pair, string, []string) {
	names := n.procs.Names()
	ip := n.procs.IP
	var pairs []netfault.Pair
	cutBoth := func(a, b []string) {
		for _, x := range a {
			for _, y := range b {
				pairs = append(pairs, netfault.Pair{Src: ip(x), Dst: ip(y)}, netfault.Pair{Src: ip(y), Dst: ip(x)})
			}
		}
	}
	cutAll := func() { // every pair, both ways
		for i := range names {
			cutBoth(names[i:i+1], names[i+1:])
		}
	}
	others := func(except ...string) []string {
		var out []string
	next:
		for _, nm := range names {
			for _, e := range except {
				if nm == e {
					continue next
				}
			}
			out = append(out, nm)
		}
		return out
	}
	switch st.Kind {
	case PartitionHalves:
		var minority []string
		for _, i := range st.Minority {
			minority = append(minority, names[i])
		}
		majority := others(minority...)
		cutBoth(minority, majority)
		return pairs, fmt.Sprintf("halves %v | %v", minority, majority), names
	case PartitionBridge:
		var side []string
		for _, i := range st.Minority {
			if names[i] != target {
				side = append(side, names[i])
			}
		}
		other := others(append([]string{target}, side...)...)
		cutBoth(side, other)
		return pairs, fmt.Sprintf("bridge %s between %v and %v", target, side, other), names
	case PartitionRing:
		ring := make([]string, len(st.Ring))
		for i, k := range st.Ring {
			ring[i] = names[k]
		}
		if len(ring) == 3 {
			// Each node hears only the one after it on the ring.
			for i := range ring {
				pairs = append(pairs, netfault.Pair{Src: ip(ring[i]), Dst: ip(ring[(i+1)%3])})
			}
			return pairs, fmt.Sprintf("ring %v: %s hears only %s, %s only %s, %s only %s (each a majority of its own)",
				ring, ring[0], ring[1], ring[1], ring[2], ring[2], ring[0]), names
		}
		// Each node keeps only its two neighbours.
		for i := range ring {
			for j := i + 1; j < len(ring); j++ {
				if d := j - i; d != 1 && d != len(ring)-1 {
					cutBoth(ring[i:i+1], ring[j:j+1])
				}
			}
		}
		return pairs, fmt.Sprintf("ring %v: each node reaches only its neighbours", ring), names
	case Latency:
		if st.AllPairs {
			cutAll()
			return pairs, fmt.Sprintf("+%s on every packet between all nodes", st.Delay), names
		}
		rest := others(target)
		cutBoth([]string{target}, rest)
		return pairs, fmt.Sprintf("+%s on every packet between %s and %v", st.Delay, target, rest), []string{target}
	case PartitionOneWay:
		rest := others(target)
		for _, o := range rest {
			pairs = append(pairs, netfault.Pair{Src: ip(target), Dst: ip(o)})
		}
		return pairs, fmt.Sprintf("one-way: %s -/-> %v (it still hears them)", target, rest), []string{target}
	case Loss:
		cutAll()
		return pairs, fmt.Sprintf("loss p=%.2f between all nodes", st.Probability), names
	default: // isolate the target
		rest := others(target)
		cutBoth([]string{target}, rest)
		return pairs, fmt.Sprintf("isolate %s from %v", target, rest), []string{target}
	}
}

func (n *Nemesis) healNetwork(ctx context.Context) error {
	return healNetwork(ctx, n.net, n.probe, func() []netfault.Pair {
		var ips []string
		for _, nm := range n.procs.Names() {
			ips = append(ips, n.procs.IP(nm))
		}
		return netfault.AllPairs(ips)
	}, "network")
}

// Heal undoes everything a schedule may have left: resumes paused
// processes, removes every rule (and proves every path open), starts
// stopped nodes, restarts nodes running with a clock offset, and
// rejoins nodes a membership step removed (then waits until every node
// is a caught-up voter).
func (n *Nemesis) Heal(ctx context.Context) error {
	var errs []error
	names := n.procs.Names()
	for _, nm := range names {
		if n.procs.Running(nm) && n.procs.Paused(nm) {
			errs = append(errs, n.procs.Resume(nm))
		}
	}
	errs = append(errs, n.healNetwork(ctx))
	for _, nm := range names {
		switch {
		case n.removedNode(nm):
			// rejoined without state by healMembers
		case !n.procs.Running(nm):
			errs = append(errs, n.procs.Start(nm, 0))
		case n.procs.ClockOffset(nm) != 0:
			errs = append(errs, n.restart(nm, 0))
		}
	}
	errs = append(errs, n.healMembers(ctx))
	return errors.Join(errs...)
}

// Summary counts faults by kind ("kill=2 loss=1").
func Summary(fs []Fault) string { return summarize(fs, KnownKinds) }
