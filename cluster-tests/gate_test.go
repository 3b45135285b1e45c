package clustertests

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
	"github.com/dominus-kernel/dominus/kernel"
)

// A capability with N uses, hammered concurrently through every node while
// the leader is killed and partitions come and go, yields at most N
// permits in the ledger, every acknowledged permit is in it, and once a
// revoke is acknowledged no permit follows it.
func TestLimitedCapabilityIsExactUnderFaults(t *testing.T) {
	c := newCluster(t, clusterOpts{block: 65, size: 3})
	const uses = 300
	agentToken := "dmc_test-agent-token"
	th := sha256.Sum256([]byte(agentToken))
	ctx := context.Background()
	g, err := c.anyNode().Apply(ctx, fsm.Envelope{Type: fsm.CmdCapGrant, Auth: kernel.TokenHash(c.token), Payload: fsm.Encode(&fsm.CapGrant{
		TokenHash: th[:], Entity: "hammer", Ops: []string{"kv.put"}, Resources: []string{"*"}, Uses: uses})})
	if err != nil || g.Decision != fsm.DecisionPermit {
		t.Fatalf("grant: %v %+v", err, g)
	}
	capID := g.ID
	call := func(ctx context.Context, via, rid string) (fsm.Result, error) {
		n := c.node(via)
		if n == nil {
			return fsm.Result{}, fmt.Errorf("down")
		}
		return n.Apply(ctx, fsm.Envelope{Type: fsm.CmdSyscall, RequestID: rid, Auth: th[:], Payload: fsm.Encode(&fsm.Syscall{Op: "kv.put", Resource: "k/" + rid, Args: []byte("v")})})
	}
	var mu sync.Mutex
	acked := map[uint64]bool{}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; !stop.Load() && i < 10_000; i++ {
				via := c.names[c.net.Intn(len(c.names))]
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				res, err := call(cctx, via, fmt.Sprintf("w%d-%d", w, i))
				cancel()
				if err == nil && res.Decision == fsm.DecisionPermit {
					mu.Lock()
					acked[res.Seq] = true
					mu.Unlock()
				}
				if err == nil && res.Decision == fsm.DecisionDeny && res.Reason == fsm.ReasonUsesExhausted {
					return
				}
				time.Sleep(time.Duration(10+c.net.Intn(30)) * time.Millisecond)
			}
		}(w)
	}
	// Faults while the hammering runs.
	time.Sleep(200 * time.Millisecond)
	leader := c.waitLeader(5 * time.Second)
	c.kill(leader)
	time.Sleep(600 * time.Millisecond)
	c.start(leader)
	victim := c.names[c.net.Intn(3)]
	c.net.Isolate(victim)
	time.Sleep(700 * time.Millisecond)
	c.net.Heal()
	// Let the workers run the capability dry (each stops on
	// uses_exhausted), bounded in time.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		stop.Store(true)
		<-done
	}
	c.requireConverged(30 * time.Second)

	// Revoke, acknowledged; then calls through every node.
	rv, err := c.anyNode().Apply(ctx, fsm.Envelope{Type: fsm.CmdCapRevoke, Auth: kernel.TokenHash(c.token), Payload: fsm.Encode(&fsm.CapRevoke{ID: capID})})
	if err != nil || rv.Decision != fsm.DecisionPermit {
		t.Fatalf("revoke: %v %+v", err, rv)
	}
	for i := 0; i < 6; i++ {
		res, err := call(ctx, c.names[i%3], fmt.Sprint("after-revoke-", i))
		if err == nil && res.Decision == fsm.DecisionPermit {
			t.Fatalf("permit after an acknowledged revoke: %+v", res)
		}
	}
	c.requireConverged(20 * time.Second)

	// The ledger: at most N permits; every acknowledged permit present.
	permits := map[uint64]bool{}
	if err := c.anyNode().Events(1, func(ev api.Event) error {
		if ev.CapID == capID && ev.Decision == "permit" && ev.Type == "syscall" {
			permits[ev.Seq] = true
			if ev.Seq > rv.Seq {
				t.Errorf("permit at seq %d after the revoke at %d", ev.Seq, rv.Seq)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(permits) > uses {
		t.Fatalf("%d permits for a %d-use capability", len(permits), uses)
	}
	for seq := range acked {
		if !permits[seq] {
			t.Fatalf("acknowledged permit at seq %d is not in the ledger", seq)
		}
	}
	t.Logf("%d permits in the ledger (%d acknowledged) for %d uses", len(permits), len(acked), uses)
}
