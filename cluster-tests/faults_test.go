package clustertests

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/fsm"
)

func others(all []string, except ...string) []string {
	var out []string
	for _, n := range all {
		skip := false
		for _, e := range except {
			skip = skip || n == e
		}
		if !skip {
			out = append(out, n)
		}
	}
	return out
}

// The leader is cut off while writers run; the rest elect a new leader and
// keep committing; after healing every node holds the same history and no
// acknowledged write is lost.
func TestIsolateLeaderThenHeal(t *testing.T) {
	c := newCluster(t, clusterOpts{block: 60, size: 3})
	w := c.startWorkload(4)
	time.Sleep(500 * time.Millisecond)
	old := c.waitLeader(5 * time.Second)
	c.net.Isolate(old)
	newLeader := c.waitLeaderAmong(others(c.names, old), 20*time.Second)
	if newLeader == old {
		t.Fatalf("isolated %s is still the only leader", old)
	}
	time.Sleep(time.Second)
	c.net.Heal()
	time.Sleep(500 * time.Millisecond)
	w.halt()
	c.requireConverged(20 * time.Second)
	w.verify()
}

// A 5-node cluster split 2/3: the majority keeps committing, the minority
// cannot commit anything; after healing all converge.
func TestMinorityCannotCommit(t *testing.T) {
	c := newCluster(t, clusterOpts{block: 61, size: 5})
	leader := c.waitLeader(5 * time.Second)
	minority := []string{leader, others(c.names, leader)[0]}
	majority := others(c.names, minority...)
	c.net.Partition(minority, majority)
	c.waitLeaderAmong(majority, 20*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err := c.put(ctx, minority[1], "minority", "x", "rid-minority")
	cancel()
	if err == nil {
		t.Fatal("a write through the minority side was acknowledged")
	}
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := c.put(ctx, majority[i%3], fmt.Sprint("maj/", i), "v", fmt.Sprint("rid-maj-", i))
		cancel()
		if err != nil || res.Decision != fsm.DecisionPermit {
			t.Fatalf("majority write %d: %v %+v", i, err, res)
		}
	}
	c.net.Heal()
	c.requireConverged(20 * time.Second)
	// The minority write never happened: its retry after healing (same
	// request id) applies it exactly once, so it is not a duplicate.
	res, err := c.put(context.Background(), minority[1], "minority", "x", "rid-minority")
	if err != nil || res.Duplicate {
		t.Fatalf("minority retry after heal: %v %+v", err, res)
	}
	c.requireConverged(10 * time.Second)
}

// Lossy, slow links with a rolling set of one-way cuts.
func TestDropDelayAndOneWayCuts(t *testing.T) {
	c := newCluster(t, clusterOpts{block: 62, size: 3})
	w := c.startWorkload(4)
	c.net.SetDelay(0, 3*time.Millisecond)
	c.net.SetDrop(0.002)
	for i := 0; i < 4; i++ {
		a := c.names[c.net.Intn(3)]
		b := others(c.names, a)[c.net.Intn(2)]
		c.net.Cut(a, b)
		time.Sleep(700 * time.Millisecond)
		c.net.Heal()
		c.net.SetDelay(0, 3*time.Millisecond)
		c.net.SetDrop(0.002)
	}
	c.net.Heal()
	time.Sleep(300 * time.Millisecond)
	w.halt()
	c.requireConverged(30 * time.Second)
	w.verify()
	t.Logf("network: %+v", c.net.Stats())
}

// Followers and the leader are killed and restarted on their data; a
// restarted node rejoins without bootstrap and catches up.
func TestKillAndRestartNodes(t *testing.T) {
	c := newCluster(t, clusterOpts{block: 63, size: 3})
	w := c.startWorkload(3)
	time.Sleep(300 * time.Millisecond)
	follower := others(c.names, c.waitLeader(5*time.Second))[0]
	c.kill(follower)
	time.Sleep(700 * time.Millisecond)
	c.start(follower)
	time.Sleep(300 * time.Millisecond)
	leader := c.waitLeader(10 * time.Second)
	c.kill(leader)
	c.waitLeaderAmong(others(c.names, leader), 20*time.Second)
	time.Sleep(700 * time.Millisecond)
	c.start(leader)
	time.Sleep(500 * time.Millisecond)
	w.halt()
	c.requireConverged(20 * time.Second)
	w.verify()
}

// A follower falls so far behind that the leader has compacted the log it
// needs: it must install a snapshot, backfill its archive from the leader,
// verify the backfilled chain ends at the snapshot's head, and converge.
func TestSnapshotInstallOnLaggingFollowerBackfillsArchive(t *testing.T) {
	c := newCluster(t, clusterOpts{block: 64, size: 3, snapshotThreshold: 32, trailingLogs: 16})
	leader := c.waitLeader(5 * time.Second)
	lagger := others(c.names, leader)[0]
	c.net.Isolate(lagger)
	live := others(c.names, lagger)
	for i := 0; i < 300; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := c.put(ctx, live[i%2], fmt.Sprint("k/", i), fmt.Sprint("v", i), fmt.Sprint("rid-", i))
		cancel()
		if err != nil || res.Decision != fsm.DecisionPermit {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	l := c.node(c.waitLeaderAmong(live, 10*time.Second))
	if err := l.Raft().Snapshot().Error(); err != nil {
		t.Fatalf("leader snapshot: %v", err)
	}
	first, err := l.LogFirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	lagN := c.node(lagger)
	if lagN.Raft().LastIndex() >= first {
		t.Fatalf("fixture: lagger's last index %d not behind the leader's compacted log (first %d)", lagN.Raft().LastIndex(), first)
	}
	c.net.Heal()
	c.requireConverged(30 * time.Second)
	if got := lagN.Raft().Stats()["last_snapshot_index"]; got == "0" {
		t.Fatalf("lagging follower never installed a snapshot (last_snapshot_index=%s)", got)
	}
	v := lagN.VerifyArchive()
	h, _ := lagN.Head()
	if !v.OK || v.Events != h.Seq {
		t.Fatalf("lagger archive after backfill: %+v (head seq %d)", v, h.Seq)
	}
	t.Logf("lagger installed a snapshot and holds all %d events in its archive", v.Events)
}
