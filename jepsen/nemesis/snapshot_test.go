package nemesis

import (
	"context"
	"strings"
	"testing"
	"time"
)

func (f *fakeMembers) RaftLog(_ context.Context, name string) (RaftLog, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.grow()
	if name != f.leader && f.running[name] && !f.noInstall && f.snapIdx[f.leader] > f.lastLog[name] {
		f.lastLog[name], f.snapIdx[name] = f.lastLog[f.leader], f.snapIdx[f.leader]
		f.record("install " + name)
	}
	return RaftLog{Applied: f.lastLog[name], LastLog: f.lastLog[name], LastSnapshot: f.snapIdx[name]}, nil
}

func (f *fakeMembers) Snapshot(_ context.Context, name string) (RaftLog, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.grow()
	f.snapIdx[name] = f.lastLog[name]
	if !f.noCompact && name == f.leader {
		f.firstLog = f.lastLog[name] - 50
	}
	f.record("snapshot " + name)
	return RaftLog{Applied: f.lastLog[name], LastLog: f.lastLog[name], LastSnapshot: f.snapIdx[name], FirstLog: f.firstLog}, nil
}

// grow appends 100 entries to the leader and every running follower
// that is not paused (and has not fallen behind a compaction).
func (f *fakeMembers) grow() {
	f.lastLog[f.leader] += 100
	for _, nm := range f.names {
		if nm != f.leader && f.running[nm] && !f.paused[nm] && f.lastLog[nm]+1 >= f.firstLog {
			f.lastLog[nm] = f.lastLog[f.leader]
		}
	}
}

func TestSnapshotLagPausesCompactsAndWaitsForTheInstall(t *testing.T) {
	procs := newFakeMembers(3) // n2 leads
	n := New(procs, nil, nil, func() int64 { return 0 }, t.Logf)
	err := n.Run(context.Background(), Schedule{Steps: []Step{{Kind: SnapshotLag, Node: 1, Hold: time.Millisecond}}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	fs := n.Faults()
	if len(fs) != 1 || fs[0].Nodes[0] == "n2" {
		t.Fatalf("faults %+v: want one, on a follower", fs)
	}
	target := fs[0].Nodes[0]
	log := strings.Join(procs.log, "; ")
	for _, want := range []string{"kill " + target, "snapshot n2", "start " + target + " 0s", "install " + target} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q: %s", want, log)
		}
	}
	if !procs.running[target] || procs.snapIdx[target] < procs.snapIdx["n2"] {
		t.Fatalf("%s left running=%v with snapshot %d < leader's %d", target, procs.running[target], procs.snapIdx[target], procs.snapIdx["n2"])
	}
	t.Log(fs[0].Desc)
}

func TestSnapshotLagWithoutCompactionIsAnError(t *testing.T) {
	procs := newFakeMembers(3)
	procs.noCompact = true
	n := New(procs, nil, nil, func() int64 { return 0 }, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := n.Run(ctx, Schedule{Steps: []Step{{Kind: SnapshotLag, Node: 0, Hold: time.Millisecond}}}, time.Now())
	if err == nil {
		t.Fatal("a leader that never compacted past the follower was taken as a fault in effect")
	}
	if len(n.Faults()) != 0 || !procs.running["n1"] {
		t.Fatalf("after the failed step: faults %v, n1 running %v", n.Faults(), procs.running["n1"])
	}
}

func TestSnapshotLagWithoutInstallFailsTheUndo(t *testing.T) {
	procs := newFakeMembers(3)
	procs.noInstall = true
	n := New(procs, nil, nil, func() int64 { return 0 }, nil)
	n.snapshotWait = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := n.Run(ctx, Schedule{Steps: []Step{{Kind: SnapshotLag, Node: 0, Hold: time.Millisecond}}}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "install") {
		t.Fatalf("a follower that never installed the snapshot: %v", err)
	}
}
