package nemesis

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// SnapshotLag kills a follower (kill -9), lets the others run on until
// the leader has taken a Raft snapshot (dominus operator raft snapshot)
// and compacted its log past everything the follower holds, then
// restarts the follower: it can only catch up by installing that
// snapshot (and backfilling its ledger archive). The step is in effect
// once the compaction is proven, and undone once the follower reports
// the snapshot installed. (A killed follower, not a paused one: clients
// of a paused node wait out their timeouts, so the cluster would write
// too little to compact past it.)
const SnapshotLag Kind = "snapshot-lag"

// RaftLog is a node's Raft log as its status reports it.
type RaftLog struct {
	Applied      uint64
	LastLog      uint64
	LastSnapshot uint64
	// FirstLog is the first entry the log still holds (only known from
	// a snapshot's answer; 0 otherwise).
	FirstLog uint64
}

// Snapshots is what the snapshot-lag kind needs beyond Processes. A
// Processes that does not implement it cannot run that kind.
type Snapshots interface {
	// RaftLog reads the node's Raft log position from its status.
	RaftLog(ctx context.Context, name string) (RaftLog, error)
	// Snapshot makes the node take a Raft snapshot now and returns its
	// log afterwards (LastSnapshot is the snapshot's index).
	Snapshot(ctx context.Context, name string) (RaftLog, error)
}

// snapshotWait bounds how long the step waits for the workload to write
// enough entries past the killed follower for a compaction to pass it,
// and then for the follower to install the snapshot.
const snapshotWait = 45 * time.Second

// snapshotLag applies the step to the follower target; it returns a
// description and the undo.
func (n *Nemesis) snapshotLag(ctx context.Context, target string) (string, func(context.Context) error, error) {
	s, ok := n.procs.(Snapshots)
	if !ok {
		return "", nil, errors.New("these processes cannot take Raft snapshots")
	}
	if err := n.procs.Kill(target); err != nil {
		return "", nil, err
	}
	fail := func(err error) (string, func(context.Context) error, error) {
		return "", nil, errors.Join(err, n.procs.Start(target, 0))
	}
	// Whatever the dead follower holds, the leader held when it died:
	// its log ends at or before the leader's last index now.
	leader := n.leader(ctx, 3*time.Second)
	if leader == "" || leader == target {
		return fail(fmt.Errorf("no leader other than %s after killing it", target))
	}
	before, err := s.RaftLog(ctx, leader)
	if err != nil {
		return fail(err)
	}
	deadline := time.Now().Add(n.snapshotWait)
	var snap RaftLog
	for {
		if err := sleepFor(ctx, 500*time.Millisecond); err != nil {
			return fail(err)
		}
		if l := n.leader(ctx, 3*time.Second); l != "" && l != target {
			snap, err = s.Snapshot(ctx, l)
			if err == nil && snap.FirstLog > before.LastLog+1 {
				leader = l
				break
			}
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("the leader's log was not compacted past %s's end (%d) within %s: last snapshot %+v, %v",
				target, before.LastLog, n.snapshotWait, snap, err))
		}
	}
	desc := fmt.Sprintf("kill -9 %s (its log ends at or before %d); %s snapshotted at %d and compacted its log to %d..%d; %s restarts and must install the snapshot",
		target, before.LastLog, leader, snap.LastSnapshot, snap.FirstLog, snap.LastLog, target)
	undo := func(uctx context.Context) error {
		if err := n.procs.Start(target, 0); err != nil {
			return err
		}
		deadline := time.Now().Add(n.snapshotWait)
		for {
			got, err := s.RaftLog(uctx, target)
			if err == nil && got.LastSnapshot >= snap.LastSnapshot && got.Applied >= snap.LastSnapshot {
				n.logf("nemesis: %s installed the snapshot (its last snapshot %d, applied %d)", target, got.LastSnapshot, got.Applied)
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s did not install the leader's snapshot at %d within %s: %+v, %v", target, snap.LastSnapshot, n.snapshotWait, got, err)
			}
			if err := sleepFor(uctx, 200*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return desc, undo, nil
}
