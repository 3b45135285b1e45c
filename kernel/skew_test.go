package kernel

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dominus-kernel/dominus/fsm"
)

// A leader whose clock jumps ahead of its quorum beyond the maximum skew
// stops accepting writes (clock_skew) and hands leadership over; the
// cluster keeps committing under a leader with a sane clock, and ledger
// time never goes backwards.
func TestLeaderWithFastClockRefusesWritesAndStepsDown(t *testing.T) {
	testSkewedLeaderStepsDown(t, 37, 30*time.Second)
}

// The same for a leader whose clock falls behind its quorum's: it would
// stall ledger time, and expiry with it.
func TestLeaderWithSlowClockRefusesWritesAndStepsDown(t *testing.T) {
	testSkewedLeaderStepsDown(t, 44, -30*time.Second)
}

func testSkewedLeaderStepsDown(t *testing.T, block int, offset time.Duration) {
	tc := startCluster(t, block, 3)
	leader := tc.leader(10 * time.Second)
	token, _, err := leader.Init(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	put(t, leader, token, "before", "1")
	h0, _ := leader.Head()
	var t0 int64
	leader.fsm.read(func(l *fsm.Ledger, _ uint64) { t0 = l.State().Time })
	leader.SetClockOffset(offset)
	deadline := time.Now().Add(15 * time.Second)
	refused := false
	for time.Now().Before(deadline) {
		_, _, err := leader.applyLocal(context.Background(), fsm.Envelope{Type: fsm.CmdKVPut, Auth: TokenHash(token), Payload: fsm.Encode(&fsm.KVPut{Key: "probe", Value: []byte("x")})})
		if errors.Is(err, ErrClockSkew) || errors.Is(err, ErrNotLeader) {
			refused = true
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !refused {
		t.Fatalf("a leader %s off its quorum's clock kept accepting writes", offset)
	}
	// Leadership moves to a node with a sane clock, which commits.
	var next *Node
	for time.Now().Before(deadline) && next == nil {
		for _, n := range tc.nodes {
			if n != leader && n.Raft().State() == raft.Leader {
				next = n
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if next == nil {
		t.Fatal("leadership did not move away from the skewed clock")
	}
	res := put(t, next, token, "after", "2")
	if res.Decision != fsm.DecisionPermit || res.Seq <= h0.Seq || res.Time <= t0 {
		t.Fatalf("write under the new leader: %+v", res)
	}
	tc.requireSameHead(10 * time.Second)
	t.Logf("leader %s with its clock %s off refused writes; %s took over at seq %d", leader.Name(), offset, next.Name(), res.Seq)
}

// A node elected leader while its clock runs fast must not stamp a single
// write before it has compared its clock with its quorum (found by the
// fault-testing harness: ledger time stayed 30 s ahead after such an
// election).
func TestNewLeaderWithFastClockNeverStampsAhead(t *testing.T) {
	tc := startCluster(t, 43, 3)
	leader := tc.leader(10 * time.Second)
	token, _, err := leader.Init(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var fast *Node
	for _, n := range tc.nodes {
		if n != leader {
			fast = n
			break
		}
	}
	fast.SetClockOffset(30 * time.Second)
	if err := leader.TransferLeadership(context.Background(), fast.Name()); err != nil {
		t.Fatalf("transfer: %v", err)
	}
	deadline := time.Now().Add(4 * time.Second)
	writes := 0
	for time.Now().Before(deadline) {
		for _, n := range tc.nodes {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			res, err := n.Apply(ctx, fsm.Envelope{Type: fsm.CmdKVPut, Auth: TokenHash(token), Payload: fsm.Encode(&fsm.KVPut{Key: "k", Value: []byte("v")})})
			cancel()
			if err != nil {
				continue
			}
			writes++
			if ahead := time.Until(time.Unix(0, res.Time)); ahead > DefaultConfig().MaxClockSkew {
				t.Fatalf("a write was stamped %s ahead of real time (seq %d)", ahead, res.Seq)
			}
		}
	}
	if writes == 0 {
		t.Fatal("no write committed in 4 s")
	}
	t.Logf("%d writes, none stamped ahead; leader now %s", writes, tc.leader(5*time.Second).Name())
}

// The median of the voters' clocks includes the leader's own: one skewed
// follower does not move it, a leader behind (or ahead of) every follower
// does.
func TestMedianOffsetIncludesTheLeader(t *testing.T) {
	s := time.Second
	cases := []struct {
		name      string
		followers []time.Duration
		want      time.Duration
	}{
		{"in step", []time.Duration{0, 0}, 0},
		{"one follower 10 s slow", []time.Duration{10 * s, 0}, 0},
		{"one follower 10 s fast", []time.Duration{-10 * s, 0}, 0},
		{"leader 5 s behind both", []time.Duration{-5 * s, -5 * s}, -5 * s},
		{"leader 5 s ahead of both", []time.Duration{5 * s, 5 * s}, 5 * s},
		{"a lone follower, skewed", []time.Duration{-5 * s}, 0},
		{"leader behind three of four", []time.Duration{-5 * s, -5 * s, -5 * s, 0}, -5 * s},
		{"single voter", nil, 0},
	}
	for _, c := range cases {
		if got := medianOffset(c.followers); got != c.want {
			t.Errorf("%s: median offset %s, want %s", c.name, got, c.want)
		}
	}
}
