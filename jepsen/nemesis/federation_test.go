package nemesis

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/jepsen/netfault"
)

func TestParseFedKinds(t *testing.T) {
	ks, err := ParseFedKinds("revoke-passport, bus-cut,bus-cut")
	if err != nil {
		t.Fatal(err)
	}
	if want := []Kind{BusCut, RevokePassport}; !reflect.DeepEqual(ks, want) {
		t.Fatalf("got %v, want %v", ks, want)
	}
	if all, _ := ParseFedKinds("all"); !reflect.DeepEqual(all, FedKinds) {
		t.Fatalf("all = %v", all)
	}
	if none, _ := ParseFedKinds("none"); len(none) != 0 {
		t.Fatalf("none = %v", none)
	}
	if _, err := ParseFedKinds("kill"); err == nil || !strings.Contains(err.Error(), `"kill"`) {
		t.Fatalf("a single-kernel kind is not a federation kind: %v", err)
	}
	for _, k := range FedKinds {
		for _, a := range AllKinds {
			if k == a {
				t.Fatalf("federation kind %s is in AllKinds: a single-kernel run would plan it", k)
			}
		}
	}
}

func TestFedPlanIsSeededAndEndsWithTheRevocation(t *testing.T) {
	const seed = 424242
	t.Logf("seed %d", seed)
	cfg := FedPlanConfig{Seed: seed, Kinds: FedKinds, Duration: 90 * time.Second}
	a, b := FedPlan(cfg), FedPlan(cfg)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed planned two different schedules")
	}
	cfg.Seed++
	if c := FedPlan(cfg); reflect.DeepEqual(a.Steps, c.Steps) {
		t.Fatal("different seeds planned the same schedule")
	}
	if len(a.Steps) < 3 {
		t.Fatalf("%d steps in 90s: %v", len(a.Steps), a.Steps)
	}
	last := a.Steps[len(a.Steps)-1]
	if last.Kind != RevokePassport || last.Hold != 0 {
		t.Fatalf("last step %s: want the revocation, permanent", last)
	}
	revokeAt := time.Duration(float64(cfg.Duration) * 0.55)
	seen := map[Kind]int{}
	var end time.Duration
	for i, st := range a.Steps {
		seen[st.Kind]++
		if st.At < end {
			t.Fatalf("step %d (%s) starts before the previous one ends at %s", i, st, end)
		}
		end = st.At + st.Hold
		if st.Kind != RevokePassport && end > revokeAt {
			t.Fatalf("step %d (%s) ends after the revocation is planned (%s)", i, st, revokeAt)
		}
		if st.Kind == BusCut && st.Direction != DirBoth && st.Direction != DirAToB && st.Direction != DirBToA {
			t.Fatalf("bus cut with direction %q", st.Direction)
		}
	}
	if seen[RevokePassport] != 1 || seen[BusCut] == 0 || seen[KillDomainLeader] == 0 {
		t.Fatalf("kinds planned %v: want one revocation and both other kinds", seen)
	}
	// Without the revocation the other kinds fill the duration.
	cfg.Kinds = []Kind{BusCut}
	for _, st := range FedPlan(cfg).Steps {
		if st.Kind != BusCut || st.At+st.Hold > cfg.Duration-2*time.Second {
			t.Fatalf("step %s outside the plan's kinds or duration", st)
		}
	}
}

// fedFake is an in-memory federation of domains a and b, their network
// and their probe.
type fedFake struct {
	mu      sync.Mutex
	nodes   map[string][]string
	running map[string]bool
	leader  map[string]string
	dropped map[netfault.Pair]bool
	leaky   bool // the probe sees datagrams pass whatever the rules say
	log     []string
	revoked []string
}

func newFedFake() *fedFake {
	f := &fedFake{nodes: map[string][]string{"a": {"a1", "a2"}, "b": {"b1", "b2", "b3"}}, running: map[string]bool{},
		leader: map[string]string{"a": "a1", "b": "b2"}, dropped: map[netfault.Pair]bool{}}
	for _, ns := range f.nodes {
		for _, n := range ns {
			f.running[n] = true
		}
	}
	return f
}

func (f *fedFake) DomainNodes(d string) []string { return f.nodes[d] }
func (f *fedFake) IP(name string) string {
	return map[byte]string{'a': "127.0.92.", 'b': "127.0.93."}[name[0]] + name[1:]
}
func (f *fedFake) DomainLeader(_ context.Context, d string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l := f.leader[d]; f.running[l] {
		return l
	}
	return ""
}
func (f *fedFake) Kill(n string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.running[n] {
		return errors.New("not running")
	}
	f.running[n] = false
	f.log = append(f.log, "kill "+n)
	return nil
}
func (f *fedFake) Start(n string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running[n] {
		return errors.New("already running")
	}
	f.running[n] = true
	f.log = append(f.log, "start "+n)
	return nil
}
func (f *fedFake) Running(n string) bool { f.mu.Lock(); defer f.mu.Unlock(); return f.running[n] }
func (f *fedFake) DropUDP(src, dst string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dropped[netfault.Pair{Src: src, Dst: dst}] = true
	return nil
}
func (f *fedFake) Heal() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dropped = map[netfault.Pair]bool{}
	f.log = append(f.log, "heal")
	return nil
}
func (f *fedFake) ExpectUDPBlocked(_ context.Context, pairs []netfault.Pair) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range pairs {
		if f.leaky || !f.dropped[p] {
			return fmt.Errorf("%w: %s passes", netfault.ErrNotInEffect, p)
		}
	}
	return nil
}
func (f *fedFake) ExpectOpen(_ context.Context, pairs []netfault.Pair, _ int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range pairs {
		if f.dropped[p] {
			return fmt.Errorf("%w: %s cut", netfault.ErrNotInEffect, p)
		}
	}
	return nil
}
func (f *fedFake) revoke(_ context.Context, d string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revoked = append(f.revoked, d)
	return "revoke " + d, nil
}

func runFed(t *testing.T, f *fedFake, steps ...FedStep) (*FedNemesis, error) {
	t.Helper()
	var clock int64
	now := func() int64 { clock += int64(time.Millisecond); return clock }
	n := NewFed(f, f, f, f.revoke, "a", "b", now, t.Logf)
	return n, n.Run(context.Background(), FedSchedule{Steps: steps}, time.Now())
}

func TestFedRunAppliesAndUndoesEveryKind(t *testing.T) {
	f := newFedFake()
	n, err := runFed(t, f,
		FedStep{Kind: BusCut, Direction: DirAToB, Hold: time.Millisecond},
		FedStep{Kind: BusCut, Direction: DirBoth, Hold: time.Millisecond},
		FedStep{Kind: KillDomainLeader, Hold: time.Millisecond},
		FedStep{Kind: RevokePassport})
	if err != nil {
		t.Fatal(err)
	}
	fs := n.Faults()
	if len(fs) != 4 {
		t.Fatalf("%d faults recorded, want 4: %+v", len(fs), fs)
	}
	if len(fs[0].Cuts) != 6 || !strings.Contains(fs[0].Desc, "a -/-> b") {
		t.Errorf("one-way cut: %d cuts (want 2x3, a to b only), %q", len(fs[0].Cuts), fs[0].Desc)
	}
	for _, c := range fs[0].Cuts {
		if !strings.HasPrefix(c, "udp 127.0.92.") {
			t.Errorf("one-way cut a->b drops %s", c)
		}
	}
	if len(fs[1].Cuts) != 12 {
		t.Errorf("two-way cut: %d cuts, want 12", len(fs[1].Cuts))
	}
	if fs[2].Nodes[0] != "b2" || !strings.Contains(fs[2].Desc, "(leader)") {
		t.Errorf("kill targeted %v (%q), want b's leader b2", fs[2].Nodes, fs[2].Desc)
	}
	if want := []string{"heal", "heal", "kill b2", "start b2"}; !reflect.DeepEqual(f.log, want) {
		t.Errorf("actions %v, want %v", f.log, want)
	}
	if !reflect.DeepEqual(f.revoked, []string{"b"}) || fs[3].Start != fs[3].End {
		t.Errorf("revoked %v, fault %+v: want b revoked once, permanently", f.revoked, fs[3])
	}
	if got := FedSummary(fs); got != "bus-cut=2 kill-domain-leader=1 revoke-passport=1" {
		t.Errorf("summary %q", got)
	}
}

func TestFedBusCutThatDoesNotHoldIsAnError(t *testing.T) {
	f := newFedFake()
	f.leaky = true
	_, err := runFed(t, f, FedStep{Kind: BusCut, Direction: DirBoth, Hold: time.Millisecond})
	if !errors.Is(err, netfault.ErrNotInEffect) || !strings.Contains(err.Error(), "bus cut not in effect") {
		t.Fatalf("a cut the probe contradicts: %v", err)
	}
	if len(f.dropped) != 0 {
		t.Fatalf("rules left after the failed cut: %v", f.dropped)
	}
}

func TestFedBusCutWithoutFirewallFails(t *testing.T) {
	n := NewFed(newFedFake(), nil, nil, nil, "a", "b", func() int64 { return 0 }, nil)
	err := n.Run(context.Background(), FedSchedule{Steps: []FedStep{{Kind: BusCut, Direction: DirBoth, Hold: time.Millisecond}}}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "iptables is required") {
		t.Fatalf("bus cut without a firewall: %v", err)
	}
	err = n.Run(context.Background(), FedSchedule{Steps: []FedStep{{Kind: RevokePassport}}}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "no revoker") {
		t.Fatalf("revocation without a revoker: %v", err)
	}
}

func TestFedHealStartsDeadNodes(t *testing.T) {
	f := newFedFake()
	f.running["b3"] = false
	f.dropped[netfault.Pair{Src: "127.0.92.1", Dst: "127.0.93.1"}] = true
	n := NewFed(f, f, f, f.revoke, "a", "b", func() int64 { return 0 }, t.Logf)
	if err := n.Heal(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !f.running["b3"] || len(f.dropped) != 0 {
		t.Fatalf("after heal: running %v, dropped %v", f.running, f.dropped)
	}
}
