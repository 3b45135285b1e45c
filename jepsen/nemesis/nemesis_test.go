package nemesis

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/jepsen/netfault"
)

func TestParseKinds(t *testing.T) {
	ks, err := ParseKinds("kill, pause ,partition-leader,kill")
	if err != nil {
		t.Fatal(err)
	}
	want := []Kind{PartitionLeader, Kill, PauseShort, PauseLong}
	if !reflect.DeepEqual(ks, want) {
		t.Fatalf("got %v, want %v", ks, want)
	}
	if all, _ := ParseKinds("all"); !reflect.DeepEqual(all, AllKinds) {
		t.Fatalf("all = %v", all)
	}
	if none, _ := ParseKinds("none"); len(none) != 0 {
		t.Fatalf("none = %v", none)
	}
	if _, err := ParseKinds("kill,meteor"); err == nil || !strings.Contains(err.Error(), "meteor") {
		t.Fatalf("unknown fault: %v", err)
	}
	if NeedsNetwork([]Kind{Kill, PauseLong, Clock}) || !NeedsNetwork([]Kind{Kill, Loss}) {
		t.Fatal("NeedsNetwork misjudges")
	}
}

func TestPlanIsSeededAndBounded(t *testing.T) {
	const seed = 20260101
	t.Logf("seed %d", seed)
	cfg := PlanConfig{Seed: seed, Kinds: AllKinds, Duration: 3 * time.Minute, Nodes: 3}
	a, b := Plan(cfg), Plan(cfg)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed planned two different schedules")
	}
	cfg.Seed++
	if c := Plan(cfg); reflect.DeepEqual(a.Steps, c.Steps) {
		t.Fatal("different seeds planned the same schedule")
	}
	seen := map[Kind]int{}
	var last time.Duration
	for i, st := range a.Steps {
		if st.At < 2*time.Second || st.At < last {
			t.Fatalf("step %d at %s: before the warmup or out of order", i, st.At)
		}
		if st.At+st.Hold+settle(st.Kind) > cfg.Duration-2*time.Second {
			t.Fatalf("step %d (%s) ends after the faults' end", i, st)
		}
		last = st.At + st.Hold
		if i < len(AllKinds) {
			seen[st.Kind]++
		}
		switch st.Kind {
		case PauseShort:
			if st.Hold >= 500*time.Millisecond {
				t.Errorf("short pause of %s is not below the election timeout", st.Hold)
			}
		case PauseLong:
			if st.Hold <= 500*time.Millisecond {
				t.Errorf("long pause of %s is not above the election timeout", st.Hold)
			}
		case Loss:
			if st.Probability <= 0 || st.Probability >= 1 {
				t.Errorf("loss probability %v", st.Probability)
			}
		case Clock:
			if st.ClockOffset == 0 {
				t.Error("clock step without an offset")
			}
		case PartitionHalves:
			if len(st.Minority) != 1 {
				t.Errorf("minority of 3 nodes has %d", len(st.Minority))
			}
		}
		if st.Node < 0 || st.Node >= 3 {
			t.Errorf("step %d targets node %d", i, st.Node)
		}
	}
	for _, k := range AllKinds {
		if seen[k] != 1 {
			t.Errorf("the first round has %s %d times, want once", k, seen[k])
		}
	}
	if len(Plan(PlanConfig{Seed: 1, Duration: time.Minute}).Steps) != 0 {
		t.Fatal("no kinds planned steps")
	}
}

// fakeProcs is an in-memory cluster of n nodes.
type fakeProcs struct {
	mu      sync.Mutex
	names   []string
	leader  string
	running map[string]bool
	paused  map[string]bool
	offset  map[string]time.Duration
	log     []string
}

func newFakeProcs(n int) *fakeProcs {
	f := &fakeProcs{running: map[string]bool{}, paused: map[string]bool{}, offset: map[string]time.Duration{}}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("n%d", i)
		f.names = append(f.names, name)
		f.running[name] = true
	}
	f.leader = "n2"
	return f
}

func (f *fakeProcs) record(s string) { f.log = append(f.log, s) }
func (f *fakeProcs) Names() []string { return f.names }
func (f *fakeProcs) IP(name string) string {
	return "127.0.99." + strings.TrimPrefix(name, "n")
}
func (f *fakeProcs) Leader(context.Context) string { f.mu.Lock(); defer f.mu.Unlock(); return f.leader }
func (f *fakeProcs) Kill(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.running[name] {
		return errors.New("not running")
	}
	f.running[name], f.paused[name] = false, false
	f.record("kill " + name)
	return nil
}
func (f *fakeProcs) Start(name string, off time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running[name] {
		return errors.New("already running")
	}
	f.running[name], f.offset[name] = true, off
	f.record(fmt.Sprintf("start %s %s", name, off))
	return nil
}
func (f *fakeProcs) Stop(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running[name], f.paused[name] = false, false
	f.record("stop " + name)
	return nil
}
func (f *fakeProcs) Pause(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.paused[name] = true
	f.record("pause " + name)
	return nil
}
func (f *fakeProcs) Resume(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.paused[name] = false
	f.record("resume " + name)
	return nil
}
func (f *fakeProcs) Running(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running[name]
}
func (f *fakeProcs) Paused(name string) bool { f.mu.Lock(); defer f.mu.Unlock(); return f.paused[name] }
func (f *fakeProcs) ClockOffset(name string) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.offset[name]
}

// fakeNet records rules; the probe answers from them.
type fakeNet struct {
	mu       sync.Mutex
	drops    map[netfault.Pair]bool
	loss     map[netfault.Pair]float64
	delay    map[netfault.Pair]time.Duration
	maxRules int
	ignore   bool // rules have no effect (a broken firewall)
}

func newFakeNet() *fakeNet {
	return &fakeNet{drops: map[netfault.Pair]bool{}, loss: map[netfault.Pair]float64{}, delay: map[netfault.Pair]time.Duration{}}
}
func (n *fakeNet) rules() int { return len(n.drops) + len(n.loss) + len(n.delay) }
func (n *fakeNet) Delay(src, dst string, d time.Duration) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.ignore {
		n.delay[netfault.Pair{Src: src, Dst: dst}] = d
	}
	n.maxRules = max(n.maxRules, n.rules())
	return nil
}
func (n *fakeNet) ExpectDelayed(_ context.Context, pairs []netfault.Pair, min time.Duration, bothWays bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range pairs {
		if n.delay[p] < min || (bothWays && n.delay[netfault.Pair{Src: p.Dst, Dst: p.Src}] < min) {
			return fmt.Errorf("%w: %s not delayed by %s", netfault.ErrNotInEffect, p, min)
		}
	}
	return nil
}
func (n *fakeNet) Drop(src, dst string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.ignore {
		n.drops[netfault.Pair{Src: src, Dst: dst}] = true
	}
	n.maxRules = max(n.maxRules, n.rules())
	return nil
}
func (n *fakeNet) Loss(src, dst string, p float64) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.loss[netfault.Pair{Src: src, Dst: dst}] = p
	n.maxRules = max(n.maxRules, n.rules())
	return nil
}
func (n *fakeNet) Heal() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.drops, n.loss, n.delay = map[netfault.Pair]bool{}, map[netfault.Pair]float64{}, map[netfault.Pair]time.Duration{}
	return nil
}
func (n *fakeNet) ExpectBlocked(_ context.Context, pairs []netfault.Pair) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range pairs {
		if !n.drops[p] {
			return fmt.Errorf("%w: %s open", netfault.ErrNotInEffect, p)
		}
	}
	return nil
}
func (n *fakeNet) ExpectOpen(_ context.Context, pairs []netfault.Pair, _ int) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range pairs {
		if n.drops[p] {
			return fmt.Errorf("%w: %s blocked", netfault.ErrNotInEffect, p)
		}
	}
	return nil
}

func pairsOf(n *Nemesis, st Step, target string) []string {
	cuts, _, _ := n.cuts(st, target)
	var out []string
	for _, c := range cuts {
		out = append(out, c.String())
	}
	sort.Strings(out)
	return out
}

func TestCuts(t *testing.T) {
	n := New(newFakeProcs(3), newFakeNet(), nil, func() int64 { return 0 }, nil)
	cases := []struct {
		st     Step
		target string
		want   []string
	}{
		{Step{Kind: PartitionOne}, "n1", []string{"127.0.99.1->127.0.99.2", "127.0.99.1->127.0.99.3", "127.0.99.2->127.0.99.1", "127.0.99.3->127.0.99.1"}},
		{Step{Kind: PartitionHalves, Minority: []int{2}}, "n3", []string{"127.0.99.1->127.0.99.3", "127.0.99.2->127.0.99.3", "127.0.99.3->127.0.99.1", "127.0.99.3->127.0.99.2"}},
		// bridge n2: n1 and n3 cannot talk, both still reach n2
		{Step{Kind: PartitionBridge, Node: 1, Minority: []int{0}}, "n2", []string{"127.0.99.1->127.0.99.3", "127.0.99.3->127.0.99.1"}},
		{Step{Kind: PartitionOneWay}, "n2", []string{"127.0.99.2->127.0.99.1", "127.0.99.2->127.0.99.3"}},
		// ring n3 -> n1 -> n2: n3 hears only n1, n1 only n2, n2 only n3
		{Step{Kind: PartitionRing, Ring: []int{2, 0, 1}}, "n3", []string{"127.0.99.1->127.0.99.2", "127.0.99.2->127.0.99.3", "127.0.99.3->127.0.99.1"}},
		{Step{Kind: Latency, Delay: time.Millisecond}, "n3", []string{"127.0.99.1->127.0.99.3", "127.0.99.2->127.0.99.3", "127.0.99.3->127.0.99.1", "127.0.99.3->127.0.99.2"}},
		{Step{Kind: Latency, Delay: time.Millisecond, AllPairs: true}, "n1", []string{"127.0.99.1->127.0.99.2", "127.0.99.1->127.0.99.3", "127.0.99.2->127.0.99.1", "127.0.99.2->127.0.99.3", "127.0.99.3->127.0.99.1", "127.0.99.3->127.0.99.2"}},
		{Step{Kind: Loss, Probability: 0.2}, "n1", []string{"127.0.99.1->127.0.99.2", "127.0.99.1->127.0.99.3", "127.0.99.2->127.0.99.1", "127.0.99.2->127.0.99.3", "127.0.99.3->127.0.99.1", "127.0.99.3->127.0.99.2"}},
	}
	for _, c := range cases {
		if got := pairsOf(n, c.st, c.target); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s on %s: cuts %v, want %v", c.st.Kind, c.target, got, c.want)
		}
	}
}

func TestRunAppliesAndUndoesEveryKind(t *testing.T) {
	procs, net := newFakeMembers(3), newFakeNet()
	var clock int64
	var mu sync.Mutex
	now := func() int64 { mu.Lock(); defer mu.Unlock(); clock++; return clock }
	n := New(procs, net, net, now, t.Logf)
	var s Schedule
	for i, k := range AllKinds {
		s.Steps = append(s.Steps, Step{At: time.Duration(i) * time.Millisecond, Kind: k, Hold: time.Millisecond,
			Node: i % 3, Leader: i%2 == 0, Minority: []int{(i + 1) % 3}, Probability: 0.3, ClockOffset: 5 * time.Second,
			Ring: []int{2, 0, 1}, Delay: 20 * time.Millisecond, AllPairs: i%4 == 0})
	}
	if err := n.Run(context.Background(), s, time.Now()); err != nil {
		t.Fatal(err)
	}
	fs := n.Faults()
	if len(fs) != len(AllKinds) {
		t.Fatalf("%d faults recorded, want %d", len(fs), len(AllKinds))
	}
	for i, f := range fs {
		if f.Kind != AllKinds[i] || f.End <= f.Start || f.Desc == "" || len(f.Nodes) == 0 {
			t.Errorf("fault %d: %+v", i, f)
		}
	}
	if net.maxRules == 0 || net.rules() != 0 {
		t.Fatalf("rules: at most %d at once, %d left", net.maxRules, net.rules())
	}
	for _, name := range procs.names {
		if !procs.running[name] || procs.paused[name] || procs.offset[name] != 0 {
			t.Errorf("%s left running=%v paused=%v offset=%s", name, procs.running[name], procs.paused[name], procs.offset[name])
		}
	}
	log := strings.Join(procs.log, "; ")
	clockNode := "n2" // the leader, for even indexes
	for i, k := range AllKinds {
		if k == Clock && i%2 == 1 {
			clockNode = procs.names[i%3]
		}
	}
	for _, want := range []string{"kill n2", "start n2 0s", "pause ", "resume ", "start " + clockNode + " 5s", "start " + clockNode + " 0s"} {
		if !strings.Contains(log, want) {
			t.Errorf("process log lacks %q: %s", want, log)
		}
	}
	if !strings.Contains(Summary(fs), "kill=1") {
		t.Errorf("summary %q", Summary(fs))
	}
}

func TestPartitionThatDoesNotHoldIsAnError(t *testing.T) {
	procs, net := newFakeProcs(3), newFakeNet()
	net.ignore = true // the rules are added but change nothing
	n := New(procs, net, net, func() int64 { return 0 }, nil)
	err := n.Run(context.Background(), Schedule{Steps: []Step{{Kind: PartitionOne, Hold: time.Millisecond}}}, time.Now())
	if !errors.Is(err, netfault.ErrNotInEffect) {
		t.Fatalf("a partition the probe contradicts: %v, want ErrNotInEffect", err)
	}
	if len(n.Faults()) != 0 {
		t.Fatal("a partition that never held was recorded as a fault")
	}
}

func TestNetworkKindWithoutFirewallFails(t *testing.T) {
	n := New(newFakeProcs(3), nil, nil, func() int64 { return 0 }, nil)
	err := n.Run(context.Background(), Schedule{Steps: []Step{{Kind: Loss, Hold: time.Millisecond, Probability: 0.1}}}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "iptables is required") {
		t.Fatalf("loss without a firewall: %v", err)
	}
}

func TestHealUndoesLeftovers(t *testing.T) {
	procs, net := newFakeProcs(3), newFakeNet()
	procs.running["n1"] = false
	procs.paused["n2"] = true
	procs.offset["n3"] = 30 * time.Second
	_ = net.Drop("127.0.99.1", "127.0.99.2")
	n := New(procs, net, net, func() int64 { return 0 }, nil)
	if err := n.Heal(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !procs.running["n1"] || procs.paused["n2"] || procs.offset["n3"] != 0 || len(net.drops) != 0 {
		t.Fatalf("after heal: running %v paused %v offset %v drops %v", procs.running, procs.paused, procs.offset, net.drops)
	}
}

func TestRunStopsOnCancelAndUndoes(t *testing.T) {
	procs, net := newFakeProcs(3), newFakeNet()
	n := New(procs, net, net, func() int64 { return 0 }, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- n.Run(ctx, Schedule{Steps: []Step{{Kind: PartitionOne, Hold: time.Hour}, {At: time.Hour, Kind: Kill}}}, time.Now())
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		net.mu.Lock()
		applied := len(net.drops) > 0
		net.mu.Unlock()
		if applied {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("partition never applied")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if len(net.drops) != 0 || len(n.Faults()) != 1 {
		t.Fatalf("after cancel: %d rules, %d faults", len(net.drops), len(n.Faults()))
	}
}
