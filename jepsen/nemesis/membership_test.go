package nemesis

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fakeMembers adds a Raft configuration to fakeProcs: removal, wipes and
// joins are recorded; a node joins (becomes a voter) only when started
// to join with no state, never when started on its old state.
type fakeMembers struct {
	*fakeProcs
	voters    map[string]bool
	state     map[string]bool // has a data dir
	joinStart map[string]bool // the running process was started to join
	failWait  bool
	failJoins int // StartJoining fails this many times

	// The Raft log (Snapshots): the leader's grows by 100 entries per
	// look; a paused node's does not.
	lastLog   map[string]uint64
	snapIdx   map[string]uint64
	firstLog  uint64
	noCompact bool // snapshots keep the whole log
	noInstall bool // a resumed follower never installs the snapshot
}

func newFakeMembers(n int) *fakeMembers {
	f := &fakeMembers{fakeProcs: newFakeProcs(n), voters: map[string]bool{}, state: map[string]bool{}, joinStart: map[string]bool{},
		lastLog: map[string]uint64{}, snapIdx: map[string]uint64{}, firstLog: 1}
	for _, nm := range f.names {
		f.voters[nm], f.state[nm] = true, true
		f.lastLog[nm] = 1000
	}
	return f
}

func (f *fakeMembers) RemovePeer(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if name == f.leader {
		return errors.New("refusing to remove the leader in this fake")
	}
	f.voters[name] = false
	f.record("remove-peer " + name)
	return nil
}

func (f *fakeMembers) Wipe(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running[name] {
		return errors.New("wipe of a running node")
	}
	f.state[name] = false
	f.record("wipe " + name)
	return nil
}

func (f *fakeMembers) StartJoining(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running[name] {
		return errors.New("already running")
	}
	if f.failJoins > 0 {
		f.failJoins--
		return errors.New("cannot start")
	}
	f.running[name], f.joinStart[name] = true, true
	f.record("join " + name)
	return nil
}

func (f *fakeMembers) WaitMember(_ context.Context, name string, _ time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failWait {
		return errors.New("not caught up")
	}
	if f.running[name] && f.joinStart[name] && !f.state[name] {
		f.voters[name], f.state[name] = true, true
	}
	if !f.voters[name] || !f.running[name] {
		return errors.New(name + " is not a voter")
	}
	return nil
}

func TestMembershipIsPlanned(t *testing.T) {
	all, _ := ParseKinds("all")
	found := false
	for _, k := range all {
		found = found || k == Membership
	}
	if !found {
		t.Fatal("all leaves out membership")
	}
	ks, err := ParseKinds("kill,membership")
	if err != nil || !reflect.DeepEqual(ks, []Kind{Kill, Membership}) {
		t.Fatalf("kill,membership parsed as %v, %v", ks, err)
	}
	if s := Summary([]Fault{{Kind: Membership}, {Kind: Kill}}); s != "kill=1 membership=1" {
		t.Fatalf("summary %q", s)
	}
	const seed = 7
	t.Logf("seed %d", seed)
	p := Plan(PlanConfig{Seed: seed, Kinds: []Kind{Membership}, Duration: time.Minute, Nodes: 3})
	if len(p.Steps) == 0 {
		t.Fatal("no membership steps planned in a minute")
	}
	for _, st := range p.Steps {
		if st.Leader || st.Hold < 2*time.Second || st.Hold > 5*time.Second {
			t.Errorf("membership step %s", st)
		}
	}
}

// TestMembershipRemovesAFollowerAndRejoinsIt: the leader is never the
// target; the target is removed before it is stopped, stopped before it
// is wiped, and started to join only after; it ends a voter.
func TestMembershipRemovesAFollowerAndRejoinsIt(t *testing.T) {
	f := newFakeMembers(3) // n2 leads
	var clock int64
	n := New(f, nil, nil, func() int64 { clock++; return clock }, t.Logf)
	s := Schedule{Steps: []Step{{Kind: Membership, Node: 1, Hold: time.Millisecond}, {Kind: Membership, Node: 2, Hold: time.Millisecond}}}
	if err := n.Run(context.Background(), s, time.Now()); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(f.log, "; ")
	want := "remove-peer n3; stop n3; wipe n3; join n3; remove-peer n3; stop n3; wipe n3; join n3"
	if got != want {
		t.Fatalf("actions %q, want %q (node 1 leads, so the first step takes the next follower)", got, want)
	}
	fs := n.Faults()
	if len(fs) != 2 || fs[0].Nodes[0] != "n3" || !strings.Contains(fs[0].Desc, "next follower") {
		t.Fatalf("faults %+v", fs)
	}
	for _, nm := range f.names {
		if !f.voters[nm] || !f.running[nm] {
			t.Errorf("%s ends voter=%v running=%v", nm, f.voters[nm], f.running[nm])
		}
	}
	if err := n.Heal(context.Background()); err != nil {
		t.Fatalf("heal after a clean run: %v", err)
	}
}

// TestHealRejoinsARemovedNode: a node whose rejoin failed mid-step is
// restarted by Heal only to join without state (never on its old data,
// which would leave it out of the configuration), and Heal fails while
// some node is not a voter.
func TestHealRejoinsARemovedNode(t *testing.T) {
	f := newFakeMembers(3)
	f.failWait = true
	n := New(f, nil, nil, func() int64 { return 0 }, t.Logf)
	err := n.Run(context.Background(), Schedule{Steps: []Step{{Kind: Membership, Node: 0, Hold: time.Millisecond}}}, time.Now())
	if err == nil {
		t.Fatal("a rejoin that never caught up did not fail the step")
	}
	if err := n.Heal(context.Background()); err == nil {
		t.Fatal("heal succeeded while the removed node is not a voter")
	}
	f.failWait = false
	// Simulate a harness that started it on its old state meanwhile.
	f.mu.Lock()
	f.state["n1"], f.joinStart["n1"] = true, false
	f.mu.Unlock()
	f.log = nil
	if err := n.Heal(context.Background()); err != nil {
		t.Fatalf("heal: %v", err)
	}
	got := strings.Join(f.log, "; ")
	if want := "stop n1; remove-peer n1; wipe n1; join n1"; got != want {
		t.Fatalf("heal actions %q, want %q", got, want)
	}
	for _, nm := range f.names {
		if !f.voters[nm] {
			t.Errorf("%s is not a voter after the heal", nm)
		}
	}
}

// TestHealNeverStartsARemovedNodeOnItsOldState: a removed, wiped node
// whose start failed is not started by Heal's generic restart of stopped
// nodes (that start could bootstrap), only to join.
func TestHealNeverStartsARemovedNodeOnItsOldState(t *testing.T) {
	f := newFakeMembers(3)
	f.failJoins = 1
	n := New(f, nil, nil, func() int64 { return 0 }, t.Logf)
	if err := n.Run(context.Background(), Schedule{Steps: []Step{{Kind: Membership, Node: 0, Hold: time.Millisecond}}}, time.Now()); err == nil {
		t.Fatal("a failed start did not fail the step")
	}
	f.log = nil
	if err := n.Heal(context.Background()); err != nil {
		t.Fatalf("heal: %v", err)
	}
	got := strings.Join(f.log, "; ")
	if want := "remove-peer n1; wipe n1; join n1"; got != want {
		t.Fatalf("heal actions %q, want %q", got, want)
	}
	if !f.voters["n1"] || !f.running["n1"] {
		t.Fatal("n1 is not a running voter after the heal")
	}
}

// TestMembershipNeedsMembers: processes without Members fail the step
// instead of skipping it.
func TestMembershipNeedsMembers(t *testing.T) {
	n := New(newFakeProcs(3), nil, nil, func() int64 { return 0 }, t.Logf)
	err := n.Run(context.Background(), Schedule{Steps: []Step{{Kind: Membership, Node: 0, Hold: time.Millisecond}}}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "Raft configuration") {
		t.Fatalf("err = %v", err)
	}
}
