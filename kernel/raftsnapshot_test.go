package kernel

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/fsm"
)

// An operator's snapshot compacts the leader's Raft log past a stopped
// follower, which then catches up only by installing that snapshot, and
// ends at the same head.
func TestRaftSnapshotCompactsPastALaggingFollower(t *testing.T) {
	const trailing = 16
	tc := startCluster(t, 66, 3, func(c *Config) {
		c.TrailingLogs = trailing
		c.SnapshotThreshold = 1 << 20 // only the operator snapshots
		c.SnapshotInterval = time.Hour
	})
	leader := tc.leader(10 * time.Second)
	ctx := context.Background()
	token, _, err := leader.Init(ctx)
	if err != nil {
		t.Fatal(err)
	}
	put := func(i int) {
		t.Helper()
		res, err := leader.Apply(ctx, fsm.Envelope{Type: fsm.CmdKVPut, RequestID: fmt.Sprint("r", i), Auth: TokenHash(token),
			Payload: fsm.Encode(&fsm.KVPut{Key: fmt.Sprint("k", i%7), Value: []byte(fmt.Sprint(i))})})
		if err != nil || res.Decision != fsm.DecisionPermit {
			t.Fatalf("put %d: %v %+v", i, err, res)
		}
	}
	for i := 0; i < 10; i++ {
		put(i)
	}
	tc.requireSameHead(10 * time.Second)

	// Stop a follower; note where its log ends.
	fi := -1
	for i, n := range tc.nodes {
		if n != leader {
			fi = i
			break
		}
	}
	follower := tc.nodes[fi]
	followerLast, err := follower.store.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	follower.Close()
	tc.nodes[fi] = nil

	for i := 10; i < 10+4*trailing; i++ {
		put(i)
	}
	snap, err := leader.RaftSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	if !snap.Taken || snap.Node != leader.Name() {
		t.Fatalf("snapshot not taken on the leader: %+v", snap)
	}
	if applied := leader.Raft().AppliedIndex(); snap.Index != applied {
		t.Fatalf("snapshot at index %d, leader applied %d", snap.Index, applied)
	}
	if snap.FirstLogIndex <= followerLast+1 {
		t.Fatalf("log not compacted past the follower: first log index %d, follower's log ends at %d", snap.FirstLogIndex, followerLast)
	}
	if snap.FirstLogIndex != snap.Index-trailing+1 || snap.LastLogIndex < snap.Index {
		t.Fatalf("log after the snapshot is %d..%d, want %d..>=%d (trailing %d)", snap.FirstLogIndex, snap.LastLogIndex, snap.Index-trailing+1, snap.Index, trailing)
	}
	again, err := leader.RaftSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	if again.Index != snap.Index || again.FirstLogIndex != snap.FirstLogIndex {
		t.Fatalf("a second snapshot with nothing new applied: %+v, want index %d and the same log", again, snap.Index)
	}

	// The follower restarts on its data and must install the snapshot.
	n, err := New(tc.cfgs[fi])
	if err != nil {
		t.Fatal(err)
	}
	tc.nodes[fi] = n
	tc.requireSameHead(20 * time.Second)
	installed, _ := strconv.ParseUint(n.Raft().Stats()["last_snapshot_index"], 10, 64)
	if installed < snap.Index {
		t.Fatalf("follower caught up without installing the snapshot: its last snapshot index %d < %d", installed, snap.Index)
	}
	put(1000)
	tc.requireSameHead(10 * time.Second)
	t.Logf("follower's log ended at %d; leader snapshotted at %d and kept %d..%d; follower installed %d", followerLast, snap.Index, snap.FirstLogIndex, snap.LastLogIndex, installed)
}
