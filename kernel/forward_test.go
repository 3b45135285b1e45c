package kernel

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
)

// forwardMany sends n concurrent writes, each with its own request id,
// through follower and returns their results.
func forwardMany(t *testing.T, follower *Node, token string, n int) []fsm.Result {
	t.Helper()
	results := make([]fsm.Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			results[i], errs[i] = follower.Apply(ctx, fsm.Envelope{Type: fsm.CmdKVPut, RequestID: fmt.Sprint("fw-", i), Auth: TokenHash(token),
				Payload: fsm.Encode(&fsm.KVPut{Key: fmt.Sprint("fw/", i), Value: []byte(fmt.Sprint(i))})})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil || results[i].Decision != fsm.DecisionPermit {
			t.Fatalf("write %d: %v %+v", i, err, results[i])
		}
	}
	return results
}

// startForwarding starts an initialized 3-node cluster and returns its
// leader, a follower and the root token.
func startForwarding(t *testing.T, block int, mut ...func(*Config)) (*testCluster, *Node, *Node, string) {
	t.Helper()
	tc := startCluster(t, block, 3, mut...)
	leader := tc.leader(10 * time.Second)
	token, _, err := leader.Init(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range tc.nodes {
		if n != leader {
			return tc, leader, n, token
		}
	}
	t.Fatal("no follower")
	return nil, nil, nil, ""
}

// Concurrent writes through a follower travel to the leader in batches,
// and every one still gets its own decision and its own chain record:
// distinct seqs, each in the ledger exactly once with its own key.
func TestForwardedWritesAreBatchedAndEachRecordedOnce(t *testing.T) {
	tc, leader, follower, token := startForwarding(t, 69)
	const writes = 300
	results := forwardMany(t, follower, token, writes)
	seqs := map[uint64]int{}
	for i, r := range results {
		if prev, dup := seqs[r.Seq]; dup {
			t.Fatalf("writes %d and %d were both told seq %d", prev, i, r.Seq)
		}
		seqs[r.Seq] = i
	}
	tc.requireSameHead(10 * time.Second)
	found := 0
	perRID := map[string]int{}
	err := leader.Events(1, func(ev api.Event) error {
		if strings.HasPrefix(ev.RequestID, "fw-") {
			perRID[ev.RequestID]++
		}
		i, ok := seqs[ev.Seq]
		if !ok {
			return nil
		}
		found++
		if ev.RequestID != fmt.Sprint("fw-", i) {
			return fmt.Errorf("seq %d holds request %q, want fw-%d", ev.Seq, ev.RequestID, i)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found != writes {
		t.Fatalf("%d of %d acknowledged writes found in the ledger at the seq they were told", found, writes)
	}
	if len(perRID) != writes {
		t.Fatalf("%d distinct forwarded request ids in the ledger, want %d", len(perRID), writes)
	}
	for rid, n := range perRID {
		if n != 1 {
			t.Fatalf("request %s is in the ledger %d times", rid, n)
		}
	}
	b, w := follower.fwd.batches.Load(), follower.fwd.writes.Load()
	if w != writes || b >= w {
		t.Fatalf("%d writes forwarded in %d calls: want %d writes in fewer calls", w, b, writes)
	}
	t.Logf("%d writes forwarded in %d calls (%.1f per call)", w, b, float64(w)/float64(b))
}

// A follower whose leader does not know the batched call forwards each
// write alone, and nothing is lost or applied twice.
func TestForwardingFallsBackToSingleCallsOnAnOlderLeader(t *testing.T) {
	tc, leader, follower, token := startForwarding(t, 70, func(c *Config) { c.noApplyBatch = true })
	const writes = 40
	results := forwardMany(t, follower, token, writes)
	seqs := map[uint64]bool{}
	for _, r := range results {
		if seqs[r.Seq] {
			t.Fatalf("seq %d told twice", r.Seq)
		}
		seqs[r.Seq] = true
	}
	tc.requireSameHead(10 * time.Second)
	h, _ := leader.Head()
	// genesis, then exactly the writes: none applied twice by the fallback
	if got := h.Seq; got != 1+writes {
		t.Fatalf("ledger head at seq %d, want %d (genesis + %d writes)", got, 1+writes, writes)
	}
}

// A batch that does not decode, a malformed envelope in a batch and an
// oversized batch are refused, and none of them changes the ledger.
func TestApplyBatchRefusesBadInput(t *testing.T) {
	tc := startCluster(t, 71, 1)
	n := tc.leader(10 * time.Second)
	token, _, err := n.Init(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	before, _ := n.Head()
	ctx := context.Background()
	if _, err := n.serveApplyBatch(ctx, []byte{0xc1, 0xff, 0x00}); err == nil {
		t.Fatal("an undecodable batch was accepted")
	}
	good := fsm.Encode(&fsm.Envelope{Type: fsm.CmdKVPut, RequestID: "ok-1", Auth: TokenHash(token), Payload: fsm.Encode(&fsm.KVPut{Key: "k", Value: []byte("v")})})
	big := applyBatchRequest{}
	for i := 0; i <= fwdMaxBatch; i++ {
		big.Items = append(big.Items, applyBatchItem{Envelope: good, TimeoutNs: int64(time.Second)})
	}
	if _, err := n.serveApplyBatch(ctx, fsm.Encode(&big)); err == nil {
		t.Fatalf("a batch of %d writes was accepted", len(big.Items))
	}
	if h, _ := n.Head(); h.Seq != before.Seq {
		t.Fatalf("refused batches moved the head from %v to %v", before, h)
	}
	mixed := applyBatchRequest{Items: []applyBatchItem{{Envelope: []byte{1, 2, 3}, TimeoutNs: int64(time.Second)}, {Envelope: good, TimeoutNs: int64(time.Second)}}}
	body, err := n.serveApplyBatch(ctx, fsm.Encode(&mixed))
	if err != nil {
		t.Fatal(err)
	}
	var resp applyBatchResponse
	if err := fsm.Decode(body, &resp); err != nil || len(resp.Items) != 2 {
		t.Fatalf("answer %+v, %v", resp, err)
	}
	if resp.Items[0].Code != "bad_request" || resp.Items[1].Code != "" || fromWire(resp.Items[1].Result).Decision != fsm.DecisionPermit {
		t.Fatalf("a malformed envelope beside a good one: %+v", resp.Items)
	}
	if h, _ := n.Head(); h.Seq != before.Seq+1 {
		t.Fatalf("head at %d after one good write and one malformed, want %d", h.Seq, before.Seq+1)
	}
}
