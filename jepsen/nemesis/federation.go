package nemesis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/dominus-kernel/dominus/jepsen/netfault"
)

// Federation fault kinds: the vocabulary of a -federation run, between
// two domain kernels A and B (B is the target of kills and of the
// revocation). They are not in AllKinds: a single kernel has no bus.
const (
	// BusCut drops the bus (UDP) between A's and B's node addresses, in
	// both directions or one way, and heals it after a hold. TCP (Raft,
	// node RPC, HTTP to the sovereign) is left alone.
	BusCut Kind = "bus-cut"
	// KillDomainLeader sends SIGKILL to B's leader and restarts it after
	// a pause.
	KillDomainLeader Kind = "kill-domain-leader"
	// RevokePassport revokes B's current passport on the sovereign. A
	// revocation is permanent (B is never renewed again), so it is
	// always the schedule's last fault and is never undone.
	RevokePassport Kind = "revoke-passport"
)

// FedKinds lists the federation kinds in a stable order.
var FedKinds = []Kind{BusCut, KillDomainLeader, RevokePassport}

// Bus cut directions.
const (
	DirBoth     = "both"
	DirAToB     = "a->b" // A's packets to B are dropped (B still reaches A)
	DirBToA     = "b->a"
	busCutHoldL = 3 * time.Second
	busCutHoldH = 7 * time.Second
)

// ParseFedKinds parses a comma-separated list of federation kinds (or
// all, none). The result is deduplicated, in FedKinds order.
func ParseFedKinds(s string) ([]Kind, error) {
	return parseKinds(s, FedKinds, map[string][]Kind{"all": FedKinds, "none": {}}, "federation fault", "all, none")
}

// FedStep is one planned federation fault.
type FedStep struct {
	At   time.Duration `json:"at"`
	Kind Kind          `json:"kind"`
	// Hold is how long the fault lasts (a kill: how long the node stays
	// dead); zero for the revocation, which is permanent.
	Hold time.Duration `json:"hold"`
	// Direction of a bus cut: DirBoth, DirAToB or DirBToA.
	Direction string `json:"direction,omitempty"`
}

func (s FedStep) String() string {
	switch s.Kind {
	case BusCut:
		return fmt.Sprintf("%7.1fs %-19s %s for %s", s.At.Seconds(), s.Kind, s.Direction, s.Hold.Round(time.Millisecond))
	case RevokePassport:
		return fmt.Sprintf("%7.1fs %-19s B's current passport (permanent)", s.At.Seconds(), s.Kind)
	}
	return fmt.Sprintf("%7.1fs %-19s B's leader, dead for %s", s.At.Seconds(), s.Kind, s.Hold.Round(time.Millisecond))
}

// FedSchedule is a seeded plan of federation faults.
type FedSchedule struct {
	Seed     int64         `json:"seed"`
	Kinds    []Kind        `json:"kinds"`
	Duration time.Duration `json:"duration"`
	A        string        `json:"a"`
	B        string        `json:"b"`
	Steps    []FedStep     `json:"steps"`
}

// FedPlanConfig bounds a federation schedule.
type FedPlanConfig struct {
	Seed     int64
	Kinds    []Kind
	Duration time.Duration
	A, B     string // the two domains; default "a" and "b"
	// RevokeAt is the fraction of Duration at which the revocation is
	// planned (default 0.55): late enough for the other faults, early
	// enough that B's events are refused while the clients still run.
	RevokeAt float64
	// Warmup and Tail are fault-free time at the start and the end
	// (defaults 3s and 2s); GapMin and GapMax bound the time between
	// faults (defaults 1.5s and 4s).
	Warmup, Tail, GapMin, GapMax time.Duration
}

func (c *FedPlanConfig) defaults() {
	if c.A == "" {
		c.A = "a"
	}
	if c.B == "" {
		c.B = "b"
	}
	if c.RevokeAt <= 0 || c.RevokeAt >= 1 {
		c.RevokeAt = 0.55
	}
	if c.Warmup == 0 {
		c.Warmup = 3 * time.Second
	}
	if c.Tail == 0 {
		c.Tail = 2 * time.Second
	}
	if c.GapMin == 0 {
		c.GapMin = 1500 * time.Millisecond
	}
	if c.GapMax < c.GapMin {
		c.GapMax = max(c.GapMin, 4*time.Second)
	}
}

// FedPlan draws a federation schedule from the seed: bus cuts and leader
// kills in rounds (each round a seeded permutation of the kinds), ending
// before the revocation, which comes last at RevokeAt of the duration.
// Without RevokePassport the other kinds fill the whole duration.
func FedPlan(cfg FedPlanConfig) FedSchedule {
	cfg.defaults()
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x666564)) // "fed"
	s := FedSchedule{Seed: cfg.Seed, Kinds: cfg.Kinds, Duration: cfg.Duration, A: cfg.A, B: cfg.B}
	revoke := false
	var kinds []Kind
	for _, k := range cfg.Kinds {
		if k == RevokePassport {
			revoke = true
		} else {
			kinds = append(kinds, k)
		}
	}
	end := cfg.Duration - cfg.Tail
	revokeAt := time.Duration(float64(cfg.Duration) * cfg.RevokeAt)
	if revoke {
		end = revokeAt - cfg.GapMin
	}
	at := cfg.Warmup
	var round []Kind
	for i := 0; len(kinds) > 0 && i < 10000; i++ {
		if len(round) == 0 {
			round = append([]Kind(nil), kinds...)
			rng.Shuffle(len(round), func(i, j int) { round[i], round[j] = round[j], round[i] })
		}
		st := FedStep{Kind: round[0]}
		round = round[1:]
		switch st.Kind {
		case BusCut:
			st.Direction = []string{DirBoth, DirBoth, DirAToB, DirBToA}[rng.IntN(4)]
			st.Hold = between(rng, busCutHoldL, busCutHoldH)
		case KillDomainLeader:
			st.Hold = between(rng, 500*time.Millisecond, 4*time.Second)
		}
		st.At = at
		settleK := time.Duration(0)
		if st.Kind == KillDomainLeader {
			settleK = time.Second
		}
		if at+st.Hold+settleK > end {
			break
		}
		s.Steps = append(s.Steps, st)
		at += st.Hold + settleK + between(rng, cfg.GapMin, cfg.GapMax)
	}
	if revoke && revokeAt < cfg.Duration-cfg.Tail {
		s.Steps = append(s.Steps, FedStep{At: max(revokeAt, at), Kind: RevokePassport})
		if last := s.Steps[len(s.Steps)-1]; last.At >= cfg.Duration-cfg.Tail {
			s.Steps = s.Steps[:len(s.Steps)-1]
		}
	}
	return s
}

// FedProcesses is what the federation nemesis needs of the kernels'
// processes, by node name.
type FedProcesses interface {
	DomainNodes(domain string) []string // in node order
	IP(name string) string
	// DomainLeader is the node of domain that reports itself leader, ""
	// when none does.
	DomainLeader(ctx context.Context, domain string) string
	Kill(name string) error // SIGKILL and wait for the exit
	Start(name string) error
	Running(name string) bool
}

// UDPNetwork cuts UDP between addresses.
type UDPNetwork interface {
	DropUDP(src, dst string) error
	Heal() error // remove every rule
}

// UDPProbe checks what the network really does.
type UDPProbe interface {
	ExpectUDPBlocked(ctx context.Context, pairs []netfault.Pair) error
	ExpectOpen(ctx context.Context, pairs []netfault.Pair, attempts int) error
}

// Revoker revokes domain's current passport and returns a description
// of what it revoked; the caller records the operation in the history.
type Revoker func(ctx context.Context, domain string) (string, error)

// FedNemesis executes federation schedules.
type FedNemesis struct {
	core
	procs  FedProcesses
	net    UDPNetwork // nil: bus cuts fail
	probe  UDPProbe
	revoke Revoker
	a, b   string
}

// NewFed returns a federation nemesis for domains a and b (b is the
// target of kills and of the revocation). net and probe may be nil when
// the schedule has no bus cuts, revoke when it has no revocation.
func NewFed(procs FedProcesses, net UDPNetwork, probe UDPProbe, revoke Revoker, a, b string, now func() int64, logf func(string, ...any)) *FedNemesis {
	return &FedNemesis{core: newCore(now, logf), procs: procs, net: net, probe: probe, revoke: revoke, a: a, b: b}
}

// Run executes the schedule's steps in order, each at its offset from
// start (or as soon as the previous one is undone). It returns at the end
// of the schedule, at the first error, or when ctx is done; the step in
// progress is undone first.
func (n *FedNemesis) Run(ctx context.Context, s FedSchedule, start time.Time) error {
	return walk(ctx, &n.core, s.Steps, start, n.inject)
}

// busPairs are the address pairs a bus cut in direction dir drops.
func (n *FedNemesis) busPairs(dir string) []netfault.Pair {
	ips := func(d string) []string {
		var out []string
		for _, nm := range n.procs.DomainNodes(d) {
			out = append(out, n.procs.IP(nm))
		}
		return out
	}
	a, b := ips(n.a), ips(n.b)
	switch dir {
	case DirAToB:
		return netfault.CrossPairs(a, b)
	case DirBToA:
		return netfault.CrossPairs(b, a)
	}
	return append(netfault.CrossPairs(a, b), netfault.CrossPairs(b, a)...)
}

// inject applies st (see injector); the revocation is permanent.
func (n *FedNemesis) inject(ctx context.Context, st FedStep) (Fault, func() error, error) {
	var f Fault
	uctx := context.WithoutCancel(ctx)
	var undo func() error
	switch st.Kind {
	case BusCut:
		if n.net == nil || n.probe == nil {
			return f, nil, errors.New("no network control: iptables is required for a bus cut")
		}
		pairs := n.busPairs(st.Direction)
		if len(pairs) == 0 {
			return f, nil, fmt.Errorf("bus cut %s between %s and %s cuts nothing", st.Direction, n.a, n.b)
		}
		switch st.Direction {
		case DirAToB:
			f.Desc = fmt.Sprintf("bus (UDP) cut one way: %s -/-> %s", n.a, n.b)
		case DirBToA:
			f.Desc = fmt.Sprintf("bus (UDP) cut one way: %s -/-> %s", n.b, n.a)
		default:
			f.Desc = fmt.Sprintf("bus (UDP) cut both ways between %s and %s", n.a, n.b)
		}
		f.Nodes = append(n.procs.DomainNodes(n.a), n.procs.DomainNodes(n.b)...)
		for _, p := range pairs {
			f.Cuts = append(f.Cuts, "udp "+p.String())
			if err := n.net.DropUDP(p.Src, p.Dst); err != nil {
				return f, nil, errors.Join(err, n.healNetwork(ctx))
			}
		}
		if err := n.probe.ExpectUDPBlocked(ctx, pairs); err != nil {
			return f, nil, errors.Join(fmt.Errorf("bus cut not in effect after adding its rules: %w", err), n.healNetwork(ctx))
		}
		undo = func() error { return n.healNetwork(uctx) }
	case KillDomainLeader:
		target, note := n.leader(ctx, n.b, 3*time.Second), " (leader)"
		if target == "" {
			nodes := n.procs.DomainNodes(n.b)
			if len(nodes) == 0 {
				return f, nil, fmt.Errorf("domain %s has no nodes", n.b)
			}
			target, note = nodes[0], " (no leader; first node)"
		}
		f.Desc, f.Nodes = fmt.Sprintf("kill -9 %s%s of %s, restart after %s", target, note, n.b, st.Hold.Round(time.Millisecond)), []string{target}
		if err := n.procs.Kill(target); err != nil {
			return f, nil, err
		}
		undo = func() error { return n.procs.Start(target) }
	case RevokePassport:
		if n.revoke == nil {
			return f, nil, errors.New("no revoker: the run cannot revoke passports")
		}
		desc, err := n.revoke(ctx, n.b)
		if err != nil {
			return f, nil, err
		}
		f.Desc = desc + " (permanent)"
		return f, nil, nil
	default:
		return f, nil, fmt.Errorf("unknown federation fault kind %q", st.Kind)
	}
	return f, undo, nil
}

func (n *FedNemesis) leader(ctx context.Context, domain string, limit time.Duration) string {
	return pollLeader(ctx, limit, func(ctx context.Context) string { return n.procs.DomainLeader(ctx, domain) })
}

func (n *FedNemesis) healNetwork(ctx context.Context) error {
	return healNetwork(ctx, n.net, n.probe, func() []netfault.Pair { return n.busPairs(DirBoth) }, "bus")
}

// Heal removes every rule (and proves the bus open both ways) and starts
// every stopped node of both domains. The revocation stays.
func (n *FedNemesis) Heal(ctx context.Context) error {
	errs := []error{n.healNetwork(ctx)}
	for _, d := range []string{n.a, n.b} {
		for _, nm := range n.procs.DomainNodes(d) {
			if !n.procs.Running(nm) {
				errs = append(errs, n.procs.Start(nm))
			}
		}
	}
	return errors.Join(errs...)
}

// FedSummary counts federation faults by kind ("bus-cut=2 ...").
func FedSummary(fs []Fault) string { return summarize(fs, FedKinds) }
